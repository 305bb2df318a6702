//! The scanners against the regexes they replace ([`super::reference`]): the same captures
//! on every segment of every fixture log and on fuzzed lines built from the pieces metrics
//! are made of (and the traps around them).

use chrono::{Duration, TimeZone, Utc};

use super::parse::{dict_body, strip_ansi, truncate_bytes};
use super::{reference, scan, MetricsConfig, MetricsTracker, MAX_SEGMENT_BYTES};

/// Matches seen, per form: so a test shows that its lines exercise every scanner.
#[derive(Debug, Default)]
struct Seen {
    kv: usize,
    bar: usize,
    open: usize,
    dict: usize,
}

/// Every capture the tracker takes from `seg`, both ways.
fn assert_same(seg: &str, seen: &mut Seen) {
    let kv = scan::kv_all(seg);
    assert_eq!(kv, reference::kv(seg), "kv of {seg:?}");
    let bar = scan::bar(seg);
    assert_eq!(bar, reference::bar(seg), "bar of {seg:?}");
    let open = scan::open_bar(seg);
    assert_eq!(open, reference::open_bar(seg), "open bar of {seg:?}");
    if let Some(body) = dict_body(seg) {
        assert_eq!(scan::dict_all(body), reference::dict(body), "dict of {body:?}");
    }
    // The dict scanner on text that is no record body, too.
    let dict = scan::dict_all(seg);
    assert_eq!(dict, reference::dict(seg), "dict of {seg:?}");
    seen.kv += kv.len();
    seen.bar += usize::from(bar.is_some());
    seen.open += usize::from(open.is_some());
    seen.dict += dict.len();
}

impl Seen {
    fn assert_each_at_least(&self, n: usize) {
        assert!(self.open >= n && self.records_at_least(n), "{self:?}");
    }

    fn records_at_least(&self, n: usize) -> bool {
        self.kv >= n && self.bar >= n && self.dict >= n
    }
}

/// The segments the tracker parses, as `push_line` cuts them.
fn segments(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split(['\r', '\n'])
        .map(|s| strip_ansi(truncate_bytes(s, MAX_SEGMENT_BYTES)).into_owned())
}

fn fixture_logs() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs = vec![root.join("logs"), root.join("metrics")];
    for set in std::fs::read_dir(root.join("real")).expect("real corpus") {
        let set = set.expect("entry").path();
        if set.is_dir() {
            dirs.push(set.join("logs"));
        }
    }
    let mut logs = Vec::new();
    for d in dirs {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "log") {
                logs.push(p);
            }
        }
    }
    logs
}

#[test]
fn scanners_equal_the_regexes_on_every_fixture_log() {
    let logs = fixture_logs();
    assert!(logs.len() >= 90, "the fixture logs are found: {}", logs.len());
    let mut segs = 0;
    let mut seen = Seen::default();
    for p in logs {
        let bytes = std::fs::read(&p).expect("fixture");
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines() {
            assert_same(line, &mut seen);
            for seg in segments(line) {
                assert_same(&seg, &mut seen);
                segs += 1;
            }
        }
    }
    assert!(segs > 2_000, "{segs} segments");
    // No fixture prints a bar without a total: the fuzzed lines below do.
    assert!(seen.records_at_least(10), "{seen:?}");
}

/// Pieces of metric text, numbers, units and the characters the regexes treat specially
/// (Unicode digits and spaces among them).
const PIECES: &[&str] = &[
    "loss",
    "train_loss",
    "val/loss",
    "MeanSquaredError",
    "train_error",
    "lr",
    "x",
    "ETA",
    "step",
    "Epoch 1",
    "it",
    "s",
    "k",
    "M",
    "G",
    "T",
    "e",
    "E",
    "_",
    "%",
    "-",
    "+",
    ".",
    "/",
    "=",
    " = ",
    ":",
    ": ",
    " :",
    "::",
    "\t",
    "\u{b}",
    "\u{a0}",
    "\u{3000}",
    "\u{2009}",
    " ",
    "  ",
    "0",
    "7",
    "12",
    "3.5",
    "1e-3",
    "2.5E+04",
    "1.",
    ".5",
    "-0.25",
    "+4",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "infinite",
    "inference",
    "ınf",
    "İnf",
    "\u{663}",
    "\u{967}",
    "\u{ff11}",
    "█",
    "▋",
    "|",
    "[",
    "]",
    "<",
    ">",
    "?",
    ",",
    ", ",
    "(",
    ")",
    "{",
    "}",
    "'",
    "\"",
    "it/s",
    "s/it",
    "5k/s",
    "1.2kit/s",
    "?it/s",
    "00:10",
    "12:30:05",
    "[00:01<00:02, ",
    "570/1000 ",
    "3/4 [",
    "12it [",
    " 12it [00:01, 9.5it/s]",
    "|3 [1:00, ",
    ":7k [0, ",
    "tensor(",
    "np.float64(",
    "device='cuda:0'",
    "{'loss': ",
    "\"acc\":",
    "'a', 'b': ",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé",
];

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        // xorshift64*: deterministic, so a failure is reproducible.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

#[test]
fn scanners_equal_the_regexes_on_fuzzed_lines() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = Seen::default();
    for _ in 0..200_000 {
        let mut line = String::new();
        for _ in 0..1 + rng.below(24) {
            line.push_str(PIECES[rng.below(PIECES.len())]);
        }
        assert_same(&line, &mut seen);
    }
    seen.assert_each_at_least(100);
}

#[test]
fn scanners_equal_the_regexes_on_bars_and_records() {
    let units = [
        "it/s", "s/it", "B/s", "kB/s", "MB/s", "batch/s", "s/batch", "tok/s", "it", "/s",
    ];
    let counts = ["0", "5", "570", "1.2k", "3M", "12.5", "1G", "7T", "1.", "?"];
    let mut rng = Rng(7);
    let mut seen = Seen::default();
    for _ in 0..50_000 {
        let mut bar = String::new();
        let n = counts[rng.below(counts.len())];
        let total = counts[rng.below(counts.len())];
        let rate = counts[rng.below(counts.len())];
        let unit = units[rng.below(units.len())];
        match rng.below(4) {
            0 => bar.push_str(&format!(
                " 57%|█████▋    | {n}/{total} [00:10<00:07, {rate}{unit}]"
            )),
            1 => {
                let count_unit = ["it", "B", "batch", "", "k", "s"][rng.below(6)];
                bar.push_str(&format!("{n}{count_unit} [00:01, {rate} {unit}]"))
            }
            2 => bar.push_str(&format!(
                "Epoch 3: {n}/{total} [1:02:03<?, {rate}{unit}, loss={rate}]"
            )),
            _ => bar.push_str(&format!(
                "{{'loss': {rate}, 'grad_norm': tensor({n}, device='cuda:0'), 'epoch': {total}}}"
            )),
        }
        assert_same(&bar, &mut seen);
    }
    seen.assert_each_at_least(1000);
}

/// The backtracking cases worked out by hand in the scanners, with what they capture.
#[test]
fn scanners_follow_the_regexes_backtracking() {
    let c = scan::bar("10/20 [00:01<00:02, 5k/s]").expect("a bar");
    assert_eq!((c.rate, c.unit), (Some("5"), Some("k/s")));
    let c = scan::bar("1.2.5/10 [00:01<?]").expect("a bar");
    assert_eq!((c.n, c.rate), ("2.5", None));
    assert_eq!(scan::dict_all("{'a': , 'b': 2}"), [("a", " "), ("b", "2")]);
    let kv = scan::kv_all("a=1%b=2 eta=1:2 x=3");
    let got: Vec<_> = kv.iter().map(|c| (c.key, c.num, c.unit, c.clock)).collect();
    assert_eq!(
        got,
        [
            ("a", "1", "%b", false),
            ("eta", "1", "", true),
            ("x", "3", "", false)
        ]
    );
    for seg in [
        "10/20 [00:01<00:02, 5k/s]",
        "1.2.5/10 [00:01<?]",
        "{'a': , 'b': 2}",
        "a=1%b=2 eta=1:2 x=3",
    ] {
        assert_same(seg, &mut Seen::default());
    }
}

/// The whole tracker, fast path against the regexes it replaced with no byte hints: the same
/// signals line by line, the same snapshot and series, on every fixture log and on the
/// fuzzed lines (with tqdm bars, records and trap lines among them).
#[test]
fn the_tracker_learns_the_same_as_with_the_regexes() {
    let cfg = MetricsConfig {
        chart: ["loss", "train_loss", "eval_loss", "acc", "lr"]
            .map(String::from)
            .to_vec(),
        ..MetricsConfig::default()
    };
    let mut texts: Vec<String> = fixture_logs()
        .into_iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).expect("fixture")).into_owned())
        .collect();
    let mut rng = Rng(3);
    let fuzzed: Vec<String> = (0..20_000)
        .map(|_| {
            let mut line = String::new();
            for _ in 0..1 + rng.below(12) {
                line.push_str(PIECES[rng.below(PIECES.len())]);
                if rng.below(8) == 0 {
                    line.push('\r');
                }
            }
            line
        })
        .collect();
    texts.push(fuzzed.join("\n"));
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let mut signals = 0;
    for text in &texts {
        let mut fast = MetricsTracker::new(cfg.clone());
        let mut spec = MetricsTracker::reference(cfg.clone());
        for (i, line) in text.lines().enumerate() {
            let at = t0 + Duration::milliseconds(250 * i as i64);
            let (a, b) = (fast.push_line(line, at), spec.push_line(line, at));
            // Debug form: a NaN is equal to itself there.
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{line:?}");
            signals += a.len();
        }
        assert_eq!(format!("{:?}", fast.snapshot()), format!("{:?}", spec.snapshot()));
        for name in &cfg.chart {
            assert_eq!(
                format!("{:?}", fast.series(name)),
                format!("{:?}", spec.series(name)),
                "{name}"
            );
        }
    }
    assert!(signals > 10, "health signals are compared too: {signals}");
}

/// A bar's rate is read once per line, from its newest redraw whose rate reads: the same as
/// reading every redraw's rate in place (the reference). All lines are read at one instant,
/// so the snapshot shows the reported rate, not a measured one; redraws with escape
/// sequences (read as cleaned copies, in place) and bars without a total are among them.
#[test]
fn a_lines_rate_is_its_newest_redraws_as_if_each_were_read() {
    let bars = [
        "10/100 [00:01<00:09, 9.5it/s]",
        "11/100 [00:01<00:09, ?it/s]",
        "12/100 [00:01<00:09, 0it/s]",
        "13/100 [00:01<00:09, 2.5s/it]",
        "14/100 [00:01<00:09]",
        "\u{1b}[A15/100 [00:01<00:09, 7.25it/s]",
        "\u{1b}[A16/100 [00:01<00:09, ?it/s]",
        "17it [00:01, 3.5it/s]",
        "18it [00:01, ?it/s]",
        "19/100 [00:01<00:09, 1.5kit/s]",
        "20/100 [00:01<00:09, 5k/s]",
        "loss=0.5",
        "",
    ];
    let at = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let cfg = MetricsConfig::default();
    let (mut fast, mut spec) = (MetricsTracker::new(cfg.clone()), MetricsTracker::reference(cfg));
    let mut rates = std::collections::BTreeSet::new();
    let mut rng = Rng(11);
    for _ in 0..5000 {
        let line: Vec<&str> = (0..1 + rng.below(6))
            .map(|_| bars[rng.below(bars.len())])
            .collect();
        let line = line.join("\r");
        fast.push_line(&line, at);
        spec.push_line(&line, at);
        let (a, b) = (fast.snapshot(), spec.snapshot());
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{line:?}");
        rates.insert(a.rate_per_sec.map(f64::to_bits));
    }
    assert!(rates.len() >= 6, "the lines exercise the rates: {rates:?}");
}

/// The separators' mask holds every `=` and `:` and nothing else, at every length (the
/// mask up to 128 bytes, in 16-byte blocks and a tail; `memchr2` past that).
#[test]
fn separator_masks_match_a_byte_search() {
    let text: Vec<u8> = (0..200u32)
        .map(|i| b"a=b:c  ==::x"[(i * 7 % 12) as usize])
        .collect();
    for len in 0..=text.len() {
        let b = &text[..len];
        let want: Vec<usize> = memchr::memchr2_iter(b'=', b':', b).collect();
        assert_eq!(scan::separators(b).collect::<Vec<_>>(), want, "{len}");
    }
}

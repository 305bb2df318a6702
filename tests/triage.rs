//! Triage on the corpus of real training logs (tests/fixtures: scripts really run, logs
//! byte-exact, exit statuses recorded), and the live detector against triage.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use serde::Deserialize;
use trainwatch::model::{Category, ExitOutcome, Incident, Severity};
use trainwatch::watch::detect::{DetectConfig, Detector, Finding};
use trainwatch::watch::triage::{analyse_reader, triage_file, Verdict};

#[derive(Debug, Deserialize)]
struct First {
    line: u64,
    text: String,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    log: String,
    exit_status: i32,
    verdict: String,
    category: Option<String>,
    first_error: Option<First>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest parses")
}

fn read_log(c: &Case) -> Vec<u8> {
    std::fs::read(fixtures().join(&c.log)).expect("log")
}

/// The text triage reports may be cut for display; the start must match.
fn same_text(got: &str, want: &str) -> bool {
    match got.strip_suffix('…') {
        Some(head) => want.starts_with(head),
        None => got == want,
    }
}

#[test]
fn triage_gets_every_fixture_right() {
    let cases = cases();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let mut wrong = Vec::new();
    for c in &cases {
        let exit = ExitOutcome::from_shell_status(c.exit_status);
        let r = triage_file(&fixtures().join(&c.log), DetectConfig::default(), Some(exit)).expect("triage");
        let verdict = r.verdict.as_str();
        let category = r.category.map(|c| c.as_str().to_string());
        let first = r.first_error().map(|i| (i.line, i.text.clone()));
        let first_ok = match (&first, &c.first_error) {
            (None, None) => true,
            (Some((l, t)), Some(w)) => *l == w.line && same_text(t, &w.text),
            _ => false,
        };
        if verdict != c.verdict || category != c.category || !first_ok {
            wrong.push(format!(
                "{}: got {verdict} {category:?} {first:?}; want {} {:?} {:?}",
                c.name,
                c.verdict,
                c.category,
                c.first_error.as_ref().map(|f| (f.line, &f.text))
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// Feed a log line by line as the live watcher does; rebuild the incident list from the
/// findings alone (what the watcher posts) and return it with the detector's own list.
fn live(log: &[u8], exit: Option<ExitOutcome>) -> (Vec<Incident>, Vec<Incident>, Vec<Finding>) {
    let mut d = Detector::new(DetectConfig::default());
    let mut findings = Vec::new();
    let text = String::from_utf8_lossy(log);
    let body = text.strip_suffix('\n').unwrap_or(&text);
    for (i, line) in body.split('\n').enumerate() {
        findings.extend(d.push_line(i as u64 + 1, line));
    }
    findings.extend(d.finish(exit));
    let mut rebuilt: Vec<Incident> = Vec::new();
    for f in &findings {
        match f {
            Finding::New { index, incident } => {
                assert_eq!(*index, rebuilt.len(), "New indices are dense and in order");
                rebuilt.push(incident.clone());
            }
            Finding::Updated { index, incident } => rebuilt[*index] = incident.clone(),
        }
    }
    (rebuilt, d.incidents().to_vec(), findings)
}

#[test]
fn the_live_watcher_reports_what_triage_reports() {
    for c in cases() {
        let log = read_log(&c);
        let exit = Some(ExitOutcome::from_shell_status(c.exit_status));
        let (rebuilt, own, _) = live(&log, exit);
        let triage = analyse_reader(Cursor::new(&log), DetectConfig::default(), exit).unwrap();
        assert_eq!(
            rebuilt, own,
            "{}: findings do not add up to the incidents",
            c.name
        );
        assert_eq!(own, triage.incidents, "{}: live and triage differ", c.name);
    }
}

#[test]
fn a_fatal_traceback_is_reported_at_its_exception_line_and_completed_later() {
    let c = cases().into_iter().find(|c| c.name == "impl_chained").unwrap();
    let log = read_log(&c);
    let (_, own, findings) = live(&log, Some(ExitOutcome::from_shell_status(c.exit_status)));
    let want = c.first_error.unwrap();
    // The first finding is New, for the root cause line, and already fatal.
    let Finding::New { incident, .. } = &findings[0] else {
        panic!("first finding is not New: {findings:?}")
    };
    assert_eq!(incident.line, want.line);
    assert_eq!(incident.severity, Severity::Fatal);
    // The chained wrapper arrived later as Updated: the final excerpt holds both.
    assert!(findings.len() > 1);
    let ex = &own[0].excerpt;
    assert!(ex
        .iter()
        .any(|l| l.starts_with("The above exception was the direct cause")));
    assert!(ex
        .last()
        .unwrap()
        .starts_with("RuntimeError: cannot build the training setup"));
    assert!(incident.excerpt.len() < ex.len());
}

#[test]
fn a_burst_of_identical_lines_is_one_incident_with_a_count() {
    let c = cases().into_iter().find(|c| c.name == "conv_loss_nan").unwrap();
    let (_, own, findings) = live(&read_log(&c), Some(ExitOutcome::Code(0)));
    assert_eq!(own.len(), 1, "{own:?}");
    assert!(own[0].count > 10, "count {}", own[0].count);
    let news = findings
        .iter()
        .filter(|f| matches!(f, Finding::New { .. }))
        .count();
    assert_eq!(news, 1);
}

#[test]
fn a_traceback_followed_by_normal_output_becomes_a_warning() {
    let log = "epoch 1\nTraceback (most recent call last):\n  File \"t.py\", line 2, in <module>\n    f()\nValueError: could not convert string to float: 'x'\nepoch 2\nepoch 3\nepoch 4\n";
    let mut d = Detector::new(DetectConfig::default());
    let mut sev = Vec::new();
    for (i, l) in log.lines().enumerate() {
        for f in d.push_line(i as u64 + 1, l) {
            sev.push((i + 1, f.incident().severity));
        }
    }
    assert_eq!(
        sev.first(),
        Some(&(5, Severity::Fatal)),
        "reported at once, as fatal"
    );
    assert_eq!(
        sev.last().map(|s| s.1),
        Some(Severity::Warning),
        "then settled: caught"
    );
    // Without an exit status triage keeps the warning; a failing exit makes it the cause.
    let r = analyse_reader(Cursor::new(log), DetectConfig::default(), None).unwrap();
    assert_eq!(r.verdict, Verdict::Warning);
    let r = analyse_reader(
        Cursor::new(log),
        DetectConfig::default(),
        Some(ExitOutcome::Code(1)),
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Error);
}

#[test]
fn exit_status_alone_is_evidence() {
    let log = "step 1\nstep 2\n";
    let r = analyse_reader(
        Cursor::new(log),
        DetectConfig::default(),
        Some(ExitOutcome::Signal(9)),
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Error);
    assert_eq!(r.category, Some(Category::Resource));
    assert!(r.first_error().is_none());
    assert!(
        r.incidents[0].text.contains("OOM killer"),
        "{}",
        r.incidents[0].text
    );
    let r = analyse_reader(
        Cursor::new(log),
        DetectConfig::default(),
        Some(ExitOutcome::Code(3)),
    )
    .unwrap();
    assert_eq!(r.category, Some(Category::Implementation));
    assert!(r.incidents[0].text.contains("exit code 3"));
    let r = analyse_reader(
        Cursor::new(log),
        DetectConfig::default(),
        Some(ExitOutcome::Code(0)),
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Ok);
}

#[test]
fn extra_and_ignore_patterns_and_the_rhat_threshold_are_configurable() {
    let log = "batch 1 ok\nGPU 0 throttled: thermal limit\nmax r_hat = 1.06\nCUDA out of memory (simulated by the test harness)\nbatch 2 ok\n";
    let r = analyse_reader(Cursor::new(log), DetectConfig::default(), None).unwrap();
    let cats: Vec<_> = r.incidents.iter().map(|i| (i.line, i.category)).collect();
    assert_eq!(cats, vec![(4, Category::Resource)]);

    let cfg = DetectConfig {
        rhat_threshold: 1.05,
        extra: vec![(Category::Resource, Regex::new(r"throttled").unwrap())],
        ignore: vec![Regex::new(r"simulated by the test harness").unwrap()],
        rank_labels: false,
    };
    let r = analyse_reader(Cursor::new(log), cfg, None).unwrap();
    let cats: Vec<_> = r.incidents.iter().map(|i| (i.line, i.category)).collect();
    assert_eq!(cats, vec![(2, Category::Resource), (3, Category::Convergence)]);
}

#[test]
fn hostile_input_does_not_break_line_numbers() {
    // Invalid UTF-8, a line longer than the read buffer, CRLF and NUL bytes.
    let mut log = Vec::new();
    log.extend_from_slice(b"ok \xff\xfe\r\n");
    log.extend(std::iter::repeat(b'x').take(3 << 20));
    log.extend_from_slice(
        b" Error\n\0\0\nTraceback (most recent call last):\n  File \"a.py\", line 1\nMemoryError\n",
    );
    let r = analyse_reader(
        Cursor::new(&log),
        DetectConfig::default(),
        Some(ExitOutcome::Code(1)),
    )
    .unwrap();
    let f = r.first_error().expect("first error");
    assert_eq!((f.line, f.text.as_str()), (6, "MemoryError"));
    assert_eq!(r.category, Some(Category::Resource));
}

#[test]
fn the_cli_prints_the_documented_json_and_exit_status() {
    let c = cases().into_iter().find(|c| c.name == "data_nan_input").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trainwatch"))
        .args(["triage", "--json", "--exit-code"])
        .arg(c.exit_status.to_string())
        .arg(fixtures().join(&c.log))
        .output()
        .expect("run trainwatch");
    assert_eq!(out.status.code(), Some(1), "exit status 1: an error was found");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert_eq!(v["verdict"], "error");
    assert_eq!(v["category"], "data");
    assert_eq!(v["first_error"]["line"], c.first_error.as_ref().unwrap().line);
    let inc = &v["incidents"][0];
    let mut ikeys: Vec<_> = inc.as_object().unwrap().keys().cloned().collect();
    ikeys.sort();
    assert_eq!(
        ikeys,
        ["category", "excerpt", "line", "reason", "severity", "text"]
    );
    assert_eq!(inc["severity"], "fatal");
    assert_eq!(inc["reason"], "NaN or infinity in the input (data)");
    assert!(inc["excerpt"][0].as_str().unwrap().starts_with("Traceback"));

    let clean = cases().into_iter().find(|c| c.name == "clean_traps").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trainwatch"))
        .args(["triage", "--exit-code", "0"])
        .arg(fixtures().join(&clean.log))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("verdict: ok"));

    // A job's own pattern turns a line of the clean log into evidence; a bad one is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_trainwatch"))
        .args([
            "triage",
            "--json",
            "--exit-code",
            "0",
            "--pattern",
            "resource=Killed processes",
        ])
        .arg(fixtures().join(&clean.log))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "warnings only");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["category"], "resource");
    let out = Command::new(env!("CARGO_BIN_EXE_trainwatch"))
        .args(["triage", "--pattern", "gpu=x"])
        .arg(fixtures().join(&clean.log))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown category"));
}

/// A small deterministic generator (no extra dependency): xorshift.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

#[test]
fn scrambled_logs_never_crash_and_live_equals_triage() {
    // Fragments of every construct the detector knows, shuffled into nonsense.
    const FRAGMENTS: &[&str] = &[
        "Traceback (most recent call last):",
        "  File \"/v/pandas/core/frame.py\", line 1, in f",
        "    x = y[\"é\"]",
        "KeyError: 'ñ'",
        "ValueError: Input X contains NaN.",
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
        "",
        "\"\"\"",
        "concurrent.futures.process._RemoteTraceback: ",
        "Original Traceback (most recent call last):",
        "  + Exception Group Traceback (most recent call last):",
        "  | ValueError: x",
        "  +-+---- 1 ----",
        "Exception ignored in: <function f>",
        "/p/x.py:3: ConvergenceWarning: lbfgs failed to converge",
        "/p/x.py:3: FutureWarning: stuff",
        "  warnings.warn(",
        "Fatal Python error: Segmentation fault",
        "Current thread 0x01 (most recent call first):",
        "[LightGBM] [Fatal] Label must be in [0, 3)",
        "Killed",
        "        mean  sd  r_hat",
        "a  1.0  2.0  1.9",
        "b  1.0  2.0  nan",
        "There were 3 divergences after tuning.",
        "epoch 1 loss=nan",
        "epoch 2 loss=0.3 \u{1F600} ✓",
        "\r 50%|#####     | 5/10\r",
        "Warning: ",
        "x: 1: Warning: y",
        "Error",
        "  File",
        "SyntaxError: bad",
        "ordinary output line",
        // Lines with a literal that no rule fires on (the bulk path lets them by without
        // filling the context ring): a trap, an error record, a noise warning.
        "eval | MeanSquaredError=0.02",
        "2026-01-01 12:00:00 ERROR tracker unreachable",
        "/p/y.py:9: UserWarning: z",
        "step 7 loss=0.2",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..40 {
        let mut log = String::new();
        for _ in 0..300 {
            let a = rng.pick(FRAGMENTS);
            let b = rng.pick(FRAGMENTS);
            match rng.next() % 6 {
                0 => log.push_str(&format!("{a}{b}")),
                1 => log.push_str(&format!("{a}\r{b}")),
                _ => log.push_str(a),
            }
            log.push('\n');
        }
        let exit = match round % 4 {
            0 => None,
            1 => Some(ExitOutcome::Code(0)),
            2 => Some(ExitOutcome::Code(1)),
            _ => Some(ExitOutcome::Signal(9)),
        };
        let (rebuilt, own, _) = live(log.as_bytes(), exit);
        let triage = analyse_reader(Cursor::new(log.as_bytes()), DetectConfig::default(), exit).unwrap();
        assert_eq!(rebuilt, own, "round {round}");
        assert_eq!(own, triage.incidents, "round {round}");
        // Mapped from a file, scanned on triage's second thread: the same.
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, log.as_bytes()).expect("write");
        let mapped = triage_file(file.path(), DetectConfig::default(), exit).expect("mapped");
        assert_eq!(mapped, triage, "round {round}");
        let _ = triage.to_json();
        let _ = triage.to_human();
    }
}

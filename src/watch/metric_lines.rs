//! The metric-line prefilter: one cheap pass over a line's bytes decides whether a
//! [`MetricsTracker`](crate::watch::metrics::MetricsTracker) could learn anything from it, so
//! ordinary log lines cost a byte scan, not a regex run. It must never hide a line the tracker
//! would read (a test replays the fixture logs both ways).

use std::sync::OnceLock;

use memchr::memmem::Finder;

use crate::watch::metrics::MetricsConfig;

/// Lines let through after an ArviZ summary header, so its rows reach the tracker (which ends
/// the table itself on the first line that is not a row).
const TABLE_ROWS: u32 = 10_000;

/// Decides, with one pass over the bytes, whether a line may carry a metric.
#[derive(Debug, Clone)]
pub struct MetricLineFilter {
    /// Named regexes can match anything: every line goes to the tracker.
    every_line: bool,
    table_left: u32,
}

fn numeric_start(b: u8) -> bool {
    // n/i: nan, inf.
    matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'n' | b'N' | b'i' | b'I')
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

impl MetricLineFilter {
    pub fn new(cfg: &MetricsConfig) -> Self {
        Self {
            every_line: !cfg.extra.is_empty(),
            table_left: 0,
        }
    }

    /// True when the tracker should see this line.
    pub fn wants(&mut self, text: &str) -> bool {
        self.wants_bytes(text.as_bytes())
    }

    /// [`wants`](Self::wants) on the line's bytes before decoding: the same answer as for
    /// its lossy decoding, since only ASCII bytes decide and decoding keeps each of them.
    pub fn wants_bytes(&mut self, b: &[u8]) -> bool {
        if self.every_line {
            return true;
        }
        if self.table_left > 0 {
            // Every row holds numbers; a line without any ends the table.
            if b.iter().any(u8::is_ascii_digit) {
                self.table_left -= 1;
                return true;
            }
            self.table_left = 0;
        }
        // SIMD scans for the few bytes that can start a metric; ordinary lines cost little more.
        if memchr::memchr3_iter(b'=', b':', b'[', b).any(|i| self.hit_at(b, i))
            || memchr::memchr2_iter(b'{', b'_', b).any(|i| self.hit_at(b, i))
        {
            return true;
        }
        // PyMC's sampler lines: "Sampling 4 chains …", "There were 3 divergences …".
        static CHAIN: OnceLock<Finder<'static>> = OnceLock::new();
        static DIVERG: OnceLock<Finder<'static>> = OnceLock::new();
        let chain = CHAIN.get_or_init(|| Finder::new(b"chain"));
        let diverg = DIVERG.get_or_init(|| Finder::new(b"diverg"));
        chain.find(b).is_some() || diverg.find(b).is_some()
    }

    /// Whether the byte at `i` (one of `= : [ { _`) starts something the tracker reads.
    fn hit_at(&mut self, b: &[u8], i: usize) -> bool {
        match b[i] {
            // `key=value`, `key = value`
            b'=' => {
                let j = skip_spaces(b, i + 1);
                j < b.len() && numeric_start(b[j])
            }
            // `key: value`, JSON `"key":value` (a clock's 12:30 is neither).
            b':' => {
                let spaced = b.get(i + 1).is_some_and(|n| *n == b' ' || *n == b'\t');
                let quoted = i > 0 && b[i - 1] == b'"';
                let j = skip_spaces(b, i + 1);
                (spaced || quoted) && j < b.len() && numeric_start(b[j])
            }
            // A dict or JSON record.
            b'{' => true,
            // tqdm's `[00:10<00:07, …]` or `[00:10, 5.1it/s]`.
            b'[' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b':') {
                    j += 1;
                }
                j > i + 1 && j < b.len() && (b[j] == b'<' || b[j] == b',')
            }
            // ArviZ summary header (`r_hat`, `ess_bulk`): its rows follow.
            b'_' => {
                // A column name starts after a space (not `process_id`, `access_token`).
                let word_at = |start: usize| start == 0 || b[start - 1].is_ascii_whitespace();
                let rest = &b[i + 1..];
                let header = (i >= 1 && b[i - 1] == b'r' && word_at(i - 1) && rest.starts_with(b"hat"))
                    || (i >= 3
                        && &b[i - 3..i] == b"ess"
                        && word_at(i - 3)
                        && [&b"bulk"[..], b"tail", b"mean", b"sd"]
                            .iter()
                            .any(|w| rest.starts_with(w)));
                if header {
                    self.table_left = TABLE_ROWS;
                }
                header
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::metrics::{MetricsSnapshot, MetricsTracker};
    use chrono::{TimeZone, Utc};

    fn filter() -> MetricLineFilter {
        MetricLineFilter::new(&MetricsConfig::default())
    }

    #[test]
    fn ordinary_lines_are_skipped() {
        let mut g = filter();
        for l in [
            "2024-05-01 12:30:05,123 INFO loading shard 3 of 10: done",
            "Traceback (most recent call last):",
            "  File \"train.py\", line 12, in <module>",
            "==========================================",
            "",
        ] {
            assert!(!g.wants(l), "{l}");
        }
    }

    #[test]
    fn metric_lines_pass() {
        let mut g = filter();
        for l in [
            "step=10/100 loss=0.5",
            "epoch 1 loss: 0.25",
            "{'loss': 0.6931, 'learning_rate': 5e-05, 'epoch': 0.1}",
            "{\"loss\":0.5,\"step\":3}",
            " 57%|█████▋    | 570/1000 [00:10<00:07, 55.1it/s]",
            "12it [00:01, 9.5it/s]",
            "Sampling 4 chains for 1_000 tune and 1_000 draw iterations",
            "There were 3 divergences after tuning.",
            "loss=nan",
        ] {
            assert!(g.wants(l), "{l}");
        }
    }

    #[test]
    fn summary_rows_follow_their_header_until_a_line_without_numbers() {
        let mut g = filter();
        assert!(g.wants("        mean     sd  hdi_3%  hdi_97%  ess_bulk  ess_tail  r_hat"));
        assert!(g.wants("mu     4.4  3.3  -1.8  10.6  120.0  130.0  1.02"));
        assert!(g.wants("theta[0]     4.4  3.3  -1.8  10.6  120.0  130.0  1.02"));
        assert!(!g.wants("Done."));
        assert!(!g.wants("worker 3 loaded shard 7"));
        // Identifiers that merely contain the column names are not headers.
        assert!(!g.wants("INFO process_id 12 access_token set, success_rate ok"));
        assert!(!g.wants("worker 3 loaded shard 7"));
    }

    /// The filter must not change what the tracker learns from real logs.
    #[test]
    fn filter_keeps_every_metric_of_the_fixture_logs() {
        let at = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        for f in ["tqdm_bar.log", "hf_trainer_style.log", "pymc_sample.log"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/metrics")
                .join(f);
            let text = std::fs::read_to_string(path).unwrap();
            let mut all = MetricsTracker::new(MetricsConfig::default());
            let mut gated = MetricsTracker::new(MetricsConfig::default());
            let mut g = filter();
            for line in text.lines() {
                all.push_line(line, at);
                if g.wants(line) {
                    gated.push_line(line, at);
                }
            }
            // Debug form: a NaN loss is equal to itself there.
            let (a, b) = (all.snapshot(), gated.snapshot());
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{f}");
            assert_ne!(all.snapshot(), MetricsSnapshot::default(), "{f} yields metrics");
        }
    }
}

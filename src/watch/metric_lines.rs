//! Between the log and the engine's progress view: a cheap gate that lets through only the
//! lines a [`MetricsTracker`] could learn from (so ordinary log lines cost a byte scan, not a
//! regex run), the tracker's configuration from a job's spec, the `ProgressView` /
//! `ConvergenceView` the engine shows, and the status chart.

use std::sync::OnceLock;
use std::time::Duration;

use memchr::memmem::Finder;

use crate::chart::{self, ChartError};
use crate::config::JobSpec;
use crate::engine::{ConvergenceView, ProgressView, StallKind};
use crate::watch::metrics::{Convergence, MetricsConfig, MetricsSnapshot, MetricsTracker};
use crate::watch::progress::{self, ProgressBasis};

/// Lines let through after an ArviZ summary header, so its rows reach the tracker (which ends
/// the table itself on the first line that is not a row).
const TABLE_ROWS: u32 = 10_000;
/// Most metrics listed in a status update.
const SHOWN_METRICS: usize = 6;
/// The early overrun warning waits for this much of the run, so the slow first steps
/// (compilation, warm-up) do not raise it.
const OVERRUN_MIN_PERCENT: f64 = 1.0;
/// Size of the status chart.
pub(crate) const CHART_SIZE: (u32, u32) = (800, 400);

/// The tracker's settings from the job's `[metrics]`: the loss is always charted.
pub(crate) fn metrics_config(spec: &JobSpec) -> MetricsConfig {
    let m = &spec.metrics;
    let mut chart = vec!["loss".to_string()];
    for c in &m.chart {
        if !chart.contains(c) {
            chart.push(c.clone());
        }
    }
    MetricsConfig {
        extra: m.patterns.clone(),
        step_key: m.step.clone(),
        total_key: m.total.clone(),
        chart,
        diverge_factor: m.diverge_factor,
    }
}

/// Decides, with one pass over the bytes, whether a line may carry a metric.
#[derive(Debug, Clone)]
pub(crate) struct LineGate {
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

impl LineGate {
    pub(crate) fn new(cfg: &MetricsConfig) -> Self {
        Self {
            every_line: !cfg.extra.is_empty(),
            table_left: 0,
        }
    }

    /// True when the tracker should see this line.
    pub(crate) fn wants(&mut self, text: &str) -> bool {
        if self.every_line {
            return true;
        }
        let b = text.as_bytes();
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

/// The engine's progress view: percent, step/total, rate, ETA, the latest metrics (charted
/// ones first) and the projected overrun of the maximum duration.
pub(crate) fn progress_view(
    snap: &MetricsSnapshot,
    cfg: &MetricsConfig,
    elapsed: Duration,
    expected: Option<Duration>,
    max: Option<Duration>,
) -> ProgressView {
    let p = progress::progress(snap, elapsed, expected);
    // Only a step count measures the pace; a time-based percentage says nothing new.
    let overrun =
        if p.basis == Some(ProgressBasis::Steps) && p.percent.is_some_and(|x| x >= OVERRUN_MIN_PERCENT) {
            progress::projected_overrun(&p, elapsed, max)
        } else {
            None
        };
    ProgressView {
        percent: p.percent,
        step: p.step,
        total: p.total,
        rate_per_sec: p.rate_per_sec,
        eta: p.eta,
        metrics: latest_metrics(snap, cfg),
        overrun,
    }
}

fn latest_metrics(snap: &MetricsSnapshot, cfg: &MetricsConfig) -> Vec<(String, f64)> {
    let hidden = |k: &str| {
        matches!(k, "step" | "global_step")
            || cfg.step_key.as_deref() == Some(k)
            || cfg.total_key.as_deref() == Some(k)
    };
    let mut out: Vec<(String, f64)> = cfg
        .chart
        .iter()
        .filter_map(|k| snap.latest.get(k).map(|v| (k.clone(), *v)))
        .collect();
    for (k, v) in &snap.latest {
        if out.len() >= SHOWN_METRICS {
            break;
        }
        if !hidden(k) && !out.iter().any(|(o, _)| o == k) {
            out.push((k.clone(), *v));
        }
    }
    out.truncate(SHOWN_METRICS);
    out
}

pub(crate) fn convergence_view(c: &Convergence) -> ConvergenceView {
    ConvergenceView {
        chains: c.chains.map(u64::from),
        draws: c.draws,
        samples: c.samples(),
        max_rhat: c.max_rhat,
        min_ess: c.min_ess,
        divergences: c.divergences,
    }
}

pub(crate) fn stall_kind(k: progress::StallKind) -> StallKind {
    match k {
        progress::StallKind::NoOutput => StallKind::NoOutput,
        progress::StallKind::NoProgress => StallKind::NoProgress,
    }
}

/// The chart of the charted metrics as a PNG; `NoData` when none has a value yet.
pub(crate) fn render(title: &str, tracker: &MetricsTracker) -> Result<Vec<u8>, ChartError> {
    let series: Vec<(&str, &crate::watch::metrics::Series)> = tracker
        .config()
        .chart
        .iter()
        .filter_map(|name| tracker.series(name).map(|s| (name.as_str(), s)))
        .collect();
    chart::render_chart(title, &series, CHART_SIZE.0, CHART_SIZE.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn gate() -> LineGate {
        LineGate::new(&MetricsConfig::default())
    }

    #[test]
    fn ordinary_lines_are_skipped() {
        let mut g = gate();
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
        let mut g = gate();
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
        let mut g = gate();
        assert!(g.wants("        mean     sd  hdi_3%  hdi_97%  ess_bulk  ess_tail  r_hat"));
        assert!(g.wants("mu     4.4  3.3  -1.8  10.6  120.0  130.0  1.02"));
        assert!(g.wants("theta[0]     4.4  3.3  -1.8  10.6  120.0  130.0  1.02"));
        assert!(!g.wants("Done."));
        assert!(!g.wants("worker 3 loaded shard 7"));
        // Identifiers that merely contain the column names are not headers.
        assert!(!g.wants("INFO process_id 12 access_token set, success_rate ok"));
        assert!(!g.wants("worker 3 loaded shard 7"));
    }

    /// The gate must not change what the tracker learns from real logs.
    #[test]
    fn gate_keeps_every_metric_of_the_fixture_logs() {
        let at = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        for f in ["tqdm_bar.log", "hf_trainer_style.log", "pymc_sample.log"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/metrics")
                .join(f);
            let text = std::fs::read_to_string(path).unwrap();
            let mut all = MetricsTracker::new(MetricsConfig::default());
            let mut gated = MetricsTracker::new(MetricsConfig::default());
            let mut g = gate();
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

    #[test]
    fn progress_view_lists_charted_metrics_first_and_hides_the_step() {
        let mut snap = MetricsSnapshot {
            step: Some(50),
            total: Some(100),
            rate_per_sec: Some(1.0),
            ..MetricsSnapshot::default()
        };
        for (k, v) in [("acc", 0.9), ("global_step", 50.0), ("loss", 0.3), ("lr", 1e-4)] {
            snap.latest.insert(k.into(), v);
        }
        let v = progress_view(
            &snap,
            &MetricsConfig::default(),
            Duration::from_secs(50),
            None,
            Some(Duration::from_secs(60)),
        );
        assert_eq!(v.percent, Some(50.0));
        assert_eq!(v.eta, Some(Duration::from_secs(50)));
        let keys: Vec<&str> = v.metrics.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["loss", "acc", "lr"]);
        // 50 s done + 50 s to go against a 60 s maximum.
        assert_eq!(v.overrun, Some(Duration::from_secs(40)));
    }
}

//! Metrics read from a training log, without any change to the training code.
//!
//! A [`MetricsTracker`] is fed the log line by line and recognises what common training stacks
//! print: `key=value` / `key: value` pairs, tqdm bars (also their `\r` redraws), metric records
//! printed as Python dicts or JSON lines (Hugging Face Trainer, PyTorch Lightning), PyMC's
//! sampler messages and ArviZ summary tables (chains, draws, divergences, r_hat, ess), plus
//! per-job named regexes. It keeps the latest value of each metric, the step/total and the step
//! rate, a convergence summary, and bounded, downsampled series for charting; it raises
//! [`HealthSignal`]s for a non-finite or diverging loss. It does no I/O: time comes in as data.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use regex::Regex;

use crate::model::{Category, Incident, Severity};

mod parse;
#[cfg(test)]
mod reference;
mod scan;
#[cfg(test)]
mod scan_tests;
mod series;

use parse::{
    dict_pairs, kv_pairs, parse_number, parse_scaled, parse_scaled_f64, recycle, strip_ansi, truncate_bytes,
    truncate_chars, Pair,
};
pub use series::Series;

/// Most distinct metric names remembered; a log that invents names forever cannot grow us.
const MAX_KEYS: usize = 256;
/// Longest piece of a line that is parsed; metrics sit near the start and regexes stay cheap.
const MAX_SEGMENT_BYTES: usize = 16 * 1024;
/// Longest line kept as evidence in a signal.
const MAX_EVIDENCE_CHARS: usize = 400;
/// Step observations kept to measure the rate.
const RATE_SAMPLES: usize = 64;
/// The measured rate looks back at most this far.
const RATE_WINDOW_SECS: i64 = 120;

/// Per-job settings for metric extraction.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Extra metrics: a name and a regex whose first capture group is the number.
    pub extra: Vec<(String, Regex)>,
    /// The key that holds the step (e.g. `global_step`). When unset, tqdm bars and the keys
    /// `step` / `global_step` give it.
    pub step_key: Option<String>,
    /// The key that holds the total number of steps. When unset, tqdm bars give it.
    pub total_key: Option<String>,
    /// Metric names kept as series for charts.
    pub chart: Vec<String>,
    /// A loss this many times above its running minimum is reported as diverging.
    pub diverge_factor: f64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            extra: Vec::new(),
            step_key: None,
            total_key: None,
            chart: vec!["loss".to_owned()],
            diverge_factor: 3.0,
        }
    }
}

/// Something about the training's health seen in its metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthSignal {
    /// A loss became NaN or infinite (reported once until it is finite again).
    LossNonFinite {
        key: String,
        line: String,
        value: String,
    },
    /// A loss rose above `diverge_factor` × its running minimum (reported once until it
    /// falls back under that bound).
    LossDiverging {
        key: String,
        value: f64,
        running_min: f64,
    },
}

impl HealthSignal {
    /// Both are convergence problems in the protocol's terms.
    pub fn category(&self) -> Category {
        Category::Convergence
    }
    /// A non-finite loss poisons the weights, so the run is lost; a rising loss may recover.
    pub fn severity(&self) -> Severity {
        match self {
            HealthSignal::LossNonFinite { .. } => Severity::Fatal,
            HealthSignal::LossDiverging { .. } => Severity::Warning,
        }
    }
    /// Why it is a convergence problem: the rule that decided, ending with the category.
    pub fn reason(&self) -> &'static str {
        match self {
            HealthSignal::LossNonFinite { .. } => "a metric's loss became NaN or infinite (convergence)",
            HealthSignal::LossDiverging { .. } => {
                "the loss rose far above its lowest value so far: the optimisation is diverging (convergence)"
            }
        }
    }
    /// A one-line statement of the problem for chat.
    pub fn describe(&self) -> String {
        match self {
            HealthSignal::LossNonFinite { key, value, .. } => {
                format!("{key} is {value} (not a finite number)")
            }
            HealthSignal::LossDiverging {
                key,
                value,
                running_min,
            } => format!(
                "{key} is diverging: {value} is {:.1}× its lowest value so far ({running_min})",
                value / running_min
            ),
        }
    }
    /// The signal as an incident found at 1-based log line `line` (0 if unknown).
    pub fn to_incident(&self, line: u64) -> Incident {
        let excerpt = match self {
            HealthSignal::LossNonFinite { line, .. } => vec![line.clone()],
            HealthSignal::LossDiverging { .. } => Vec::new(),
        };
        Incident {
            category: self.category(),
            severity: self.severity(),
            line,
            text: self.describe(),
            excerpt,
            count: 1,
            reason: self.reason().to_string(),
        }
    }
}

/// MCMC convergence facts found in the log; each is None until the log states it (the
/// completion report shows them as they are).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Convergence {
    pub chains: Option<u32>,
    /// Draws per chain (after tuning).
    pub draws: Option<u64>,
    /// Tuning iterations per chain.
    pub tune: Option<u64>,
    pub divergences: Option<u64>,
    pub max_rhat: Option<f64>,
    pub min_ess: Option<f64>,
}

impl Convergence {
    /// Total posterior samples: draws × chains.
    pub fn samples(&self) -> Option<u64> {
        Some(self.draws? * u64::from(self.chains?))
    }
    fn is_empty(&self) -> bool {
        *self == Convergence::default()
    }

    /// The facts for a completion report, e.g. `2 chains × 150 draws = 300 samples; max
    /// R-hat 1.071; min ESS 20; 5 divergences`. Only what the log stated is listed.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        match (self.chains, self.draws) {
            (Some(c), Some(d)) => {
                parts.push(format!("{c} chains × {d} draws = {} samples", u64::from(c) * d))
            }
            (Some(c), None) => parts.push(format!("{c} chains")),
            (None, Some(d)) => parts.push(format!("{d} draws per chain")),
            (None, None) => {}
        }
        if let Some(r) = self.max_rhat {
            parts.push(format!("max R-hat {r:.3}"));
        }
        if let Some(e) = self.min_ess {
            parts.push(format!("min ESS {e:.0}"));
        }
        if let Some(d) = self.divergences {
            parts.push(format!("{d} divergence{}", if d == 1 { "" } else { "s" }));
        }
        parts.join("; ")
    }
}

/// The tracker's state at a moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// The latest value of each metric (NaN/inf included as they were).
    pub latest: BTreeMap<String, f64>,
    pub step: Option<u64>,
    pub total: Option<u64>,
    /// Steps per second, measured over the recent lines (or as the tqdm bar reports it).
    pub rate_per_sec: Option<f64>,
    pub convergence: Option<Convergence>,
}

/// Per loss key: its running minimum and which alarms are up (so each is told once).
#[derive(Debug, Clone, Default)]
struct LossState {
    running_min: Option<f64>,
    nonfinite: bool,
    diverging: bool,
}

impl LossState {
    /// A value of this loss: raises what it shows (once per episode) and lowers the minimum.
    fn value(&mut self, p: &Pair, seg: &str, factor: f64, signals: &mut Vec<HealthSignal>) {
        let key = p.key.as_ref();
        if !p.value.is_finite() {
            if !self.nonfinite {
                self.nonfinite = true;
                signals.push(HealthSignal::LossNonFinite {
                    key: key.to_owned(),
                    line: truncate_chars(seg.trim(), MAX_EVIDENCE_CHARS),
                    value: p.text.to_owned(),
                });
            }
            return;
        }
        self.nonfinite = false;
        // The factor test only makes sense for a positive minimum (a loss that can go
        // negative, like an ELBO, has no meaningful "3× the minimum").
        if let Some(min) = self.running_min.filter(|m| *m > 0.0) {
            if factor > 1.0 && p.value > factor * min {
                if !self.diverging {
                    self.diverging = true;
                    signals.push(HealthSignal::LossDiverging {
                        key: key.to_owned(),
                        value: p.value,
                        running_min: min,
                    });
                }
            } else {
                self.diverging = false;
            }
        }
        self.running_min = Some(self.running_min.map_or(p.value, |m| m.min(p.value)));
    }
}

/// Columns of an ArviZ summary table being read.
#[derive(Debug, Clone)]
struct SummaryTable {
    columns: usize,
    rhat: Vec<usize>,
    ess: Vec<usize>,
    max_rhat: Option<f64>,
    min_ess: Option<f64>,
}

/// Where the step counter comes from, so a tqdm bar and a step key do not fight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepSource {
    Tqdm,
    Record,
}

/// Follows a job's metrics line by line; memory stays bounded whatever the run length.
#[derive(Debug, Clone)]
pub struct MetricsTracker {
    cfg: MetricsConfig,
    /// Looked up for every value of every redraw: hashed (ordered in the snapshot).
    latest: HashMap<String, f64, BuildHasherDefault<KeyHasher>>,
    series: BTreeMap<String, Series>,
    loss: BTreeMap<String, LossState>,
    step: Option<u64>,
    total: Option<u64>,
    step_samples: VecDeque<(DateTime<Utc>, u64)>,
    reported_rate: Option<f64>,
    convergence: Convergence,
    table: Option<SummaryTable>,
    /// The allocation of the pairs of the segment being read, kept between segments.
    pair_buf: Vec<Pair<'static>>,
    /// Bars of the line being read whose rate is not read yet, newest last: each segment's
    /// range in the line and where its rate would start. Only the newest rate that reads is
    /// kept, so it is looked for at the end of the line, from its last redraw back.
    pending_rates: Vec<(std::ops::Range<usize>, usize)>,
    /// Tests only: read with the regexes the scanners replace and without the byte hints
    /// (the specification the fast path is compared with).
    #[cfg(test)]
    reference: bool,
}

impl MetricsTracker {
    pub fn new(cfg: MetricsConfig) -> Self {
        let series = cfg
            .chart
            .iter()
            .map(|name| (name.clone(), Series::new()))
            .collect();
        Self {
            cfg,
            latest: HashMap::default(),
            series,
            loss: BTreeMap::new(),
            step: None,
            total: None,
            step_samples: VecDeque::new(),
            reported_rate: None,
            convergence: Convergence::default(),
            table: None,
            pair_buf: Vec::new(),
            pending_rates: Vec::new(),
            #[cfg(test)]
            reference: false,
        }
    }

    /// A tracker that reads every segment the way the tracker did before its scanners.
    #[cfg(test)]
    fn reference(cfg: MetricsConfig) -> Self {
        Self {
            reference: true,
            ..Self::new(cfg)
        }
    }

    pub fn config(&self) -> &MetricsConfig {
        &self.cfg
    }

    /// The current step, if any source gave one.
    pub fn step(&self) -> Option<u64> {
        self.step
    }

    /// One log line (may contain '\r' segments from tqdm); `at` is the time it was read.
    pub fn push_line(&mut self, line: &str, at: DateTime<Utc>) -> Vec<HealthSignal> {
        let mut signals = Vec::new();
        // Split at `\r` and `\n` with a SIMD search: a redrawn bar has dozens of segments.
        let b = line.as_bytes();
        let mut from = 0;
        let ends = memchr::memchr2_iter(b'\r', b'\n', b).chain(std::iter::once(b.len()));
        for end in ends {
            // Both are ASCII: `from..end` lies on character boundaries.
            let (segment, seg_start) = (&line[from..end], from);
            from = end + 1;
            let segment = truncate_bytes(segment, MAX_SEGMENT_BYTES);
            let h = Hints::of(segment);
            if h.any(Hints::ESC) {
                let clean = strip_ansi(segment);
                if !clean.trim().is_empty() {
                    self.push_segment(&clean, None, Hints::of(&clean), at, &mut signals);
                }
            } else if h.any(Hints::VISIBLE) || !segment.trim().is_empty() {
                self.push_segment(segment, Some(seg_start), h, at, &mut signals);
            }
        }
        // The newest bar's rate that reads is the one reported (a redraw's rate is read
        // nowhere else).
        let mut pending = std::mem::take(&mut self.pending_rates);
        for (range, rate_at) in pending.iter().rev() {
            let seg = &line[range.clone()];
            if let Some((rate, unit)) = scan::rate_unit(seg, *rate_at) {
                if self.reported_rate(rate, unit) {
                    break;
                }
            }
        }
        pending.clear();
        self.pending_rates = pending;
        signals
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            latest: self.latest.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            step: self.step,
            total: self.total,
            rate_per_sec: self.rate(),
            convergence: (!self.convergence.is_empty()).then(|| self.convergence.clone()),
        }
    }

    /// The downsampled series of a charted metric (see [`MetricsConfig::chart`]).
    pub fn series(&self, name: &str) -> Option<&Series> {
        self.series.get(name)
    }

    /// `h`: the segment's [`Hints`]: the forms whose bytes are missing cannot occur, and
    /// their readers are skipped (each finds nothing without its bytes: nothing changes).
    /// `origin`: where `seg` starts in the line being read (None: it is a cleaned copy).
    fn push_segment(
        &mut self,
        seg: &str,
        origin: Option<usize>,
        h: Hints,
        at: DateTime<Utc>,
        signals: &mut Vec<HealthSignal>,
    ) {
        let h = self.hints(h);
        if self.summary_row(seg) || (!h.any(Hints::NOT_HEADER) && self.summary_header(seg)) {
            return;
        }
        if h.all(Hints::BAR) {
            self.tqdm(seg, origin, at);
        }
        if h.any(Hints::PYMC) {
            self.pymc(seg);
        }

        let mut pairs = recycle(std::mem::take(&mut self.pair_buf));
        if h.all(Hints::DICT) {
            self.dict_pairs(seg, &mut pairs);
        }
        if pairs.is_empty() && h.all(Hints::KV) {
            self.kv_pairs(seg, &mut pairs);
        }
        for (name, re) in &self.cfg.extra {
            if let Some(c) = re.captures(seg) {
                let text = c.get(1).or_else(|| c.get(0)).map_or("", |m| m.as_str());
                if let Some(value) = parse_number(text) {
                    pairs.retain(|p| p.key != name.as_str());
                    pairs.push(Pair {
                        key: Cow::Owned(name.clone()),
                        text,
                        value,
                    });
                }
            }
        }
        if !pairs.is_empty() {
            self.record(&mut pairs, seg, at, signals);
        }
        self.pair_buf = recycle(pairs);
    }

    fn hints(&self, h: Hints) -> Hints {
        #[cfg(test)]
        if self.reference {
            return Hints(!Hints::NOT_HEADER);
        }
        h
    }

    /// The bar in `seg`, and where its rate would start when that is not read yet (a bar
    /// with a total; the reference reads every rate in place).
    fn bar<'a>(&self, seg: &'a str) -> Option<(scan::BarCap<'a>, Option<usize>)> {
        #[cfg(test)]
        if self.reference {
            return reference::bar(seg)
                .or_else(|| reference::open_bar(seg))
                .map(|c| (c, None));
        }
        match scan::bar_count(seg) {
            Some((cap, rate_at)) => Some((cap, Some(rate_at))),
            None => scan::open_bar(seg).map(|c| (c, None)),
        }
    }

    fn kv_pairs<'a>(&self, seg: &'a str, pairs: &mut Vec<Pair<'a>>) {
        #[cfg(test)]
        if self.reference {
            return pairs.extend(parse::reference_kv_pairs(seg));
        }
        kv_pairs(seg, pairs)
    }

    fn dict_pairs<'a>(&self, seg: &'a str, pairs: &mut Vec<Pair<'a>>) {
        #[cfg(test)]
        if self.reference {
            return pairs.extend(parse::reference_dict_pairs(seg));
        }
        dict_pairs(seg, pairs)
    }

    /// Applies the values of one record (one line's worth of pairs).
    fn record(
        &mut self,
        pairs: &mut Vec<Pair>,
        seg: &str,
        at: DateTime<Utc>,
        signals: &mut Vec<HealthSignal>,
    ) {
        let as_count = |v: f64| (0.0..1e18).contains(&v).then_some(v as u64);
        let is_step_key = |key: &str| match &self.cfg.step_key {
            Some(k) => key == k,
            None => key == "step" || key == "global_step",
        };
        let record_step = pairs
            .iter()
            .find(|p| is_step_key(&p.key))
            .and_then(|p| as_count(p.value));
        if let Some(s) = record_step {
            self.set_step(s, at, StepSource::Record);
        }
        if let Some(tk) = &self.cfg.total_key {
            if let Some(t) = pairs
                .iter()
                .find(|p| p.key == tk.as_str())
                .and_then(|p| as_count(p.value))
            {
                self.total = Some(t);
            }
        }

        for p in pairs.drain(..) {
            self.convergence_pair(&p);
            if is_loss_key(&p.key) {
                self.check_loss(&p, seg, signals);
            }
            if let Some(series) = self.series.get_mut(p.key.as_ref()) {
                let x = record_step
                    .or(self.step)
                    .map_or(series.raw_len() as f64, |s| s as f64);
                series.push(x, p.value);
            }
            if let Some(v) = self.latest.get_mut(p.key.as_ref()) {
                *v = p.value;
            } else if self.latest.len() < MAX_KEYS {
                self.latest.insert(p.key.into_owned(), p.value);
            } else {
                tracing::debug!(key = %p.key, "metric ignored: too many distinct metric names");
            }
        }
    }

    fn check_loss(&mut self, p: &Pair, seg: &str, signals: &mut Vec<HealthSignal>) {
        let key = p.key.as_ref();
        let factor = self.cfg.diverge_factor;
        // `best_val_loss=inf` before the first evaluation: early stopping's start value.
        if p.value == f64::INFINITY && crate::watch::detect::best_so_far_unset(key, "inf") {
            return;
        }
        // `loss_ma10 nan` while the window fills: nothing to average yet.
        if p.value.is_nan() && crate::watch::detect::window_filling(key, "nan") {
            return;
        }
        // `trial 2: diverged (loss=nan), discarded`: the run says it dealt with it (the
        // detector's reading of the same line).
        if !p.value.is_finite() && crate::watch::detect::states_handled(seg) {
            return;
        }
        // One look-up for a key already seen (this runs for every redraw of a bar); the key
        // is copied once, when first seen.
        if let Some(st) = self.loss.get_mut(key) {
            return st.value(p, seg, factor, signals);
        }
        if self.loss.len() >= MAX_KEYS {
            return;
        }
        let st = self.loss.entry(key.to_owned()).or_default();
        st.value(p, seg, factor, signals)
    }

    fn convergence_pair(&mut self, p: &Pair) {
        // Every key below has one of these first letters and lengths (most keys, `loss` first,
        // do not): the others are not lowered.
        let first = p.key.as_bytes().first().map(u8::to_ascii_lowercase);
        let candidate = matches!(
            (first, p.key.len()),
            (Some(b'r'), 4 | 5)
                | (Some(b'm'), 7..=9)
                | (Some(b'e'), 3 | 8)
                | (Some(b'd'), 5 | 9 | 11)
                | (Some(b'n'), 13)
                | (Some(b'c'), 6)
        );
        if !candidate {
            return;
        }
        // Every key below is short: a longer one is none of them (and is not lowered).
        let mut lower = [0u8; 16];
        let Some(key) = lower.get_mut(..p.key.len()).and_then(|buf| {
            buf.copy_from_slice(p.key.as_bytes());
            buf.make_ascii_lowercase();
            std::str::from_utf8(buf).ok()
        }) else {
            return;
        };
        let v = p.value;
        let c = &mut self.convergence;
        match key {
            "r_hat" | "rhat" | "r-hat" | "max_rhat" | "max_r_hat" if v.is_finite() => {
                c.max_rhat = Some(c.max_rhat.map_or(v, |m| m.max(v)));
            }
            "ess" | "ess_bulk" | "ess_tail" | "min_ess" if v.is_finite() => {
                c.min_ess = Some(c.min_ess.map_or(v, |m| m.min(v)));
            }
            "divergences" | "diverging" | "n_divergences" if v.is_finite() && v >= 0.0 => {
                c.divergences = Some(v as u64);
            }
            "chains" if (1.0..1e6).contains(&v) => c.chains = Some(v as u32),
            "draws" if v.is_finite() && v >= 0.0 => c.draws = Some(v as u64),
            _ => {}
        }
    }

    fn set_step(&mut self, step: u64, at: DateTime<Utc>, source: StepSource) {
        // A configured step key is the only source of steps; otherwise a bar and a record
        // may both speak, and the latest wins.
        if self.cfg.step_key.is_some() && source == StepSource::Tqdm {
            return;
        }
        if let Some(old) = self.step {
            if step < old {
                // A new bar (next epoch) or a restart: the old samples say nothing of the rate.
                self.step_samples.clear();
            }
        }
        if self.step != Some(step) || self.step_samples.is_empty() {
            self.step_samples.push_back((at, step));
            if self.step_samples.len() > RATE_SAMPLES {
                self.step_samples.pop_front();
            }
        }
        self.step = Some(step);
    }

    fn rate(&self) -> Option<f64> {
        let measured = (|| {
            let &(t1, s1) = self.step_samples.back()?;
            let &(t0, s0) = self
                .step_samples
                .iter()
                .find(|(t, _)| (t1 - *t).num_seconds() <= RATE_WINDOW_SECS)?;
            let dt = (t1 - t0).num_milliseconds() as f64 / 1000.0;
            (dt >= 1.0 && s1 > s0).then(|| (s1 - s0) as f64 / dt)
        })();
        measured.or(self.reported_rate)
    }

    fn tqdm(&mut self, seg: &str, origin: Option<usize>, at: DateTime<Utc>) {
        let Some((caps, rate_at)) = self.bar(seg) else {
            return;
        };
        let Some(n) = parse_scaled(caps.n) else {
            return;
        };
        let total = caps.total.and_then(parse_scaled);
        if self.cfg.step_key.is_some() {
            return;
        }
        self.set_step(n, at, StepSource::Tqdm);
        if self.cfg.total_key.is_none() {
            if let Some(t) = total.filter(|t| *t > 0) {
                self.total = Some(t);
            }
        }
        let (rate, unit) = match (rate_at, origin) {
            // Read at the end of the line, if no later redraw's rate reads.
            (Some(at), Some(start)) => {
                self.pending_rates.push((start..start + seg.len(), at));
                return;
            }
            (Some(at), None) => match scan::rate_unit(seg, at) {
                Some((r, u)) => (Some(r), Some(u)),
                None => (None, None),
            },
            (None, _) => (caps.rate, caps.unit),
        };
        if let (Some(r), Some(u)) = (rate, unit) {
            if self.reported_rate(r, u) {
                // This rate is newer than any waiting.
                self.pending_rates.clear();
            }
        }
    }

    /// A bar's rate as tqdm prints it: kept, and true, when it reads as a positive number.
    fn reported_rate(&mut self, rate: &str, unit: &str) -> bool {
        let Some(r) = parse_scaled_f64(rate).filter(|r| r.is_finite() && *r > 0.0) else {
            return false;
        };
        // "s/it" is tqdm's way to print rates below one per second.
        self.reported_rate = Some(if unit.starts_with("s/") { 1.0 / r } else { r });
        true
    }

    fn pymc(&mut self, seg: &str) {
        static SAMPLING: OnceLock<Regex> = OnceLock::new();
        static JOBS: OnceLock<Regex> = OnceLock::new();
        static DIVERGENCES: OnceLock<Regex> = OnceLock::new();
        let sampling = SAMPLING.get_or_init(|| {
            Regex::new(r"Sampling (\d+) chains? for ([\d_,]+) tune and ([\d_,]+) draw iterations")
                .expect("valid regex")
        });
        let jobs =
            JOBS.get_or_init(|| Regex::new(r"sampling \((\d+) chains? in \d+ jobs?\)").expect("valid regex"));
        let divergences = DIVERGENCES
            .get_or_init(|| Regex::new(r"There (?:were|was) ([\d_,]+) divergences?").expect("valid regex"));
        let int = |s: &str| s.replace(['_', ','], "").parse::<u64>().ok();
        // Each regex starts with its literal: without one, no capture slots are allocated
        // (this runs for every segment of every line the tracker sees).
        let (has_sampling, has_there) = (has(seg, &SAMPLING_LIT), has(seg, &THERE_LIT));
        if !has_sampling && !has_there {
            return;
        }
        let c = &mut self.convergence;
        if let Some(m) = sampling.captures(seg) {
            c.chains = int(&m[1]).and_then(|v| u32::try_from(v).ok()).or(c.chains);
            c.tune = int(&m[2]).or(c.tune);
            c.draws = int(&m[3]).or(c.draws);
        } else if let Some(m) = jobs.captures(seg) {
            c.chains = int(&m[1]).and_then(|v| u32::try_from(v).ok()).or(c.chains);
        }
        if let Some(m) = divergences.captures(seg) {
            c.divergences = int(&m[1]).or(c.divergences);
        }
    }

    /// An ArviZ `az.summary` header: names only, with r_hat or an ess column among them.
    fn summary_header(&mut self, seg: &str) -> bool {
        // Both kinds of column named below hold one of these: most segments stop here.
        if !has(seg, &RHAT_LIT) && !has(seg, &ESS_LIT) {
            return false;
        }
        let cols: Vec<&str> = seg.split_whitespace().collect();
        let is_name = |t: &&str| {
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '%' | '.'))
                && parse_number(t).is_none()
        };
        let rhat: Vec<usize> = (0..cols.len()).filter(|&i| cols[i] == "r_hat").collect();
        let ess: Vec<usize> = (0..cols.len())
            .filter(|&i| matches!(cols[i], "ess_bulk" | "ess_tail" | "ess_mean" | "ess"))
            .collect();
        if cols.len() < 2 || (rhat.is_empty() && ess.is_empty()) || !cols.iter().all(is_name) {
            return false;
        }
        self.table = Some(SummaryTable {
            columns: cols.len(),
            rhat,
            ess,
            max_rhat: None,
            min_ess: None,
        });
        true
    }

    /// A row of the summary table being read; ends the table on anything else.
    fn summary_row(&mut self, seg: &str) -> bool {
        let Some(table) = &mut self.table else {
            return false;
        };
        let toks: Vec<&str> = seg.split_whitespace().collect();
        // The row label (e.g. `theta[0, 1]`) may hold spaces, so count columns from the right.
        if toks.len() <= table.columns {
            self.table = None;
            return false;
        }
        let values: Option<Vec<f64>> = toks[toks.len() - table.columns..]
            .iter()
            .map(|t| parse_number(t))
            .collect();
        let Some(values) = values else {
            self.table = None;
            return false;
        };
        for &i in &table.rhat {
            if values[i].is_finite() {
                table.max_rhat = Some(table.max_rhat.map_or(values[i], |m| m.max(values[i])));
            }
        }
        for &i in &table.ess {
            if values[i].is_finite() {
                table.min_ess = Some(table.min_ess.map_or(values[i], |m| m.min(values[i])));
            }
        }
        // The latest table describes the current fit, so it replaces earlier figures.
        if table.max_rhat.is_some() {
            self.convergence.max_rhat = table.max_rhat;
        }
        if table.min_ess.is_some() {
            self.convergence.min_ess = table.min_ess;
        }
        true
    }
}

/// A multiply-rotate hash of a metric's name (a few bytes): cheaper than the default
/// SipHash, whose resistance to chosen collisions buys little here — at most
/// [`MAX_KEYS`] names are kept, so a log that collides them all costs 256 compares.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let tail = words.remainder().iter().fold(0u64, |t, b| t << 8 | u64::from(*b));
        self.0 = (self.0.rotate_left(5) ^ tail ^ (bytes.len() as u64) << 56).wrapping_mul(K);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Which bytes the metric forms need occur in a segment, from one pass over it: a form
/// whose bytes are missing cannot be there, so its reader is not run.
#[derive(Clone, Copy)]
struct Hints(u16);

impl Hints {
    /// A tqdm bar: its clock's `[` and its rate's `/` (`it/s`, `s/it`, and a total's).
    const BAR: u16 = 1 << 0 | 1 << 1;
    /// A dict or JSON record.
    const DICT: u16 = 1 << 2;
    /// A `key=value` or `key: value` pair.
    const KV: u16 = 1 << 3;
    /// PyMC's `Sampling …` (its `g`) and `There were …` (its `T`).
    const PYMC: u16 = 1 << 4;
    /// Set for an ASCII byte that neither a column name nor a space holds: no summary header.
    const NOT_HEADER: u16 = 1 << 5;
    /// An escape sequence may be there (colours, nested bars' cursor moves): strip it first.
    const ESC: u16 = 1 << 6;
    /// A visible ASCII character: the segment is not blank.
    const VISIBLE: u16 = 1 << 7;

    const TABLE: [u16; 256] = {
        let mut t = [0u16; 256];
        let mut b = 0;
        while b < 128 {
            let c = b as u8;
            let name = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'%' | b'.');
            // `char::is_whitespace` of the ASCII characters.
            let space = matches!(c, b' ' | b'\t'..=b'\r');
            if !name && !space {
                t[b] |= Self::NOT_HEADER;
            }
            if c.is_ascii_graphic() {
                t[b] |= Self::VISIBLE;
            }
            t[b] |= match c {
                b'[' => 1 << 0,
                b'/' => 1 << 1,
                b'{' => Self::DICT,
                b'=' | b':' => Self::KV,
                b'g' | b'T' => Self::PYMC,
                0x1b => Self::ESC,
                _ => 0,
            };
            b += 1;
        }
        t
    };

    fn of(seg: &str) -> Self {
        let t = |b: u8| Self::TABLE[usize::from(b)];
        // Four lanes: the lookups do not wait on one another.
        let mut chunks = seg.as_bytes().chunks_exact(4);
        let mut lanes = [0u16; 4];
        for c in &mut chunks {
            for (lane, b) in lanes.iter_mut().zip(c) {
                *lane |= t(*b);
            }
        }
        let tail = chunks.remainder().iter().fold(0, |h, b| h | t(*b));
        Self(lanes.iter().fold(tail, |h, l| h | l))
    }

    /// Every byte of `mask` occurs.
    fn all(self, mask: u16) -> bool {
        self.0 & mask == mask
    }

    /// Some byte of `mask` occurs.
    fn any(self, mask: u16) -> bool {
        self.0 & mask != 0
    }
}

/// A literal searched for in every segment, with its searcher built once (`str::contains`
/// builds one per call, which costs more than the search in a short segment).
struct Literal {
    text: &'static str,
    finder: OnceLock<memchr::memmem::Finder<'static>>,
}

impl Literal {
    const fn new(text: &'static str) -> Self {
        Self {
            text,
            finder: OnceLock::new(),
        }
    }
}

static SAMPLING_LIT: Literal = Literal::new("ampling ");
static THERE_LIT: Literal = Literal::new("There w");
static RHAT_LIT: Literal = Literal::new("r_hat");
static ESS_LIT: Literal = Literal::new("ess");

fn has(seg: &str, lit: &Literal) -> bool {
    let finder = lit
        .finder
        .get_or_init(|| memchr::memmem::Finder::new(lit.text.as_bytes()));
    finder.find(seg.as_bytes()).is_some()
}

/// The numeric values of a record printed as a dict (`{'loss': '0', 'epoch': '0.5'}`), by
/// the tracker's own record parser: the detector asks it rather than parse records twice.
pub(crate) fn dict_values(line: &str) -> Vec<(Cow<'_, str>, f64)> {
    let mut pairs = Vec::new();
    dict_pairs(line, &mut pairs);
    pairs.into_iter().map(|p| (p.key, p.value)).collect()
}

/// The numeric values of a line's metrics, by the tracker's own parsers: a record printed
/// as a dict or JSON, else its `key=value` / `key: value` pairs (the detector's reader of
/// learning curves asks it rather than parse them twice).
pub(crate) fn line_values(line: &str) -> Vec<(Cow<'_, str>, f64)> {
    let mut pairs = Vec::new();
    dict_pairs(line, &mut pairs);
    if pairs.is_empty() && (line.contains('=') || line.contains(':')) {
        kv_pairs(line, &mut pairs);
    }
    pairs.into_iter().map(|p| (p.key, p.value)).collect()
}

/// Whether a metric is a loss (`loss`, `train_loss`, `val/loss`, …).
pub fn is_loss_key(key: &str) -> bool {
    key.len() >= 4 && key.as_bytes()[key.len() - 4..].eq_ignore_ascii_case(b"loss")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_skips_clock_times_and_words_starting_with_inf() {
        let mut pairs = Vec::new();
        kv_pairs(
            "12:30:05 name=inference loss: 0.5 ETA: 1:23 lr=1e-3 acc=97%",
            &mut pairs,
        );
        let keys: Vec<String> = pairs
            .into_iter()
            .map(|p| format!("{}={}", p.key, p.value))
            .collect();
        assert_eq!(keys, ["loss=0.5", "lr=0.001", "acc=97"]);
    }

    #[test]
    fn unwraps_tensor_reprs() {
        let mut pairs = Vec::new();
        dict_pairs(
            "{'loss': tensor(0.25, device='cuda:0'), 'x': np.float64(2.5)}",
            &mut pairs,
        );
        let got: Vec<(String, f64)> = pairs.into_iter().map(|p| (p.key.into_owned(), p.value)).collect();
        assert_eq!(got, [("loss".to_owned(), 0.25), ("x".to_owned(), 2.5)]);
    }

    /// A non-finite loss on a line that says it was discarded or skipped raises nothing; the
    /// same value without the word is the alarm.
    #[test]
    fn a_non_finite_loss_the_run_dealt_with_raises_no_signal() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let mut t = MetricsTracker::new(MetricsConfig::default());
        assert!(t
            .push_line("trial 2: lr=3.0 diverged (loss=nan), discarded", at)
            .is_empty());
        assert!(t.push_line("step 40: loss=inf, batch skipped", at).is_empty());
        let raised = t.push_line("step 41: loss=nan", at);
        assert!(
            matches!(raised.as_slice(), [HealthSignal::LossNonFinite { .. }]),
            "{raised:?}"
        );
    }

    /// A windowed statistic of the loss that is NaN while its window fills raises nothing
    /// (the detector's reading, `detect::window_filling`); an infinite one, or the loss
    /// itself NaN, is the alarm.
    #[test]
    fn a_rolling_loss_statistic_still_filling_its_window_raises_no_signal() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let mut t = MetricsTracker::new(MetricsConfig::default());
        assert!(t
            .push_line("step 0 loss=4.52 ma10_loss=nan sd10_loss=nan", at)
            .is_empty());
        assert!(t.push_line("step 1 loss=4.40 rolling_loss=nan", at).is_empty());
        let raised = t.push_line("step 2 loss=4.31 ma10_loss=inf", at);
        assert!(
            matches!(raised.as_slice(), [HealthSignal::LossNonFinite { .. }]),
            "{raised:?}"
        );
        let raised = t.push_line("step 3 loss=nan", at);
        assert!(
            matches!(raised.as_slice(), [HealthSignal::LossNonFinite { .. }]),
            "{raised:?}"
        );
    }

    /// Each convergence key gets past the first-letter test in front of the key match, in
    /// any case.
    #[test]
    fn every_convergence_key_is_read() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let keys = [
            "r_hat",
            "rhat",
            "r-hat",
            "max_rhat",
            "max_r_hat",
            "ess",
            "ess_bulk",
            "ess_tail",
            "min_ess",
            "divergences",
            "diverging",
            "n_divergences",
            "chains",
            "draws",
        ];
        for key in keys.iter().flat_map(|k| [k.to_string(), k.to_ascii_uppercase()]) {
            let mut t = MetricsTracker::new(MetricsConfig::default());
            t.push_line(&format!("{key}=2"), at);
            assert!(t.snapshot().convergence.is_some(), "{key}");
        }
        let mut t = MetricsTracker::new(MetricsConfig::default());
        t.push_line("loss=2 lr=2 acc=2", at);
        assert_eq!(t.snapshot().convergence, None);
    }

    /// The first [`MAX_KEYS`] names are kept and go on updating; later ones are ignored.
    #[test]
    fn a_log_that_invents_names_keeps_the_first_ones() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let mut t = MetricsTracker::new(MetricsConfig::default());
        for i in 0..1000 {
            t.push_line(&format!("m{i}=1"), at);
        }
        t.push_line("m0=2 m255=3 m256=4", at);
        let latest = t.snapshot().latest;
        assert_eq!(latest.len(), MAX_KEYS);
        assert_eq!((latest["m0"], latest["m255"]), (2.0, 3.0));
        assert!(!latest.contains_key("m256"));
    }

    #[test]
    fn strips_ansi_cursor_moves() {
        assert_eq!(strip_ansi("\u{1b}[A\u{1b}[2Kloss=1"), "loss=1");
    }
}

//! Progress, ETA and stall maths for a running job — pure functions of the metrics and of
//! time passed in as data, so the engine can call them on any clock and tests need no sleep.
//!
//! [`progress`] gives percent complete (from step/total when the log has them, else from
//! elapsed / expected), the rate and the ETA; [`projected_overrun`] says by how much the
//! projected finish passes the max duration, so a warning can go out before the timeout.
//! [`StallDetector`] tells a hung job (alive, but no new line or no new step) from a slow one
//! (steps still advancing, just fewer per second than usual). How long a silence it takes
//! is [`StallAfter`]: a fixed timeout, or learnt from the job's own output cadence.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::watch::metrics::{MetricsConfig, MetricsSnapshot};

/// What the percentage is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressBasis {
    /// step / total from the log.
    Steps,
    /// elapsed / expected duration from the job's config.
    Time,
}

/// How far a job is and when it should end, as a status update shows it (the engine keeps
/// the latest one for its messages).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Progress {
    /// 0–100, None when neither step/total nor an expected duration is known.
    pub percent: Option<f64>,
    pub basis: Option<ProgressBasis>,
    pub step: Option<u64>,
    pub total: Option<u64>,
    /// Steps per second.
    pub rate_per_sec: Option<f64>,
    /// Time still needed from now.
    pub eta: Option<Duration>,
    /// Latest values of the metrics the log prints (loss, accuracy…), in display order.
    pub metrics: Vec<(String, f64)>,
    /// A warning that the projected finish is past the maximum duration.
    pub overrun: Option<Duration>,
    /// The steps still advance, but markedly slower than this run's usual pace: the job is
    /// slow, not hung (None: steady, or too early to judge).
    pub slowdown: Option<Slowdown>,
    /// The process looks hung as of this update (the stall warning says more).
    pub hung: Option<Hung>,
    /// How long a silence it takes to call the job hung (None: no stall watch).
    pub stall_watch: Option<StallWatch>,
}

/// A job that looks hung: silent (or stepping no more) for `quiet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hung {
    pub quiet: Duration,
    pub kind: StallKind,
}

/// The stall watch's limit as of an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StallWatch {
    pub after: Duration,
    /// Learnt from the job's own output cadence (not a fixed `--stall`/`stall_timeout`).
    pub learnt: bool,
}

/// A run whose steps advance at under half its own usual rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slowdown {
    /// Steps per second over the last stall window.
    pub rate_per_sec: f64,
    /// Steps per second over the whole run so far.
    pub usual_per_sec: f64,
}

fn secs(x: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(x).ok()
}

/// Progress from the latest metrics and the time the run has taken.
pub fn progress(snapshot: &MetricsSnapshot, elapsed: Duration, expected: Option<Duration>) -> Progress {
    let rate = snapshot.rate_per_sec.filter(|r| r.is_finite() && *r > 0.0);
    let mut p = Progress {
        step: snapshot.step,
        total: snapshot.total,
        rate_per_sec: rate,
        ..Progress::default()
    };
    if let (Some(step), Some(total)) = (snapshot.step, snapshot.total.filter(|t| *t > 0)) {
        let done = step.min(total);
        let remaining = (total - done) as f64;
        p.basis = Some(ProgressBasis::Steps);
        p.percent = Some(done as f64 / total as f64 * 100.0);
        p.eta = if remaining == 0.0 {
            Some(Duration::ZERO)
        } else if let Some(r) = rate {
            secs(remaining / r)
        } else if done > 0 {
            // No rate measured yet: assume the pace so far holds.
            secs(elapsed.as_secs_f64() * remaining / done as f64)
        } else {
            None
        };
    } else if let Some(expected) = expected.filter(|e| !e.is_zero()) {
        p.basis = Some(ProgressBasis::Time);
        p.percent = Some((elapsed.as_secs_f64() / expected.as_secs_f64() * 100.0).min(100.0));
        p.eta = expected.checked_sub(elapsed);
    }
    p
}

/// By how much the projected finish (now + ETA) passes `max`; None when it does not, or
/// when either is unknown.
pub fn projected_overrun(progress: &Progress, elapsed: Duration, max: Option<Duration>) -> Option<Duration> {
    let finish = elapsed.checked_add(progress.eta?)?;
    finish.checked_sub(max?).filter(|d| !d.is_zero())
}

/// Most metrics listed in a status update.
const SHOWN_METRICS: usize = 6;
/// The early overrun warning waits for this much of the run, so the slow first steps
/// (compilation, warm-up) do not raise it.
const OVERRUN_MIN_PERCENT: f64 = 1.0;

/// Progress as a status update shows it: percent, step/total, rate, ETA, the latest metrics
/// (charted ones first) and the projected overrun of the maximum duration.
pub fn report(
    snap: &MetricsSnapshot,
    cfg: &MetricsConfig,
    elapsed: Duration,
    expected: Option<Duration>,
    max: Option<Duration>,
) -> Progress {
    let mut p = progress(snap, elapsed, expected);
    // Only a step count measures the pace; a time-based percentage says nothing new.
    let overrun =
        if p.basis == Some(ProgressBasis::Steps) && p.percent.is_some_and(|x| x >= OVERRUN_MIN_PERCENT) {
            projected_overrun(&p, elapsed, max)
        } else {
            None
        };
    p.metrics = latest_metrics(snap, cfg);
    p.overrun = overrun;
    p
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

/// What kind of silence a stall is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StallKind {
    /// The process is alive but writes nothing.
    NoOutput,
    /// Lines keep coming but the step counter does not move.
    NoProgress,
}

/// A job that looks hung.
#[derive(Debug, Clone, PartialEq)]
pub struct Stall {
    /// The last sign of life of the kind that stopped (last line, or last step advance).
    pub since: DateTime<Utc>,
    pub kind: StallKind,
    /// The last line read, for context.
    pub last_line: Option<String>,
}

/// How the steps are moving.
#[derive(Debug, Clone, PartialEq)]
pub enum Pace {
    /// Not enough steps seen to judge.
    Unknown,
    Steady {
        rate_per_sec: f64,
    },
    /// Still advancing, but at under half the run's usual rate.
    Slow(Slowdown),
    Stalled(Stall),
}

/// How long a job may go without output before it looks hung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallAfter {
    /// A fixed timeout: `--stall`, the config's `stall_timeout = "30m"`.
    Fixed(Duration),
    /// From the job's own output cadence (`trainwatch run` without `--stall`, the config's
    /// `stall_timeout = "auto"`): [`CADENCE_FACTOR`] times the longest silence the job has
    /// had so far, never under [`CADENCE_FLOOR`]; `until_known` until the job has talked for
    /// [`CADENCE_LEARN`] in [`CADENCE_MIN_GAPS`] bursts or more.
    Cadence { until_known: Duration },
}

impl StallAfter {
    /// The timeout before anything is learnt: what the check period is derived from.
    pub fn initial(self) -> Duration {
        match self {
            StallAfter::Fixed(d) => d,
            StallAfter::Cadence { until_known } => until_known.min(CADENCE_FLOOR),
        }
    }
}

/// A job that printed in bursts at most a minute apart is called hung after 4 minutes of
/// silence… but never before 10: evaluations, checkpoints and epoch ends are quiet for
/// minutes, and the first of them may come after the cadence is learnt.
pub const CADENCE_FACTOR: u32 = 4;
pub const CADENCE_FLOOR: Duration = Duration::from_secs(10 * 60);
/// The cadence is trusted once the job has been watched this long…
pub const CADENCE_LEARN: Duration = Duration::from_secs(10 * 60);
/// …and has written in at least this many separate bursts.
pub const CADENCE_MIN_GAPS: u32 = 20;

/// What is known of a job's output cadence: how many bursts, and the longest silence
/// between two (from the start of watching to the first line counts: start-up is quiet).
#[derive(Debug, Clone, Copy, Default)]
struct Cadence {
    bursts: u32,
    longest: Duration,
}

/// Step samples are kept at most this often per stall window, which bounds memory.
const SAMPLES_PER_WINDOW: u32 = 64;
const MAX_SAMPLES: usize = 4 * SAMPLES_PER_WINDOW as usize;
/// A gap is only a stall when it is this many times the usual time between steps, so a job
/// whose steps are naturally slower than the stall timeout is not called hung.
const USUAL_GAP_FACTOR: f64 = 3.0;
const MAX_LINE_CHARS: usize = 300;
/// A recent rate under this fraction of the run's usual one is "slow".
const SLOW_RATIO: f64 = 0.5;

/// Watches for a job that is alive but silent or stuck. Fed "line seen at t" and "step
/// advanced at t"; asked `check(now, alive)`.
#[derive(Debug, Clone)]
pub struct StallDetector {
    after: StallAfter,
    cadence: Cadence,
    started: DateTime<Utc>,
    last_line: Option<(DateTime<Utc>, String)>,
    first_step: Option<(DateTime<Utc>, u64)>,
    last_step: Option<(DateTime<Utc>, u64)>,
    samples: VecDeque<(DateTime<Utc>, u64)>,
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl StallDetector {
    /// A fixed stall timeout `stall_after`; watching starts at `started`.
    pub fn new(stall_after: Duration, started: DateTime<Utc>) -> Self {
        Self::with(StallAfter::Fixed(stall_after), started)
    }

    /// A stall timeout fixed or learnt (see [`StallAfter`]); watching starts at `started`.
    pub fn with(after: StallAfter, started: DateTime<Utc>) -> Self {
        Self {
            after,
            cadence: Cadence::default(),
            started,
            last_line: None,
            first_step: None,
            last_step: None,
            samples: VecDeque::new(),
        }
    }

    /// Output seen at `at` (the newest line of a read, or a redrawn progress bar).
    pub fn line_seen(&mut self, at: DateTime<Utc>, line: &str) {
        let before = self.last_line.as_ref().map_or(self.started, |l| l.0);
        let gap = (at - before).to_std().unwrap_or_default();
        self.cadence.bursts = self.cadence.bursts.saturating_add(1);
        self.cadence.longest = self.cadence.longest.max(gap);
        let line = match line.char_indices().nth(MAX_LINE_CHARS) {
            Some((i, _)) => format!("{}…", &line[..i]),
            None => line.to_owned(),
        };
        self.last_line = Some((at, line));
    }

    /// The step counter read at `at`. Only a change counts as progress; a step lower than
    /// before (a new epoch's bar, a restart) starts the rate history afresh.
    pub fn step_seen(&mut self, at: DateTime<Utc>, step: u64) {
        match self.last_step {
            Some((_, last)) if last == step => return,
            Some((_, last)) if step < last => {
                self.samples.clear();
                self.first_step = None;
            }
            _ => {}
        }
        self.last_step = Some((at, step));
        if self.first_step.is_none() {
            self.first_step = Some((at, step));
        }
        let spacing = to_chrono(self.stall_after(at) / SAMPLES_PER_WINDOW);
        // Keep samples about `spacing` apart: a new one within `spacing` of the one before
        // the last just moves the last forward.
        let n = self.samples.len();
        if n >= 2 && at - self.samples[n - 2].0 < spacing {
            self.samples[n - 1] = (at, step);
        } else {
            self.samples.push_back((at, step));
        }
        if self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// The run's usual time per step, from the first to the last step seen.
    pub fn usual_rate(&self) -> Option<f64> {
        let (t0, s0) = self.first_step?;
        let (t1, s1) = self.last_step?;
        let dt = (t1 - t0).num_milliseconds() as f64 / 1000.0;
        (dt > 0.0 && s1 > s0).then(|| (s1 - s0) as f64 / dt)
    }

    /// How long a silence is a stall as of `now`: the fixed timeout, or the one learnt from
    /// the cadence once it can be (see [`StallAfter::Cadence`]).
    pub fn stall_after(&self, now: DateTime<Utc>) -> Duration {
        match self.after {
            StallAfter::Fixed(d) => d,
            StallAfter::Cadence { until_known } => self.learnt(now).unwrap_or(until_known),
        }
    }

    /// The timeout learnt from the job's cadence as of `now`; None while it is fixed or not
    /// learnt yet.
    pub fn learnt(&self, now: DateTime<Utc>) -> Option<Duration> {
        let StallAfter::Cadence { .. } = self.after else {
            return None;
        };
        let watched = (now - self.started).to_std().unwrap_or_default();
        (watched >= CADENCE_LEARN && self.cadence.bursts >= CADENCE_MIN_GAPS).then(|| {
            self.cadence
                .longest
                .saturating_mul(CADENCE_FACTOR)
                .max(CADENCE_FLOOR)
        })
    }

    fn threshold(&self, now: DateTime<Utc>) -> chrono::Duration {
        let base = to_chrono(self.stall_after(now));
        match self.usual_rate() {
            Some(rate) => {
                let usual_gap =
                    chrono::Duration::milliseconds((USUAL_GAP_FACTOR / rate * 1000.0).min(1e15) as i64);
                base.max(usual_gap)
            }
            None => base,
        }
    }

    /// A stall as of `now`, or None. A process that is not alive is never stalled (its exit
    /// is reported instead).
    pub fn check(&self, now: DateTime<Utc>, process_alive: bool) -> Option<Stall> {
        if !process_alive {
            return None;
        }
        let threshold = self.threshold(now);
        let last_line_at = self.last_line.as_ref().map_or(self.started, |l| l.0);
        let last_line = self.last_line.as_ref().map(|l| l.1.clone());
        if now - last_line_at >= threshold {
            return Some(Stall {
                since: last_line_at,
                kind: StallKind::NoOutput,
                last_line,
            });
        }
        let (step_at, _) = self.last_step?;
        (now - step_at >= threshold).then_some(Stall {
            since: step_at,
            kind: StallKind::NoProgress,
            last_line,
        })
    }

    /// Steady, slow or stalled as of `now`. The recent rate is measured over the last stall
    /// window and compared with the run's usual rate.
    pub fn pace(&self, now: DateTime<Utc>, process_alive: bool) -> Pace {
        if let Some(stall) = self.check(now, process_alive) {
            return Pace::Stalled(stall);
        }
        let Some(usual) = self.usual_rate() else {
            return Pace::Unknown;
        };
        let window = to_chrono(self.stall_after(now));
        if window <= chrono::Duration::zero() {
            return Pace::Steady { rate_per_sec: usual };
        }
        let start = now - window;
        let (Some((_, last)), Some(&(_, base))) = (
            self.last_step,
            self.samples.iter().rev().find(|(t, _)| *t <= start),
        ) else {
            // The run is younger than one window: its usual rate is all there is.
            return Pace::Steady { rate_per_sec: usual };
        };
        let recent = last.saturating_sub(base) as f64 / (window.num_milliseconds() as f64 / 1000.0);
        if recent < usual * SLOW_RATIO {
            Pace::Slow(Slowdown {
                rate_per_sec: recent,
                usual_per_sec: usual,
            })
        } else {
            Pace::Steady { rate_per_sec: recent }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let v = report(
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

    fn at(t0: DateTime<Utc>, s: i64) -> DateTime<Utc> {
        t0 + chrono::Duration::seconds(s)
    }

    /// A job that talks every 5 minutes is not hung after 15 minutes of silence (a fixed
    /// 10-minute limit would say it is): its limit is four times its longest silence, 20 min.
    #[test]
    fn a_quiet_job_gets_a_limit_from_its_own_longest_silence() {
        let t0 = Utc::now();
        let mut d = StallDetector::with(
            StallAfter::Cadence {
                until_known: Duration::from_secs(30 * 60),
            },
            t0,
        );
        for k in 1..=24 {
            d.line_seen(at(t0, k * 300), "epoch done");
        }
        let last = 24 * 300;
        assert_eq!(d.learnt(at(t0, last)), Some(Duration::from_secs(20 * 60)));
        assert_eq!(d.check(at(t0, last + 15 * 60), true), None);
        let stall = d.check(at(t0, last + 21 * 60), true).expect("hung");
        assert_eq!(stall.kind, StallKind::NoOutput);
    }

    /// Until the job has talked for ten minutes in twenty bursts, the fallback holds; a long
    /// start-up (loading data) counts as one of its silences.
    #[test]
    fn the_fallback_holds_until_the_cadence_is_known_and_start_up_counts() {
        let t0 = Utc::now();
        let fallback = Duration::from_secs(30 * 60);
        let mut d = StallDetector::with(
            StallAfter::Cadence {
                until_known: fallback,
            },
            t0,
        );
        // 15 minutes of loading, then a line every second for 5 minutes.
        for k in 0..300 {
            d.line_seen(at(t0, 900 + k), "step");
        }
        assert_eq!(d.learnt(at(t0, 1199)), Some(Duration::from_secs(60 * 60)));
        let mut fresh = StallDetector::with(
            StallAfter::Cadence {
                until_known: fallback,
            },
            t0,
        );
        for k in 1..=10 {
            fresh.line_seen(at(t0, k * 30), "step");
        }
        // Ten bursts only: not learnt, the fallback is the limit.
        assert_eq!(fresh.learnt(at(t0, 700)), None);
        assert_eq!(fresh.stall_after(at(t0, 700)), fallback);
        assert_eq!(fresh.check(at(t0, 300 + 29 * 60), true), None);
        assert!(fresh.check(at(t0, 300 + 30 * 60), true).is_some());
        // A fixed limit is never learnt.
        let fixed = StallDetector::new(fallback, t0);
        assert_eq!(fixed.learnt(at(t0, 10_000)), None);
    }
}

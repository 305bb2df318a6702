//! The log pipeline of one job: bytes in, engine [`Event`]s out.
//!
//! It owns everything that reads the log — the [`Follower`] (where we are in the file), the
//! [`Detector`] (tracebacks, crashes, diagnostics), the [`MetricLineFilter`] and the
//! [`MetricsTracker`] (metrics and loss health; on a thread of its own with a follower of its
//! own, see [`worker`]), the [`StallDetector`] (is the process hung or just slow?) — and the
//! one allocator of incident keys ([`IncidentKeys`]). The job's task
//! drives it (read now, the log went quiet, the process ended, time to check for a stall) and
//! steps the engine with what comes out; the pipeline never looks at the engine's state.
//!
//! Measuring and deciding are split: the pipeline measures (a stall as of now, the pace, the
//! progress figures), the engine decides once per episode what to say about it.
//!
//! Incident identity: every incident the pipeline reports carries a key from one counter that
//! is saved with the log position ([`PipelineState`]), in the same store transaction as the
//! engine state that holds the keys. So a key is never handed out twice for a job, whatever
//! number of supervisors come and go (a crash before the commit loses both the key and the
//! incident, and the re-read lines find the incident again under a key not yet used).
//! The metrics tracker's position is saved beside the reader's: it is where the tracker stood
//! after the last of its findings the pipeline handed to the engine, so the lines it read but
//! had not handed over are read again by the next supervisor's tracker.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::chart::{self, ChartError};
use crate::engine::Event;
use crate::model::{metric_value, Category, ExitOutcome, Incident};
use crate::redact::Redactor;
use crate::watch::detect::{DetectConfig, Detector, Finding, LogDisk};
use crate::watch::follower::{
    self, display_segment, display_segment_bytes, render_line, Chunk, FollowState, Follower, ReadBuf,
};
use crate::watch::metric_lines::MetricLineFilter;
use crate::watch::metrics::{HealthSignal, MetricsConfig, MetricsTracker, Series};
use crate::watch::progress::{self, Hung, Pace, StallAfter, StallDetector, StallWatch};

mod scanner;
mod worker;
use worker::MetricsWorker;

/// Size of the status chart.
const CHART_SIZE: (u32, u32) = (800, 400);
/// Stall checks run this often relative to the stall timeout, within the bounds below.
const STALL_CHECKS_PER_TIMEOUT: u32 = 4;
const STALL_CHECK_MIN: Duration = Duration::from_millis(50);
const STALL_CHECK_MAX: Duration = Duration::from_secs(5);
/// Keys from here up belong to the engine, which files an exit the log did not explain as
/// incident `u64::MAX - attempt`; the counter below starts at 0 and never gets near them.
const ENGINE_KEYS_FROM: u64 = u64::MAX - u32::MAX as u64;
/// Convergence incidents' lines remembered for matching the tracker's findings (the
/// detector keeps at most 1000 incidents an attempt).
const MAX_FILED: usize = 1024;

/// What the store keeps of a pipeline between supervisors: the log position, the metrics
/// tracker's and the next incident key. Stored as one JSON value; a store written before
/// incident keys were saved holds the bare follow state, which reads as next key 0 (see
/// [`IncidentKeys::restore`]), and one written before the tracker had its own position reads
/// as the tracker standing where the reader does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineState {
    #[serde(flatten)]
    pub follow: FollowState,
    #[serde(default)]
    pub next_incident_key: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<FollowState>,
}

/// The one place incident keys come from. Detector incidents get a key when first seen (by
/// the detector's index, which restarts at 0 with every new detector); health signals get a
/// fresh key each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentKeys {
    next: u64,
    /// Keys of the current detector's incidents, by index.
    detector: Vec<u64>,
}

impl IncidentKeys {
    /// Continue from a saved counter. `used` are the keys the engine holds for the run under
    /// way: the counter starts past them, so a store saved before the counter existed (or a
    /// counter lost with a failed save) cannot reuse one.
    pub fn restore(next: u64, used: impl IntoIterator<Item = u64>) -> Self {
        let past_used = used
            .into_iter()
            .filter(|k| *k < ENGINE_KEYS_FROM)
            .max()
            .map_or(0, |k| k + 1);
        Self {
            next: next.max(past_used),
            detector: Vec::new(),
        }
    }

    /// The next key to hand out (what is saved).
    pub fn next(&self) -> u64 {
        self.next
    }

    /// A key for something that is not a detector incident.
    pub fn fresh(&mut self) -> u64 {
        let k = self.next;
        self.next += 1;
        k
    }

    /// The key of the current detector's incident `index` (allocated on first sight).
    pub fn of_detector(&mut self, index: usize) -> u64 {
        while self.detector.len() <= index {
            let k = self.fresh();
            self.detector.push(k);
        }
        self.detector[index]
    }

    /// A new detector starts counting its incidents at 0: they all get new keys.
    pub fn new_detector(&mut self) {
        self.detector.clear();
    }
}

/// How a job's log is read, from its spec.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub log: PathBuf,
    pub detect: DetectConfig,
    pub metrics: MetricsConfig,
    /// None: no stall detection.
    pub stall_timeout: Option<StallAfter>,
    /// What is redacted from every event before it leaves the pipeline.
    pub redact: Redactor,
}

/// What one read of the log produced.
#[derive(Debug, Default)]
pub struct Read {
    /// Incidents (new and updated) and the newest line shown, in order.
    pub events: Vec<Event>,
    /// The read stopped at its budget with more of the log waiting.
    pub more: bool,
    /// New lines or findings arrived (the log is not quiet).
    pub activity: bool,
    /// Lines went to the metrics tracker: the progress figures may have moved.
    pub metrics: bool,
}

pub struct Pipeline {
    cfg: PipelineConfig,
    follower: Follower,
    detector: Detector,
    /// The metrics tracker, on its own thread.
    metrics: MetricsWorker,
    /// Where the tracker stood after the last of its batches taken (what is saved).
    metrics_state: FollowState,
    /// The tracker's step as of that batch.
    step: Option<u64>,
    /// Lines of the convergence incidents filed for the run (the engine's, restored, and
    /// those since), newest last: a non-finite loss the tracker finds on one of them is that
    /// incident. The tracker reads behind the detector, and after a restart re-reads what
    /// it had not handed over.
    filed: std::collections::VecDeque<u64>,
    /// Tests: every read waits for the tracker to read what it read.
    #[cfg(test)]
    metrics_sync: bool,
    /// Watches for a hung process while one runs (None: no stall timeout, or no process).
    stall: Option<StallDetector>,
    /// The unfinished last line as last seen (a progress bar redrawn with `\r`).
    partial: Option<String>,
    keys: IncidentKeys,
    /// A line the follower rendered, on its way to the detector (reused by every read).
    line_buf: Vec<u8>,
    /// The log's path was found swapped (a link, not a regular file) and that was reported.
    swap_reported: bool,
}

impl Pipeline {
    /// A pipeline continuing from `saved`; `used_keys` are the incident keys of the run under
    /// way (see [`IncidentKeys::restore`]).
    pub fn new(cfg: PipelineConfig, saved: PipelineState, used_keys: impl IntoIterator<Item = u64>) -> Self {
        let metrics_state = saved.metrics.unwrap_or_else(|| saved.follow.clone());
        Self {
            follower: reader(cfg.log.clone(), saved.follow),
            detector: Detector::new(cfg.detect.clone()),
            metrics: MetricsWorker::start(cfg.log.clone(), metrics_state.clone(), &cfg.metrics),
            metrics_state,
            step: None,
            filed: Default::default(),
            #[cfg(test)]
            metrics_sync: false,
            stall: None,
            partial: None,
            keys: IncidentKeys::restore(saved.next_incident_key, used_keys),
            line_buf: Vec::new(),
            swap_reported: false,
            cfg,
        }
    }

    /// The lines of the convergence incidents the engine holds for the run under way.
    pub fn restore_filed(&mut self, lines: impl IntoIterator<Item = u64>) {
        for line in lines {
            self.file(line);
        }
    }

    fn file(&mut self, line: u64) {
        if !self.filed.contains(&line) {
            if self.filed.len() >= MAX_FILED {
                self.filed.pop_front();
            }
            self.filed.push_back(line);
        }
    }

    /// What the store keeps (saved with every engine step).
    pub fn state(&self) -> PipelineState {
        PipelineState {
            follow: self.follower.state(),
            next_incident_key: self.keys.next(),
            metrics: Some(self.metrics_state.clone()),
        }
    }

    /// A new run: a fresh log (the executor moves an old one aside) read from its start, and
    /// fresh metrics. Incident keys go on counting.
    pub fn new_run(&mut self) {
        self.follower = reader(self.cfg.log.clone(), FollowState::default());
        self.metrics.reset();
        self.metrics_state = FollowState::default();
        self.step = None;
        self.filed.clear();
    }

    /// Tests: every read waits until the tracker has read what the reader read, as when
    /// both ran on one thread.
    #[cfg(test)]
    pub(crate) fn metrics_sync(&mut self) {
        self.metrics_sync = true;
    }

    /// A new process of the run (first attempt or a restart): what it prints is judged by a
    /// fresh detector, so each attempt's incidents are its own.
    pub fn new_attempt(&mut self, now: DateTime<Utc>) {
        self.detector = Detector::new(self.cfg.detect.clone());
        self.keys.new_detector();
        self.process_running(now);
    }

    /// A process runs (spawned, or re-adopted): watch it for stalls from now.
    pub fn process_running(&mut self, now: DateTime<Utc>) {
        self.stall = self.cfg.stall_timeout.map(|t| StallDetector::with(t, now));
    }

    /// The process ended: nothing to watch for stalls any more.
    pub fn process_ended(&mut self) {
        self.stall = None;
    }

    /// The job's process (None: none runs): the file it holds open is its log, whatever the
    /// log's path names now (see `Follower::set_writer`).
    pub fn set_writer(&mut self, pid: Option<u32>) {
        self.follower.set_writer(pid);
        self.metrics.set_writer(pid);
    }

    /// Resolves when the log may have grown, or the metrics tracker has something to hand
    /// over.
    pub async fn changed(&mut self) {
        tokio::select! {
            _ = self.follower.changed() => {}
            _ = self.metrics.ready() => {}
        }
    }

    /// Read what the log gained; feed the detector, the metrics and the stall watch.
    pub fn read(&mut self, now: DateTime<Utc>) -> Read {
        let mut findings = Vec::new();
        // The newest line of this read with something to show in it.
        let mut shown: Option<(u64, String)> = None;
        let (detector, line_buf) = (&mut self.detector, &mut self.line_buf);
        // From a large window on, this read works through a backlog: the trackers give way.
        let mut behind = None;
        // The detector takes whole regions of raw lines (a large window's scan shared with
        // another thread, see `scanner`); the metrics tracker reads the same lines on its own
        // thread, at its own pace (see `worker`).
        let res = self.follower.read_windows_shared(|chunks, buf| {
            if behind.is_none() && chunks.iter().map(Chunk::len).sum::<usize>() >= scanner::SHARE_FROM {
                behind = Some(worker::reader_behind());
            }
            let mut out = Vec::new();
            let shown_here = detect(detector, chunks, buf, line_buf, &mut out);
            coalesce(&mut findings, out);
            if shown_here.is_some() {
                shown = shown_here;
            }
        });
        drop(behind);
        if res.as_ref().is_ok_and(|s| s.bytes > 0) {
            self.metrics.poke(now);
            #[cfg(test)]
            if self.metrics_sync {
                self.metrics.settle();
            }
        }
        let taken = self.metrics.take(&self.follower.state());
        let (signals, fed) = self.took(taken);
        let (last_no, last_text) = match shown {
            Some((no, text)) => (Some(no), text),
            None => (None, String::new()),
        };
        let (more, refused) = match res {
            Ok(stats) => (stats.more, stats.refused),
            Err(e) => {
                tracing::warn!(log = %self.cfg.log.display(), error = %e, "reading the log");
                (false, false)
            }
        };
        let activity = last_no.is_some() || !findings.is_empty();
        // A progress bar redrawn with `\r` and no newline is output too: a job showing only
        // that is alive and talking, not silent.
        let partial = self.follower.pending_tail();
        let redrawn = partial.is_some() && partial != self.partial;
        self.partial = partial;
        if let Some(stall) = &mut self.stall {
            if last_no.is_some() {
                stall.line_seen(now, &last_text);
            } else if let (true, Some(tail)) = (redrawn, &self.partial) {
                stall.line_seen(now, tail);
            }
            // The tracker's step as far as it has read.
            if let Some(step) = self.step {
                stall.step_seen(now, step);
            }
        }
        let mut events = self.incidents(findings, signals);
        if refused && !self.swap_reported {
            self.swap_reported = true;
            events.push(Event::Incident {
                key: self.keys.fresh(),
                incident: swapped_log(&self.cfg.log),
            });
        }
        if let Some(line_no) = last_no {
            events.push(Event::LogActivity {
                last_line: last_text,
                line_no,
            });
        }
        Read {
            events: self.redacted(events),
            more,
            activity,
            metrics: fed,
        }
    }

    /// The process ended with `outcome` and the log has been read to its end: judge its last
    /// partial line and what the exit says (the one exit classifier, in the detector).
    /// `None`: trainwatch itself stopped the process (a kill, a restart), so its end explains
    /// nothing and is no incident; what the log said before still counts.
    pub fn finish(&mut self, outcome: Option<ExitOutcome>, now: DateTime<Utc>) -> Vec<Event> {
        let mut findings = Vec::new();
        let detector = &mut self.detector;
        self.follower.flush_partial(|line| {
            coalesce(&mut findings, detector.push_line(line.no, &line.text));
        });
        // The tracker reads to the end too, and its last line: everything it found is
        // handed over with the exit.
        self.metrics.finish(now);
        let taken = self.metrics.take_all();
        let (signals, _) = self.took(taken);
        if outcome.is_some_and(|o| !o.success()) {
            self.detector.note_log_disk(LogDisk::full_at(&self.cfg.log));
        }
        findings.extend(self.detector.finish(outcome));
        let events = self.incidents(findings, signals);
        self.redacted(events)
    }

    /// The process ended: resolves once the metrics tracker has read to the end of the log
    /// and its last line, so that [`finish`](Self::finish) does not wait for it.
    pub async fn metrics_to_end(&self, now: DateTime<Utc>) {
        self.metrics.finished(now).await
    }

    /// An incident the executor found (not the log): it takes the run's next incident key
    /// and is redacted like every other.
    pub fn executor_incident(&mut self, incident: Incident) -> Event {
        let event = Event::Incident {
            key: self.keys.fresh(),
            incident,
        };
        self.redacted(vec![event]).pop().expect("one event in, one out")
    }

    /// The log went quiet for a while: settle what the detector holds pending.
    pub fn idle(&mut self) -> Vec<Event> {
        let findings = self.detector.idle();
        let events = self.incidents(findings, Vec::new());
        self.redacted(events)
    }

    /// Progress as of `now`, `elapsed` into the attempt, for a status update: with whether
    /// the job is slow against its own usual pace (a stall is told apart, by the stall check).
    pub fn progress(
        &self,
        now: DateTime<Utc>,
        elapsed: Duration,
        expected: Option<Duration>,
        max: Option<Duration>,
    ) -> Event {
        let (snap, mut progress) = {
            let tracker = self.metrics.tracker();
            let snap = tracker.snapshot();
            let progress = progress::report(&snap, tracker.config(), elapsed, expected, max);
            (snap, progress)
        };
        if let Some(stall) = &self.stall {
            match stall.pace(now, true) {
                Pace::Slow(slow) => progress.slowdown = Some(slow),
                Pace::Stalled(s) => {
                    progress.hung = Some(Hung {
                        quiet: (now - s.since).to_std().unwrap_or_default(),
                        kind: s.kind,
                    })
                }
                Pace::Unknown | Pace::Steady { .. } => {}
            }
            progress.stall_watch = Some(StallWatch {
                after: stall.stall_after(now),
                learnt: stall.learnt(now).is_some(),
            });
        }
        Event::Progress {
            progress,
            convergence: snap.convergence,
        }
    }

    /// How often to check for a stall; None while there is nothing to watch.
    pub fn stall_check_every(&self) -> Option<Duration> {
        let timeout = self.cfg.stall_timeout?.initial();
        self.stall.as_ref()?;
        Some((timeout / STALL_CHECKS_PER_TIMEOUT).clamp(STALL_CHECK_MIN, STALL_CHECK_MAX))
    }

    /// The stall measure as of `now`: `Stalled` while the process looks hung (the engine
    /// warns once per episode), `StallEnded` otherwise (the engine ignores it unless it had
    /// warned). None when no process is watched.
    pub fn stall_check(&self, now: DateTime<Utc>) -> Option<Event> {
        let detector = self.stall.as_ref()?;
        Some(match detector.pace(now, true) {
            Pace::Stalled(stall) => Event::Stalled {
                since: stall.since,
                kind: stall.kind,
                last_line: stall.last_line.map(|l| self.cfg.redact.line(&l).into_owned()),
            },
            _ => Event::StallEnded,
        })
    }

    /// The chart of the charted metrics as a PNG; `NoData` when none has a value yet.
    pub fn chart(&self, title: &str) -> Result<Vec<u8>, ChartError> {
        let tracker = self.metrics.tracker();
        let series: Vec<(&str, &Series)> = tracker
            .config()
            .chart
            .iter()
            .filter_map(|name| tracker.series(name).map(|s| (name.as_str(), s)))
            .collect();
        chart::render_chart(title, &series, CHART_SIZE.0, CHART_SIZE.1)
    }

    /// What the tracker handed over: its health signals (with their line numbers), whether
    /// it read metric lines; its position and step are kept.
    fn took(&mut self, batches: Vec<worker::Batch>) -> (Vec<(u64, HealthSignal)>, bool) {
        let (mut signals, mut fed) = (Vec::new(), false);
        for b in batches {
            signals.extend(b.signals);
            fed |= b.fed;
            self.step = b.step;
            self.metrics_state = b.state;
        }
        (signals, fed)
    }

    /// Detector findings and metric health signals (with their line numbers) as incident
    /// events. A non-finite loss on a line the detector also reported is that incident (the
    /// detector's verdict stands, as `trainwatch triage` gives it), not a second one: the
    /// tracker is behind the detector, so that incident may be of an earlier read.
    /// Every event leaves the pipeline redacted: what the engine holds, the store keeps and
    /// any chat or terminal shows carries no secret. (The detector and the metrics read the
    /// raw line: redaction must not hide an error from them.)
    fn redacted(&self, mut events: Vec<Event>) -> Vec<Event> {
        let r = &self.cfg.redact;
        for e in &mut events {
            match e {
                Event::Incident { incident, .. } | Event::IncidentUpdated { incident, .. } => {
                    r.incident(incident)
                }
                Event::LogActivity { last_line, .. } => *last_line = r.line(last_line).into_owned(),
                _ => {}
            }
        }
        events
    }

    fn incidents(&mut self, findings: Vec<Finding>, signals: Vec<(u64, HealthSignal)>) -> Vec<Event> {
        let mut own = Vec::new();
        for (line, signal) in signals {
            let seen = matches!(signal, HealthSignal::LossNonFinite { .. })
                && (self.filed.contains(&line)
                    || findings.iter().any(|f| match f {
                        Finding::New { incident, .. } | Finding::Updated { incident, .. } => {
                            incident.line == line && incident.category == Category::Convergence
                        }
                    }));
            if !seen {
                own.push(health_incident(&signal, line));
            }
        }
        for f in &findings {
            let (Finding::New { incident, .. } | Finding::Updated { incident, .. }) = f;
            if incident.category == Category::Convergence {
                self.file(incident.line);
            }
        }
        let mut events = self.detector_events(findings);
        for incident in own {
            if incident.category == Category::Convergence {
                self.file(incident.line);
            }
            let key = self.keys.fresh();
            events.push(Event::Incident { key, incident });
        }
        events
    }

    fn detector_events(&mut self, findings: Vec<Finding>) -> Vec<Event> {
        let mut events = Vec::new();
        // A burst updates the same incident many times in one read: only the newest matters.
        let mut updates: Vec<(u64, Incident)> = Vec::new();
        for f in findings {
            match f {
                Finding::New { index, incident } => {
                    let key = self.keys.of_detector(index);
                    events.extend(
                        updates
                            .drain(..)
                            .map(|(key, incident)| Event::IncidentUpdated { key, incident }),
                    );
                    events.push(Event::Incident { key, incident });
                }
                Finding::Updated { index, incident } => {
                    let key = self.keys.of_detector(index);
                    match updates.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = incident,
                        None => updates.push((key, incident)),
                    }
                }
            }
        }
        events.extend(
            updates
                .into_iter()
                .map(|(key, incident)| Event::IncidentUpdated { key, incident }),
        );
        events
    }
}

/// The metric-line prefilter and the tracker behind it, fed lines as they are read.
#[derive(Debug)]
struct Metrics {
    filter: MetricLineFilter,
    tracker: MetricsTracker,
}

/// What the metrics made of some lines.
#[derive(Debug, Default)]
struct Fed {
    /// Lines went to the tracker.
    fed: bool,
    /// Health signals, with their line numbers.
    signals: Vec<(u64, HealthSignal)>,
}

impl Metrics {
    fn new(cfg: &MetricsConfig) -> Self {
        Self {
            filter: MetricLineFilter::new(cfg),
            tracker: MetricsTracker::new(cfg.clone()),
        }
    }

    /// The lines of a window's chunks; of a [`Chunk::Lines`] region, only those the
    /// prefilter lets through are decoded.
    fn chunks(&mut self, chunks: &[Chunk<'_>], now: DateTime<Utc>) -> Fed {
        let mut fed = Fed::default();
        let mut scratch = String::new();
        for chunk in chunks {
            match *chunk {
                Chunk::Lines { first, bytes } => {
                    for (no, raw) in follower::lines(first, bytes) {
                        if self.filter.wants_bytes(raw) {
                            let (text, _) = render_line(raw, &mut scratch);
                            self.push(no, text, now, &mut fed);
                        }
                    }
                }
                Chunk::Line(line) => {
                    if self.filter.wants(line.text) {
                        self.push(line.no, line.text, now, &mut fed);
                    }
                }
            }
        }
        fed
    }

    fn line(&mut self, no: u64, text: &str, now: DateTime<Utc>) -> Fed {
        let mut fed = Fed::default();
        if self.filter.wants(text) {
            self.push(no, text, now, &mut fed);
        }
        fed
    }

    fn push(&mut self, no: u64, text: &str, now: DateTime<Utc>, fed: &mut Fed) {
        fed.fed = true;
        fed.signals
            .extend(self.tracker.push_line(text, now).into_iter().map(|s| (no, s)));
    }
}

/// Feeds a window's chunks to the detector, its findings into `out`; returns the newest line
/// with something to show in it (see [`newest_shown`]). `buf` is the read's buffer, which
/// the [`Chunk::Lines`] lie in: when they are large, their scan is shared with another
/// thread ([`scanner`]).
fn detect(
    detector: &mut Detector,
    chunks: &[Chunk<'_>],
    buf: &ReadBuf,
    line_buf: &mut Vec<u8>,
    out: &mut Vec<Finding>,
) -> Option<(u64, String)> {
    let run_bytes: usize = chunks
        .iter()
        .map(|c| match c {
            Chunk::Lines { bytes, .. } => bytes.len(),
            Chunk::Line(_) => 0,
        })
        .sum();
    let shared = (run_bytes >= scanner::SHARE_FROM).then(|| scanner::share(buf, regions(chunks, buf)));
    // Lines in each chunk, for the newest shown.
    let mut counts = Vec::with_capacity(chunks.len());
    // The shared regions of the chunks before this one.
    let mut k = 0;
    for chunk in chunks {
        match *chunk {
            Chunk::Lines { first, bytes } => {
                let count = match &shared {
                    Some(shared) => {
                        let mut n = first;
                        for region in cut(bytes) {
                            let scan = shared.get(k, region);
                            n += detector.push_scanned(n, region, &scan, out);
                            k += 1;
                        }
                        n - first
                    }
                    None => detector.push_region(first, bytes, out),
                };
                counts.push(count);
            }
            Chunk::Line(line) => {
                line_buf.clear();
                line_buf.extend_from_slice(line.text.as_bytes());
                line_buf.push(b'\n');
                detector.push_region(line.no, line_buf, out);
                counts.push(1);
            }
        }
    }
    if let Some(shared) = shared {
        shared.release();
    }
    // Only the newest line shown matters: from the last chunk back.
    chunks
        .iter()
        .zip(counts)
        .rev()
        .find_map(|(chunk, count)| match *chunk {
            Chunk::Lines { first, bytes } => newest_shown(first, count, bytes),
            Chunk::Line(line) => {
                let seg = display_segment(line.text);
                (!seg.trim().is_empty()).then(|| (line.no, seg.to_owned()))
            }
        })
}

/// The reading thread's follower: a backlog's next window is read ahead on the scanning
/// thread while the detector works on the current one (see [`scanner`]).
fn reader(log: PathBuf, state: FollowState) -> Follower {
    let mut follower = Follower::new(log, state);
    follower.set_read_ahead(std::sync::Arc::new(scanner::OnScanThread));
    follower
}

/// The regions [`cut`] makes of a window's runs, as offsets in the read's buffer.
fn regions(chunks: &[Chunk<'_>], buf: &ReadBuf) -> Vec<std::ops::Range<usize>> {
    let base = buf.as_ptr() as usize;
    let mut out = Vec::new();
    for chunk in chunks {
        if let Chunk::Lines { bytes, .. } = chunk {
            for region in cut(bytes) {
                let start = region.as_ptr() as usize - base;
                debug_assert!(
                    start + region.len() <= buf.len(),
                    "a run lies in the read's buffer"
                );
                out.push(start..start + region.len());
            }
        }
    }
    out
}

/// A run of whole lines cut into regions of about [`scanner::REGION`] bytes, each ending
/// with a line's `\n`.
fn cut(run: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut rest = run;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = if rest.len() <= scanner::REGION {
            rest.len()
        } else {
            let from = scanner::REGION - 1;
            memchr::memchr(b'\n', &rest[from..]).map_or(rest.len(), |i| from + i + 1)
        };
        let (region, more) = rest.split_at(end);
        rest = more;
        Some(region)
    })
}

/// The newest line of a region of `count` whole lines (the first numbered `first`) with
/// something to show in it: its number and the text a terminal shows of it. Searched back
/// from the end, so only the last lines are decoded.
fn newest_shown(first: u64, count: u64, bytes: &[u8]) -> Option<(u64, String)> {
    let mut end = bytes.len().checked_sub(1)?;
    let mut no = first + count.checked_sub(1)?;
    loop {
        let start = memchr::memrchr(b'\n', &bytes[..end]).map_or(0, |i| i + 1);
        let text = String::from_utf8_lossy(display_segment_bytes(&bytes[start..end]));
        if !text.trim().is_empty() {
            return Some((no, text.into_owned()));
        }
        if start == 0 {
            return None;
        }
        end = start - 1;
        no -= 1;
    }
}

/// Add a line's findings to a batch, folding consecutive updates of one incident into the
/// newest: a burst of 100,000 identical errors in one read keeps one update, not 100,000
/// copies of the incident.
fn coalesce(batch: &mut Vec<Finding>, new: Vec<Finding>) {
    for f in new {
        if let (Finding::Updated { index, .. }, Some(Finding::Updated { index: last, .. })) =
            (&f, batch.last())
        {
            if index == last {
                *batch.last_mut().expect("checked") = f;
                continue;
            }
        }
        batch.push(f);
    }
}

/// A health signal as an incident, with its numbers short enough to read in chat
/// (an exploding loss is 4.6e46, not 46 digits).
/// The log's path no longer names the file the job writes: someone who can write its folder
/// put a link (or a FIFO, a device…) there. Not read; said once, for a person to look at.
fn swapped_log(path: &std::path::Path) -> Incident {
    Incident {
        category: Category::Resource,
        severity: crate::model::Severity::Warning,
        line: 0,
        text: format!(
            "the log path {} was replaced by a symbolic link, a file that is not a regular file \
             or a file the job does not write: trainwatch does not read it and keeps following \
             the file the job opened",
            path.display()
        ),
        excerpt: Vec::new(),
        count: 1,
        reason: "the log's path was replaced under the job: its file system changed around it (resource)"
            .to_string(),
    }
}

fn health_incident(signal: &HealthSignal, line: u64) -> Incident {
    let mut incident = signal.to_incident(line);
    if let HealthSignal::LossDiverging {
        key,
        value,
        running_min,
    } = signal
    {
        let ratio = value / running_min;
        let ratio = if ratio < 1e4 {
            format!("{ratio:.1}")
        } else {
            format!("{ratio:.1e}")
        };
        incident.text = format!(
            "{key} is diverging: {} is {ratio}× its lowest value so far ({})",
            metric_value(*value),
            metric_value(*running_min)
        );
    }
    incident
}

#[cfg(test)]
mod tests;

//! What a job could not write yet. Each engine step's facts (history records and chat
//! messages for the outbox) go to the store through a [`Writer`]; when a commit fails (disk
//! full, an I/O error, a read-only remount) the writer holds them, in order, and retries with
//! backoff — the step that failed and every step after it, with the job's newest state, in
//! one transaction once the store takes writes again. Time comes in as data: the writer never
//! sleeps, it says when its next try is due ([`Writer::next_try`]) and the job's task wakes it.
//!
//! Memory is bounded: at most [`MAX_HELD_RECORDS`] history records are held. A newer version
//! of an incident replaces the held older one (the store upserts it anyway); beyond the bound
//! the oldest incident rows go first, then the oldest other rows, each counted and reported
//! when the store recovers. Outbox rows (chat messages) are never dropped: they are a few per
//! decision and losing one loses a message the team should have read.
//!
//! The writer says, once per episode, that the store became unwritable (with why), that it
//! was deleted or replaced (the store re-creates itself, see `Store::commit`), and that it
//! recovered; the job's task shows these in the chat. What it still holds when its job's task
//! ends with the store refusing is named in an [`Unwritten`]: `run` and `serve` print it and
//! exit non-zero, so a loss is never only a log line.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{JobNow, OutboxKind, StepWrite, Store, StoreError};
use crate::engine::{Record, StoreNotice};
use crate::model::{JobName, RunId};

/// Most history records held in memory while the store is unwritable.
pub const MAX_HELD_RECORDS: usize = 10_000;

/// When to try again after consecutive failures: doubles from `first`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The store's schedule: 1 s, 2 s, 4 s … up to a minute between tries.
    pub const STORE: Backoff = Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };

    /// The wait after the `failures`-th failure in a row (1 = the first).
    pub fn after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first
            .checked_mul(1u32 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }
}

/// Where held steps are written (the store; a scripted fake in tests).
pub trait StepSink {
    /// Write `steps` in order and the job's state as it is now, all or nothing; the store's
    /// generation written to (it changes when the store file was re-created).
    fn commit(&mut self, job: &JobName, steps: &[StepWrite], now: JobNow<'_>) -> Result<u64, StoreError>;
    fn path(&self) -> &Path;
}

impl StepSink for Store {
    fn commit(&mut self, job: &JobName, steps: &[StepWrite], now: JobNow<'_>) -> Result<u64, StoreError> {
        Store::commit(self, job, steps, now)
    }
    fn path(&self) -> &Path {
        Store::path(self)
    }
}

/// The current failure episode.
#[derive(Debug, Clone)]
struct Failing {
    since: DateTime<Utc>,
    failures: u32,
    next_try: DateTime<Utc>,
    /// The last failure, in plain words, and the store it was on.
    why: String,
    path: PathBuf,
}

/// What a writer holds that the store never took: lost when the process ends now.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwritten {
    pub job: JobName,
    pub path: PathBuf,
    /// Why the last try failed.
    pub why: String,
    /// Engine steps held (0: only the job's newest state and log position are unsaved).
    pub steps: usize,
    /// Incidents not stored: run, sequence number, the incident's (redacted) line.
    pub incidents: Vec<(RunId, u32, String)>,
    /// Other history records not stored (runs, attempts, decisions, resolutions).
    pub other_records: usize,
    /// Chat messages never queued: run, message key, what it asks the chat to do.
    pub messages: Vec<(RunId, String, OutboxKind)>,
    /// History records dropped beyond the bound earlier in this episode.
    pub dropped: u64,
}

impl std::fmt::Display for Unwritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "trainwatch: LOST: job {}: the store {} never took these writes ({}):",
            self.job,
            self.path.display(),
            self.why
        )?;
        writeln!(
            f,
            "  {} step(s): {} incident(s), {} other history record(s), {} chat message(s) never queued; \
             the job's latest state and log position are not saved",
            self.steps,
            self.incidents.len(),
            self.other_records,
            self.messages.len()
        )?;
        for (run, seq, text) in &self.incidents {
            writeln!(f, "  incident run {run} #{seq}: {text}")?;
        }
        for (run, key, kind) in &self.messages {
            writeln!(f, "  message run {run} {key} ({kind:?})")?;
        }
        if self.dropped > 0 {
            writeln!(
                f,
                "  and {} history record(s) dropped earlier beyond the bound of what is held",
                self.dropped
            )?;
        }
        Ok(())
    }
}

/// One job's writes to the store, held while the store refuses them.
#[derive(Debug)]
pub struct Writer {
    job: JobName,
    backoff: Backoff,
    bound: usize,
    held: VecDeque<StepWrite>,
    held_records: usize,
    /// History records dropped beyond the bound in this episode.
    dropped: u64,
    failing: Option<Failing>,
    /// The store generation last written to.
    generation: u64,
}

impl Writer {
    /// A writer for `job` on a store now at `generation`.
    pub fn new(job: JobName, generation: u64) -> Writer {
        Writer::with(job, generation, Backoff::STORE, MAX_HELD_RECORDS)
    }

    pub fn with(job: JobName, generation: u64, backoff: Backoff, bound: usize) -> Writer {
        Writer {
            job,
            backoff,
            bound,
            held: VecDeque::new(),
            held_records: 0,
            dropped: 0,
            failing: None,
            generation,
        }
    }

    /// Write `step` after whatever is held, with the job's state as it is now; while a
    /// retry is not yet due it is only held. What changed about the store, to tell.
    pub fn write(&mut self, sink: &mut dyn StepSink, step: StepWrite, now: JobNow<'_>) -> Vec<StoreNotice> {
        self.hold(step);
        if self.failing.as_ref().is_some_and(|f| now.at < f.next_try) {
            return Vec::new();
        }
        self.flush(sink, now)
    }

    /// Try the held steps again if a try is due (see [`Writer::next_try`]).
    pub fn retry(&mut self, sink: &mut dyn StepSink, now: JobNow<'_>) -> Vec<StoreNotice> {
        match self.next_try() {
            Some(due) if now.at >= due => self.flush(sink, now),
            _ => Vec::new(),
        }
    }

    /// Try the held steps now, due or not (the job's task is ending).
    pub fn flush_now(&mut self, sink: &mut dyn StepSink, now: JobNow<'_>) -> Vec<StoreNotice> {
        if self.held.is_empty() && self.failing.is_none() {
            return Vec::new();
        }
        self.flush(sink, now)
    }

    /// When the next try is due (None while the store takes writes).
    pub fn next_try(&self) -> Option<DateTime<Utc>> {
        self.failing.as_ref().map(|f| f.next_try)
    }

    /// What the store has not taken (None while it takes writes): lost if the job's task
    /// ends now.
    pub fn unwritten(&self) -> Option<Unwritten> {
        let f = self.failing.as_ref()?;
        let mut incidents = Vec::new();
        let mut other_records = 0;
        let mut messages = Vec::new();
        for step in &self.held {
            for r in &step.records {
                match r {
                    Record::Incident { run, seq, incident } => {
                        incidents.push((*run, *seq, incident.text.clone()))
                    }
                    _ => other_records += 1,
                }
            }
            messages.extend(step.outbox.iter().map(|o| (o.run, o.key.clone(), o.kind)));
        }
        Some(Unwritten {
            job: self.job.clone(),
            path: f.path.clone(),
            why: f.why.clone(),
            steps: self.held.len(),
            incidents,
            other_records,
            messages,
            dropped: self.dropped,
        })
    }

    /// Steps, history records and outbox rows held now.
    pub fn held(&self) -> (usize, usize, usize) {
        let outbox = self.held.iter().map(|s| s.outbox.len()).sum();
        (self.held.len(), self.held_records, outbox)
    }

    /// History records dropped beyond the bound so far in this episode.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn flush(&mut self, sink: &mut dyn StepSink, now: JobNow<'_>) -> Vec<StoreNotice> {
        let path: PathBuf = sink.path().to_path_buf();
        let mut notices = Vec::new();
        match sink.commit(&self.job, self.held.make_contiguous(), now) {
            Ok(generation) => {
                if generation != self.generation {
                    notices.push(StoreNotice::Replaced { path: path.clone() });
                    self.generation = generation;
                }
                if let Some(f) = self.failing.take() {
                    tracing::info!(job = %self.job, steps = self.held.len(), dropped = self.dropped, "the store takes writes again");
                    notices.push(StoreNotice::Recovered {
                        path,
                        after: (now.at - f.since).to_std().unwrap_or_default(),
                        steps: self.held.len(),
                        dropped: self.dropped,
                    });
                }
                self.held.clear();
                self.held_records = 0;
                self.dropped = 0;
            }
            Err(e) => {
                let why = e.why();
                let failures = self.failing.as_ref().map_or(0, |f| f.failures) + 1;
                let wait = self.backoff.after(failures);
                let next_try = now.at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                tracing::error!(job = %self.job, error = %e, failures, retry_in = ?wait, "cannot write to the store; holding the writes");
                if self.failing.is_none() {
                    notices.push(StoreNotice::Unwritable {
                        path: path.clone(),
                        why: why.clone(),
                        retry_in: wait,
                    });
                }
                self.failing = Some(Failing {
                    since: self.failing.as_ref().map_or(now.at, |f| f.since),
                    failures,
                    next_try,
                    why,
                    path,
                });
            }
        }
        notices
    }

    /// Add a step to what is held, keeping within the bound.
    fn hold(&mut self, mut step: StepWrite) {
        // A newer version of a held incident replaces it in place (where it was first found,
        // so a resolution held after it still applies).
        step.records.retain(|r| match r {
            Record::Incident { run, seq, incident } => {
                let older = self.held.iter_mut().flat_map(|s| s.records.iter_mut()).find(
                    |h| matches!(h, Record::Incident { run: r2, seq: s2, .. } if r2 == run && s2 == seq),
                );
                match older {
                    Some(Record::Incident { incident: held, .. }) => {
                        *held = incident.clone();
                        false
                    }
                    _ => true,
                }
            }
            _ => true,
        });
        if step.records.is_empty() && step.outbox.is_empty() {
            return; // nothing but the state, which every commit writes as it is then
        }
        self.held_records += step.records.len();
        self.held.push_back(step);
        while self.held_records > self.bound {
            if !self.drop_oldest(|r| matches!(r, Record::Incident { .. })) {
                self.drop_oldest(|_| true);
            }
        }
    }

    /// Drop the oldest held record matching `which`; false if none matched.
    fn drop_oldest(&mut self, which: impl Fn(&Record) -> bool) -> bool {
        for step in self.held.iter_mut() {
            if let Some(i) = step.records.iter().position(&which) {
                step.records.remove(i);
                self.held_records -= 1;
                self.dropped += 1;
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests;

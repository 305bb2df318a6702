//! Read-only questions the runtime asks the engine, so that it steers by what the engine
//! says rather than by reading the fields of its state (which are the engine's to arrange).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::machine::JobMachine;
use super::state::Phase;
use crate::model::{ProcessId, RunId};
use crate::review::Snapshot;

/// The run under way, as re-adoption needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnderWay {
    pub run: RunId,
    pub phase: Phase,
    /// The current (or, while starting one, the last) attempt.
    pub attempt: u32,
    /// Whether the engine last knew the attempt's process to be running.
    pub alive: bool,
    pub pid: Option<ProcessId>,
}

impl JobMachine {
    /// The run under way (None when there is none, or the last one is over).
    pub fn under_way(&self) -> Option<UnderWay> {
        let r = self.run().filter(|r| !r.phase.is_over())?;
        Some(UnderWay {
            run: r.id,
            phase: r.phase.clone(),
            attempt: r.attempt,
            alive: r.alive,
            pid: r.pid,
        })
    }

    /// A process is being started and is not running yet: what the log gains now belongs
    /// to it, and is read once the engine knows it.
    pub fn awaiting_process(&self) -> bool {
        self.under_way()
            .is_some_and(|u| matches!(u.phase, Phase::Starting | Phase::Restarting { .. }) && !u.alive)
    }

    /// The process being started is a new run's first (not a restart's).
    pub fn starting_new_run(&self) -> bool {
        self.under_way()
            .is_some_and(|u| matches!(u.phase, Phase::Starting))
    }

    /// The run under way has fixes submitted (so decisions bind a review of the code).
    pub fn has_fixes(&self) -> bool {
        self.run().is_some_and(|r| !r.fixes.is_empty())
    }

    /// The code as the run under way started (what its fixes are compared against).
    pub fn run_baseline(&self) -> Option<&Snapshot> {
        self.run().filter(|r| !r.phase.is_over())?.baseline.as_ref()
    }

    /// How long the current attempt of the run under way has run as of `now`.
    pub fn attempt_elapsed(&self, now: DateTime<Utc>) -> Option<Duration> {
        let r = self.run().filter(|r| !r.phase.is_over())?;
        if r.queue.is_some() {
            // Held in a scheduler's queue: the attempt has not run yet.
            return Some(Duration::ZERO);
        }
        Some((now - r.attempt_started_at).to_std().unwrap_or_default())
    }

    /// The lines of the convergence incidents the run under way holds.
    pub fn convergence_lines(&self) -> impl Iterator<Item = u64> + '_ {
        self.run()
            .filter(|r| !r.phase.is_over())
            .into_iter()
            .flat_map(|r| r.incidents.iter())
            .filter(|i| i.incident.category == crate::model::Category::Convergence)
            .map(|i| i.incident.line)
    }

    /// The incident keys the run under way holds.
    pub fn incident_keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.run()
            .filter(|r| !r.phase.is_over())
            .into_iter()
            .flat_map(|r| r.incidents.iter().map(|i| i.key))
    }
}

//! The job task's side of a job a scheduler holds: what the shared poller says of the job
//! (queued and why, started and until when, requeued) and of the controller (answering or
//! not) becomes the engine's events, each change once; and the engine's `ExtendLimit` is
//! carried out (`scontrol update TimeLimit=+…`). A local process has none of this.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::warn;

use super::{Internal, JobRuntime};
use crate::engine::Event;
use crate::exec::slurm::client::JobStatus;
use crate::exec::slurm::Controller;
use crate::exec::Process;

/// What was last told the engine of the scheduler's view of the attempt.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) enum Told {
    #[default]
    Nothing,
    Waiting(String),
    Running {
        limit: Option<Duration>,
    },
}

/// The event a new status makes, if it changes what the engine was told (and the new "told").
/// `now` dates the poll: a running job's limit is `now - elapsed + time limit`.
pub(super) fn event_of(told: &Told, status: &JobStatus, now: DateTime<Utc>) -> Option<(Event, Told)> {
    match status {
        JobStatus::Waiting { reason } => {
            let words = reason.words();
            match told {
                Told::Waiting(w) if *w == words => None,
                // Back in the queue after it ran: a node failed or it was preempted, and the
                // scheduler will run it again by itself.
                Told::Running { .. } => Some((
                    Event::Requeued {
                        reason: words.clone(),
                    },
                    Told::Waiting(words),
                )),
                _ => Some((
                    Event::Queued {
                        reason: words.clone(),
                    },
                    Told::Waiting(words),
                )),
            }
        }
        JobStatus::Running { elapsed, time_limit } => {
            let limit_at = time_limit.and_then(|l| {
                let ran = chrono::Duration::from_std(*elapsed).ok()?;
                Some(now - ran + chrono::Duration::from_std(l).ok()?)
            });
            let now_told = Told::Running { limit: *time_limit };
            match told {
                Told::Running { limit } if limit == time_limit => None,
                // The limit moved while it ran (an extension, ours or an administrator's).
                Told::Running { .. } => {
                    limit_at.map(|limit_at| (Event::LimitExtended { limit_at }, now_told))
                }
                _ => Some((Event::Started { limit_at }, now_told)),
            }
        }
        JobStatus::Paused { .. } | JobStatus::Ended(_) | JobStatus::Unknown => None,
    }
}

impl JobRuntime {
    /// Follow what the scheduler says of `handle`'s job and of its controller, for as long
    /// as the job is followed; each change reaches the job's task as an engine event.
    pub(super) fn watch_scheduler(&self, handle: &Arc<Process>) {
        let (Some(mut status), Some(watcher)) = (handle.scheduler_status(), self.slurm.clone()) else {
            return;
        };
        let mut controller = watcher.controller();
        let tx = self.internal_tx.clone();
        let pid = handle.id();
        tokio::spawn(async move {
            let mut told = Told::Nothing;
            let mut down = false;
            loop {
                let now = Utc::now();
                let current = status.borrow_and_update().clone();
                if let Some(s) = &current {
                    if let Some((event, next)) = event_of(&told, s, now) {
                        told = next;
                        if tx.send(Internal::Scheduler { pid, event }).is_err() {
                            return;
                        }
                    }
                    if matches!(s, JobStatus::Ended(_)) {
                        return;
                    }
                }
                let answering = matches!(&*controller.borrow_and_update(), Controller::Answering);
                let event = match (&*controller.borrow(), down) {
                    (Controller::NotAnswering { error }, false) => {
                        Some(Event::SchedulerUnreachable { error: error.clone() })
                    }
                    (Controller::Answering, true) => Some(Event::SchedulerAnswering),
                    _ => None,
                };
                down = !answering;
                if let Some(event) = event {
                    if tx.send(Internal::Scheduler { pid, event }).is_err() {
                        return;
                    }
                }
                tokio::select! {
                    changed = status.changed() => if changed.is_err() { return },
                    changed = controller.changed() => if changed.is_err() { return },
                }
            }
        });
    }

    /// Carry out the engine's `ExtendLimit`: ask the scheduler for `by` more; a refusal is told
    /// back (`ExtendFailed`), a success shows in the next poll as the new limit.
    pub(super) fn extend_limit(&self, by: Duration) {
        let Some(handle) = self.handle.clone() else { return };
        let tx = self.internal_tx.clone();
        let pid = handle.id();
        let job = self.spec.engine.job.clone();
        tokio::spawn(async move {
            let Process::Slurm(slurm) = &*handle else {
                let error = "only a job a scheduler holds has a time limit to extend".to_string();
                let _ = tx.send(Internal::Scheduler {
                    pid,
                    event: Event::ExtendFailed { error },
                });
                return;
            };
            if let Err(e) = slurm.extend(by).await {
                warn!(%job, error = %e, "extending the time limit");
                let _ = tx.send(Internal::Scheduler {
                    pid,
                    event: Event::ExtendFailed { error: e.to_string() },
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::slurm::{Outcome, PendingReason};

    fn waiting(reason: &str) -> JobStatus {
        JobStatus::Waiting {
            reason: PendingReason::parse(reason),
        }
    }

    fn running(elapsed: u64, limit: Option<u64>) -> JobStatus {
        JobStatus::Running {
            elapsed: Duration::from_secs(elapsed),
            time_limit: limit.map(|m| Duration::from_secs(m * 60)),
        }
    }

    /// Feed statuses in order; the events they make.
    fn events(statuses: &[JobStatus]) -> Vec<Event> {
        let now = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut told = Told::Nothing;
        let mut out = Vec::new();
        for s in statuses {
            if let Some((e, next)) = event_of(&told, s, now) {
                out.push(e);
                told = next;
            }
        }
        out
    }

    #[test]
    fn each_change_of_the_schedulers_view_is_told_once() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let got = events(&[
            waiting("Priority"),
            waiting("Priority"),
            waiting("Resources"),
            running(60, Some(120)),
            running(61, Some(120)),
            running(62, Some(180)),
            waiting("BeginTime"),
            running(1, Some(180)),
            JobStatus::Ended(Outcome::Completed),
        ]);
        let limit = |secs: i64| Some(now + chrono::Duration::seconds(secs));
        assert_eq!(
            got,
            [
                Event::Queued {
                    reason: PendingReason::Priority.words()
                },
                Event::Queued {
                    reason: PendingReason::Resources.words()
                },
                Event::Started {
                    limit_at: limit(120 * 60 - 60)
                },
                Event::LimitExtended {
                    limit_at: limit(180 * 60 - 62).unwrap()
                },
                Event::Requeued {
                    reason: PendingReason::parse("BeginTime").words()
                },
                Event::Started {
                    limit_at: limit(180 * 60 - 1)
                },
            ]
        );
    }

    #[test]
    fn a_job_without_a_limit_starts_with_none_and_an_ended_job_says_nothing_more() {
        assert_eq!(events(&[running(5, None)]), [Event::Started { limit_at: None }]);
        assert!(events(&[JobStatus::Ended(Outcome::Completed), JobStatus::Unknown]).is_empty());
    }
}

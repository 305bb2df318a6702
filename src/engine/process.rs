//! What the executor reports: the process started, could not start, or ended.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::event::{Action, Record};
use super::incidents::exit_incident;
use super::machine::{chrono_dur, JobMachine};
use super::message::{Body, DecisionPoint, MessageKey, OutputFile};
use super::state::Phase;
use super::text;
use crate::model::{ExitOutcome, Persona, ProcessId, Severity};

impl JobMachine {
    pub(super) fn spawned(
        &mut self,
        at: DateTime<Utc>,
        pid: ProcessId,
        checkpoint: Option<PathBuf>,
        previous_log: Option<PathBuf>,
        out: &mut Vec<Action>,
    ) {
        let interval = chrono_dur(self.settings.status_interval);
        let max = self.settings.max;
        let Some(run) = self.active_mut() else { return };
        let (first, old_ended, decided_by) = match &run.phase {
            Phase::Starting => (true, true, String::new()),
            Phase::Restarting { by, killed_old } => (false, !killed_old, by.clone()),
            _ => return,
        };
        let old_pid = run.pid;
        run.attempt += 1;
        run.attempt_started_at = at;
        run.pid = Some(pid);
        run.alive = true;
        // A new process: an earlier stall (and its question) is over.
        run.phase = Phase::RUNNING;
        run.next_status = at + interval;
        run.horizon = max.map(|m| at + chrono_dur(m));
        run.stall = None;
        // A new process (a new scheduler job): the old one's queue and limit are gone.
        run.queue = None;
        run.limit_at = None;
        run.extending = None;
        if first {
            run.previous_log = previous_log.clone();
        }
        let (id, attempt) = (run.id, run.attempt);
        out.push(Action::Record(Record::AttemptStarted {
            run: id,
            attempt,
            pid,
            checkpoint: checkpoint.clone(),
        }));
        let log_file = self.settings.log.clone();
        let msg = if first {
            self.message(
                at,
                MessageKey::Started,
                vec![Persona::Director],
                Body::TrainingStarted {
                    pid,
                    log_file,
                    argv: self.settings.argv.clone(),
                    expected: self.settings.expected,
                    max: self.settings.max,
                    previous_log,
                    queued: None,
                },
            )
        } else {
            self.message(
                at,
                MessageKey::Restarting(attempt),
                vec![Persona::Director],
                Body::Restarting {
                    old_pid,
                    old_ended,
                    new_pid: pid,
                    log_file,
                    checkpoint,
                    decided_by,
                    attempt,
                },
            )
        };
        out.push(Action::Post(msg));
        if first {
            // The process may write (and fail) before its start is confirmed: what the log
            // showed meanwhile is reported now, as this attempt's.
            let early: Vec<u32> = self
                .active_mut()
                .map(|run| {
                    run.incidents
                        .iter_mut()
                        .filter(|i| i.posted.is_none() && i.resolution.is_none())
                        .map(|i| {
                            i.attempt = attempt;
                            i.seq
                        })
                        .collect()
                })
                .unwrap_or_default();
            for seq in early {
                self.report_incident(at, seq, out);
            }
        }
    }

    fn phase_now(&self) -> Option<Phase> {
        self.run().map(|r| r.phase.clone())
    }

    pub(super) fn spawn_failed(&mut self, at: DateTime<Utc>, error: String, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        if !matches!(run.phase, Phase::Starting | Phase::Restarting { .. }) {
            return;
        }
        run.alive = false;
        self.finish_failed(at, None, text::could_not_start(&error), out);
    }

    pub(super) fn exited(
        &mut self,
        at: DateTime<Utc>,
        outcome: ExitOutcome,
        outputs: Vec<OutputFile>,
        out: &mut Vec<Action>,
    ) {
        let Some(run) = self.active_mut() else { return };
        run.alive = false;
        run.last_exit = Some(outcome);
        out.push(Action::Record(Record::AttemptEnded {
            run: run.id,
            attempt: run.attempt,
            outcome,
        }));
        match run.phase {
            Phase::Restarting { .. } => {
                out.push(Action::Spawn {
                    run: run.id,
                    attempt: run.attempt + 1,
                    append: true,
                    resume: true,
                });
            }
            Phase::Stopping { .. } => self.finish_killed(at, out),
            Phase::Starting => self.finish_failed(at, Some(outcome), text::ENDED_BEFORE_START.into(), out),
            Phase::Running { .. } | Phase::TimeoutWarned { .. } | Phase::Halted { .. } => {
                if outcome.success() {
                    return self.finish_completed(at, outputs, out);
                }
                run.queue = None;
                let attempt = run.attempt;
                let infrastructure =
                    matches!(outcome, ExitOutcome::Scheduler(end) if end.is_infrastructure());
                if infrastructure && self.resubmit_allowed(at) {
                    // The cluster's failure, not the code's: the next attempt, without a decision.
                    return self.resubmit(at, outcome, out);
                }
                let Some(run) = self.active_mut() else { return };
                let reported = run
                    .incidents
                    .iter()
                    .any(|i| i.attempt == attempt && i.incident.severity == Severity::Fatal);
                // A cluster's failure the detector stated just before the exit waited for it,
                // also when it was first posted as a warning (a retry the run went on from):
                // only an error report is the report of it.
                let held: Vec<u32> = run
                    .incidents
                    .iter()
                    .filter(|i| {
                        i.attempt == attempt
                            && !matches!(i.posted, Some(MessageKey::Incident(_)))
                            && i.resolution.is_none()
                            && i.incident.severity == Severity::Fatal
                    })
                    .map(|i| i.seq)
                    .collect();
                if !reported {
                    // Nothing in the log explained the failure: the exit itself is the evidence.
                    let key = u64::MAX - u64::from(attempt);
                    self.incident(at, key, exit_incident(outcome), out);
                } else if !held.is_empty()
                    && matches!(
                        self.phase_now(),
                        Some(Phase::Running { .. } | Phase::TimeoutWarned { .. })
                    )
                {
                    for seq in held {
                        self.report_incident(at, seq, out);
                    }
                } else if let Some(DecisionPoint::Incident(seq)) = self.run().and_then(|r| r.phase.open()) {
                    // The report is already out: show that the process has now ended.
                    let msg = self.error_report(at, seq);
                    out.push(Action::Update(msg));
                }
                if self.settings.unattended
                    && self
                        .run()
                        .is_some_and(|r| matches!(r.phase, Phase::Halted { .. }))
                {
                    self.apply_policy(at, out);
                }
            }
            Phase::Completed { .. } | Phase::Failed { .. } | Phase::Killed { .. } => {}
        }
    }
}

//! Commands and decisions: start, status, restart, kill, continue, investigate, and the
//! `on_error` policy that decides when nobody can.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::event::{Action, Record};
use super::incidents::{resolve_incidents, stall_incident};
use super::machine::{chrono_dur, dur, JobMachine};
use super::message::{Body, Decision, DecisionPoint, MessageKey, Reply};
use super::report::point_key;
use super::state::{AppliedFix, Decided, Phase, RunState};
use super::text::{self, StatusParts};
use crate::model::{Actor, JobName, OnError, Persona, RunId, Severity};
use crate::review::Snapshot;

/// Fraction of the maximum duration by which "continue monitoring" pushes the timeout
/// horizon when no explicit extension is given (24h max → warn again 6h later).
const DEFAULT_EXTENSION_DIVISOR: u32 = 4;

impl JobMachine {
    pub(super) fn start(&mut self, at: DateTime<Utc>, by: Actor, out: &mut Vec<Action>) {
        let job = self.settings.job.clone();
        if let Some(run) = self.run().filter(|r| !r.phase.is_over()) {
            let reason = text::already_running(&job, &run.phase, run.id, run.pid);
            return self.refuse(&by, "start", reason, out);
        }
        let id = RunId(self.state.last_run + 1);
        self.state.last_run = id.0;
        self.state.run = Some(RunState::new(id, at, &by.display));
        out.push(Action::Record(Record::RunStarted {
            run: id,
            by: by.display.clone(),
        }));
        self.accept(&by, "start", text::starting(&job, id), out);
        out.push(Action::Spawn {
            run: id,
            attempt: 1,
            append: false,
            resume: false,
        });
    }

    pub(super) fn status_query(&self, at: DateTime<Utc>, by: Actor, out: &mut Vec<Action>) {
        let job = &self.settings.job;
        let text = match self.run() {
            None => text::no_run_yet(job),
            Some(r) => text::status(StatusParts {
                job,
                run: r.id,
                phase: &r.phase,
                queued: r
                    .queue
                    .as_ref()
                    .map(|q| text::waiting_in_queue(dur(at - q.since), &q.reason)),
                pid: r.pid,
                step: r.progress.step,
                total: r.progress.total,
                percent: r.progress.percent,
                hung: r.stall.is_some(),
                last_line: r.last_line.as_deref().map(|l| (r.last_line_no, l)),
                incidents: r.incidents.len(),
                fatal: r
                    .incidents
                    .iter()
                    .filter(|i| i.incident.severity == Severity::Fatal)
                    .count(),
            }),
        };
        out.push(Action::Reply(Reply {
            to: by,
            accepted: true,
            text,
        }));
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn decide(
        &mut self,
        at: DateTime<Utc>,
        decision: Decision,
        target: Option<(RunId, DecisionPoint)>,
        extend: Option<Duration>,
        by: Actor,
        code: Option<Snapshot>,
        out: &mut Vec<Action>,
    ) {
        let what = decision.as_str();
        let job = self.settings.job.clone();
        let Some(run) = self.state.run.as_ref() else {
            return self.refuse(&by, what, text::no_run_to(&job, what), out);
        };
        if let Some((target_run, point)) = target {
            if let Some(reason) = stale_target(run, target_run, point, "report", &job) {
                return self.refuse(&by, what, reason, out);
            }
            if run.phase.open() != Some(point) {
                let reason = text::no_longer_awaits(&job, &run.phase);
                return self.refuse(&by, what, reason, out);
            }
        }
        if run.phase.is_over() {
            let reason = text::run_already_over(&job, run.id, &run.phase);
            return self.refuse(&by, what, reason, out);
        }
        let phase = run.phase.clone();
        let alive = run.alive;
        let stall_open = matches!(phase, Phase::Running { stall: Some(_) });
        // The open timeout warning is the scheduler's limit (continue leaves the maximum's
        // horizon alone: the scheduler ends the attempt at its limit anyway).
        let limit_open = run.limit_question_open();
        let timeout_open = matches!(phase, Phase::TimeoutWarned { .. }) && !limit_open;
        match decision {
            Decision::Restart => {
                if !matches!(
                    phase,
                    Phase::Running { .. } | Phase::Halted { .. } | Phase::TimeoutWarned { .. }
                ) {
                    let reason = text::restart_not_possible(&job, &phase);
                    return self.refuse(&by, what, reason, out);
                }
                if let Some(reason) = self.gate_blocks(at, code.as_ref()) {
                    return self.refuse(&by, what, reason, out);
                }
                let fix = self.mark_fix_applied(at);
                self.accept(&by, what, text::restarting(&job), out);
                self.close_open(at, decision, fix, &by.display, out);
                self.restart(&by.display, out);
            }
            Decision::Kill => {
                if matches!(phase, Phase::Stopping { .. }) {
                    return self.refuse(&by, what, text::already_being_killed(&job), out);
                }
                self.accept(&by, what, text::killing(&job), out);
                self.close_open(at, decision, None, &by.display, out);
                self.kill(at, &by.display, out);
            }
            Decision::Continue => {
                let reason = match (&phase, alive) {
                    (Phase::Halted { .. }, false) => Some(text::process_has_ended(&job, run.last_exit)),
                    (Phase::Halted { .. }, true) | (Phase::TimeoutWarned { .. }, _) => None,
                    (Phase::Running { .. }, true) if stall_open => None,
                    _ => Some(text::nothing_awaits_decision(&job, &phase)),
                };
                if let Some(reason) = reason {
                    return self.refuse(&by, what, reason, out);
                }
                let ext = extend.unwrap_or_else(|| self.default_extension());
                let detail = match run.limit_at.filter(|_| limit_open) {
                    Some(limit) => text::continuing_to_limit(&job, limit),
                    None => text::continuing(&job, timeout_open.then_some(ext)),
                };
                self.accept(&by, what, detail.clone(), out);
                self.close_open(at, decision, None, &by.display, out);
                let run = self.active_mut().expect("active run checked above");
                if timeout_open {
                    run.horizon = Some(at + chrono_dur(ext));
                }
                run.phase = Phase::RUNNING;
                run.notice_count += 1;
                let key = MessageKey::Notice(run.notice_count);
                let msg = self.message(
                    at,
                    key,
                    vec![],
                    Body::DecisionTaken {
                        decision,
                        by: by.display.clone(),
                        detail,
                    },
                );
                out.push(Action::Post(msg));
            }
            Decision::Approve | Decision::Reject => unreachable!("routed to validate"),
            Decision::Extend => self.extend(at, &by, out),
            Decision::Investigate => {
                if !(stall_open || matches!(phase, Phase::Halted { .. } | Phase::TimeoutWarned { .. })) {
                    let reason = text::nothing_awaits_investigation(&job, &phase);
                    return self.refuse(&by, what, reason, out);
                }
                let incident = match phase.open() {
                    Some(DecisionPoint::Incident(seq)) => run
                        .incidents
                        .iter()
                        .find(|i| i.seq == seq)
                        .map(|i| i.incident.clone()),
                    Some(DecisionPoint::Stall(_)) => {
                        run.stall.map(|s| stall_incident(s, run.last_line.clone()))
                    }
                    _ => None,
                };
                // A run past its maximum is most often a sampler or optimiser that converges
                // slowly: the modeler is asked first.
                let owner = incident.as_ref().map_or(Persona::Modeler, |i| i.category.owner());
                self.accept(&by, what, text::asked_to_investigate(&job, owner), out);
                let (log_file, last_line) = (self.settings.log.clone(), run.last_line.clone());
                let run = self.active_mut().expect("active run checked above");
                run.notice_count += 1;
                let key = MessageKey::Investigate(run.notice_count);
                let msg = self.message(
                    at,
                    key,
                    vec![owner],
                    Body::Investigate {
                        owner,
                        requested_by: by.display.clone(),
                        incident,
                        log_file,
                        last_line,
                    },
                );
                out.push(Action::Post(msg));
            }
        }
    }

    pub(super) fn default_extension(&self) -> Duration {
        self.settings
            .max
            .map(|m| m / DEFAULT_EXTENSION_DIVISOR)
            .unwrap_or(self.settings.status_interval)
    }

    /// Mark the report awaiting a decision as decided: disable its buttons, note who. The
    /// caller moves the run on to the phase the decision leads to (one without a question).
    pub(super) fn close_open(
        &mut self,
        at: DateTime<Utc>,
        decision: Decision,
        fix: Option<AppliedFix>,
        by: &str,
        out: &mut Vec<Action>,
    ) {
        let Some(run) = self.active_mut() else { return };
        let Some(point) = run.phase.open() else { return };
        run.decided.push(Decided {
            point,
            decision,
            by: by.to_string(),
            at,
        });
        out.push(Action::Resolve {
            run: run.id,
            key: point_key(point),
            note: text::decided_note(decision, by, at),
        });
        if let DecisionPoint::Incident(seq) = point {
            let Some(resolution) = text::resolved_by_decision(decision) else {
                return;
            };
            let resolution = match fix {
                Some(f) if decision == Decision::Restart => text::fixed_and_restarted(f.seq, &f.summary),
                _ => resolution.to_string(),
            };
            resolve_incidents(run, Some(seq), &resolution, Some(by), at, out);
        }
    }

    pub(super) fn restart(&mut self, by: &str, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        run.phase = Phase::Restarting {
            by: by.to_string(),
            killed_old: run.alive,
        };
        run.horizon = None;
        if run.alive {
            out.push(Action::Kill);
        } else {
            out.push(Action::Spawn {
                run: run.id,
                attempt: run.attempt + 1,
                append: true,
                resume: true,
            });
        }
    }

    pub(super) fn kill(&mut self, at: DateTime<Utc>, by: &str, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        run.phase = Phase::Stopping { by: by.to_string() };
        if run.alive {
            out.push(Action::Kill);
        } else {
            // Nothing left to stop (the process already ended): the run ends here.
            self.finish_killed(at, out);
        }
    }

    /// Nobody can decide: the job's `on_error` policy does.
    pub(super) fn apply_policy(&mut self, at: DateTime<Utc>, out: &mut Vec<Action>) {
        let Some(run) = self.state.run.as_ref() else {
            return;
        };
        if !matches!(run.phase, Phase::Halted { .. }) {
            return;
        }
        let alive = run.alive;
        let policy = Actor::policy();
        match self.settings.on_error {
            OnError::Wait => {
                if !alive {
                    self.finish_failed(at, run.last_exit, text::POLICY_WAIT_FAILED.into(), out);
                }
                // Still alive (the program caught its error and goes on): keep watching.
            }
            OnError::Kill => {
                self.accept(&policy, "kill", text::POLICY_KILL.into(), out);
                self.close_open(at, Decision::Kill, None, &policy.display, out);
                self.kill(at, &policy.display, out);
            }
            OnError::Restart { limit } => {
                if run.auto_restarts >= limit {
                    let reason = text::policy_limit_reached(limit);
                    if alive {
                        self.accept(&policy, "kill", reason, out);
                        self.close_open(at, Decision::Kill, None, &policy.display, out);
                        self.kill(at, &policy.display, out);
                    } else {
                        self.finish_failed(at, run.last_exit, reason, out);
                    }
                    return;
                }
                let n = run.auto_restarts + 1;
                if let Some(reason) = self.gate_blocks(at, None) {
                    // The gate binds the policy too: the run waits (or fails once the process is gone).
                    self.refuse(&policy, "restart", reason.clone(), out);
                    if !alive {
                        let last_exit = self.run().and_then(|r| r.last_exit);
                        self.finish_failed(at, last_exit, reason, out);
                    }
                    return;
                }
                let fix = self.mark_fix_applied(at);
                self.accept(&policy, "restart", text::policy_restart(n, limit), out);
                self.close_open(at, Decision::Restart, fix, &policy.display, out);
                if let Some(run) = self.active_mut() {
                    run.auto_restarts = n;
                }
                self.restart(&policy.display, out);
            }
        }
    }
}

/// Why a button's target (a report or fix of some run) can no longer be decided: it belongs
/// to another run, or someone already decided it.
pub(super) fn stale_target(
    run: &RunState,
    target_run: RunId,
    point: DecisionPoint,
    noun: &str,
    job: &JobName,
) -> Option<String> {
    if target_run != run.id {
        return Some(text::other_run(noun, target_run, job, run.id));
    }
    run.decided
        .iter()
        .find(|d| d.point == point)
        .map(|d| text::already_decided(d.decision, &d.by, d.at))
}

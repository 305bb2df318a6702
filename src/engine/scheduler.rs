//! A job a scheduler holds (Slurm): its queue, its time limit, its infrastructure failures.
//!
//! - **Queue.** After `Spawned`, `Queued` says the scheduler holds the attempt: its clocks
//!   (timeouts, the stall watch, the run's elapsed time) stand still until `Started`, status
//!   updates say "waiting in queue for 14 min: Priority", and the first attempt's Training
//!   Started message is edited to show the reason. `Started` posts a short note (how long it
//!   waited, when the scheduler ends it) rather than editing the start message again: a
//!   phone shows a new message, not an edit.
//! - **Time limit.** The protocol's TIMEOUT WARNING comes `warn_before` ahead of the limit
//!   (capped at half the attempt's limit), once per limit, with "extend" beside the usual
//!   choices; "extend" asks the scheduler for `extend_by` (`Action::ExtendLimit`) and the
//!   answer is told; a granted extension makes a new warning due at the new margin.
//! - **Infrastructure.** An attempt the cluster ended (a failed node, a preemption, a boot
//!   failure) or took back into its queue is resubmitted by itself under `on_infrastructure
//!   = "resubmit"`, up to its limit, without counting against `restart_limit`; past the limit
//!   (or with "ask") it is reported like any error, addressed to the director. A requeue
//!   needs no new submission (the scheduler starts the same job again), so it emits no
//!   `Spawn`: the engine counts the next attempt and waits for its `Started`.
//! - **Controller unreachable.** One notice per episode, one when it answers again.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::event::{Action, Record};
use super::incidents::{exit_incident, resolve_incidents};
use super::machine::{chrono_dur, dur, JobMachine};
use super::message::{Body, Decision, DecisionPoint, Message, MessageKey, SchedulerNotice};
use super::report::{buttons, point_key};
use super::state::{LimitWarned, Phase, QueueWait};
use super::text;
use crate::model::{Actor, Category, ExitOutcome, OnInfrastructure, Persona, SchedulerEnd, Severity};

impl JobMachine {
    pub(super) fn queued(&mut self, at: DateTime<Utc>, reason: String, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        if !run.alive
            || matches!(
                run.phase,
                Phase::Starting | Phase::Restarting { .. } | Phase::Stopping { .. }
            )
        {
            return;
        }
        match &mut run.queue {
            Some(q) if q.reason == reason => return,
            Some(q) => q.reason = reason,
            None => {
                run.queue = Some(QueueWait { since: at, reason });
                // Its stall watch stands still too: what was asked about a silent process no
                // longer applies to one that is not running.
                run.stall = None;
            }
        }
        if run.attempt == 1 {
            let msg = self.start_message(at);
            out.push(Action::Update(msg));
        }
    }

    /// The first attempt's Training Started message, as it reads now.
    pub(super) fn start_message(&self, at: DateTime<Utc>) -> Message {
        let run = self.run().expect("a start message needs a run");
        let mut msg = self.message(
            at,
            MessageKey::Started,
            vec![Persona::Director],
            Body::TrainingStarted {
                pid: run.pid.unwrap_or_default(),
                log_file: self.settings.log.clone(),
                argv: self.settings.argv.clone(),
                expected: self.settings.expected,
                max: self.settings.max,
                previous_log: run.previous_log.clone(),
                queued: run.queue.as_ref().map(|q| q.reason.clone()),
            },
        );
        msg.at = run.attempt_started_at;
        msg
    }

    pub(super) fn started(
        &mut self,
        at: DateTime<Utc>,
        limit_at: Option<DateTime<Utc>>,
        out: &mut Vec<Action>,
    ) {
        let (interval, max) = (chrono_dur(self.settings.status_interval), self.settings.max);
        let Some(run) = self.active_mut() else { return };
        if !run.alive || matches!(run.phase, Phase::Starting | Phase::Restarting { .. }) {
            return;
        }
        if run.queue.is_none() && run.started_attempt == run.attempt {
            // Heard again (a re-adopting supervisor): known, nothing to tell.
            return;
        }
        run.started_attempt = run.attempt;
        run.limit_at = limit_at;
        let waited = match run.queue.take() {
            // Queued: the attempt's clocks start now, as if it had been spawned now.
            Some(q) => {
                let waited = dur(at - q.since);
                run.queued_for += waited;
                run.attempt_started_at = at;
                run.horizon = max.map(|m| at + chrono_dur(m));
                run.next_status = at + interval;
                waited
            }
            None => Duration::ZERO,
        };
        run.notice_count += 1;
        let (key, pid, attempt) = (
            MessageKey::Notice(run.notice_count),
            run.pid.unwrap_or_default(),
            run.attempt,
        );
        let body = Body::SchedulerStarted {
            pid,
            attempt,
            waited,
            limit_at,
        };
        let msg = self.message(at, key, vec![], body);
        out.push(Action::Post(msg));
    }

    /// When the timeout warning for the scheduler's limit is due: `warn_before` ahead of the
    /// limit, at most half the attempt's limit ahead; None without a limit or once warned.
    pub(super) fn limit_warning_due(&self) -> Option<DateTime<Utc>> {
        let run = self.run().filter(|r| !r.phase.is_over() && r.alive)?;
        let limit = run.limit_at?;
        if run.limit_warned.is_some_and(|w| w.limit_at == limit) {
            return None;
        }
        let half = dur(limit - run.attempt_started_at) / 2;
        Some(limit - chrono_dur(self.settings.scheduler.warn_before.min(half)))
    }

    /// Post the timeout warning for the scheduler's limit when it is due and nothing more
    /// pressing awaits a decision (an error report keeps the director's attention; the
    /// warning comes once that is settled, if the limit is still ahead).
    pub(super) fn limit_warning(&mut self, at: DateTime<Utc>, out: &mut Vec<Action>) {
        let extend_by = self.settings.scheduler.extend_by;
        let again = self.settings.max.map(|_| self.default_extension());
        let Some(due) = self.limit_warning_due() else {
            return;
        };
        let Some(run) = self.active_mut() else { return };
        let Some(limit_at) = run.limit_at else { return };
        if at < due || run.queue.is_some() {
            return;
        }
        if at >= limit_at {
            // Too late to warn (the scheduler ends it any moment): not due any more.
            run.limit_warned = Some(LimitWarned {
                limit_at,
                warning: None,
            });
            return;
        }
        if !matches!(run.phase, Phase::Running { .. } | Phase::TimeoutWarned { .. }) {
            return;
        }
        if let Some(point @ (DecisionPoint::Stall(_) | DecisionPoint::Timeout(_))) = run.phase.open() {
            // The limit is the more pressing question: the scheduler kills at it.
            out.push(Action::Resolve {
                run: run.id,
                key: point_key(point),
                note: text::SUPERSEDED_BY_LIMIT.into(),
            });
            if let (DecisionPoint::Timeout(_), Some(again)) = (point, again) {
                // The maximum's question was not answered: it is asked again later, as
                // after a "continue".
                run.horizon = Some(at + chrono_dur(again));
            }
        }
        run.timeout_count += 1;
        let n = run.timeout_count;
        run.limit_warned = Some(LimitWarned {
            limit_at,
            warning: Some(n),
        });
        run.phase = Phase::TimeoutWarned { warning: n };
        let body = Body::LimitWarning {
            pid: run.pid.unwrap_or_default(),
            limit_at,
            left: dur(limit_at - at),
            elapsed: dur(at - run.attempt_started_at),
            extend_by,
            last_line: run.last_line.clone(),
        };
        let mut msg = self.message(at, MessageKey::Timeout(n), vec![Persona::Director], body);
        msg.buttons = buttons(DecisionPoint::Timeout(n), &text::LIMIT_BUTTONS);
        out.push(Action::Post(msg));
    }

    /// The director's "extend": ask the scheduler for more time, while the attempt runs under
    /// a scheduler time limit.
    pub(super) fn extend(&mut self, at: DateTime<Utc>, by: &Actor, out: &mut Vec<Action>) {
        let job = self.settings.job.clone();
        let extend_by = self.settings.scheduler.extend_by;
        let what = Decision::Extend.as_str();
        let Some(run) = self.run() else { return };
        let limited = run.alive
            && run.queue.is_none()
            && run.limit_at.is_some()
            && matches!(
                run.phase,
                Phase::Running { .. } | Phase::Halted { .. } | Phase::TimeoutWarned { .. }
            );
        if !limited {
            return self.refuse(by, what, text::no_limit_to_extend(&job), out);
        }
        if let Some(asked) = &run.extending {
            let reason = text::already_extending(&job, asked);
            return self.refuse(by, what, reason, out);
        }
        let limit_open = run.limit_question_open();
        self.accept(by, what, text::extending(&job, extend_by), out);
        if limit_open {
            self.close_open(at, Decision::Extend, None, &by.display, out);
        }
        let Some(run) = self.active_mut() else { return };
        if limit_open {
            run.phase = Phase::RUNNING;
        }
        run.extending = Some(by.display.clone());
        out.push(Action::ExtendLimit { by: extend_by });
    }

    pub(super) fn limit_extended(
        &mut self,
        at: DateTime<Utc>,
        limit_at: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) {
        let Some(run) = self.active_mut() else { return };
        let by = run.extending.take().unwrap_or_else(|| text::SOMEONE.into());
        // A new limit: its warning is due at the new margin (`limit_warned` names the old one).
        run.limit_at = Some(limit_at);
        run.notice_count += 1;
        let key = MessageKey::Notice(run.notice_count);
        let msg = self.message(at, key, vec![], Body::LimitExtended { by, limit_at });
        out.push(Action::Post(msg));
    }

    pub(super) fn extend_failed(&mut self, at: DateTime<Utc>, error: String, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        let by = run.extending.take().unwrap_or_else(|| text::SOMEONE.into());
        let limit_at = run.limit_at;
        run.notice_count += 1;
        let key = MessageKey::Notice(run.notice_count);
        let body = Body::ExtendFailed { by, error, limit_at };
        let msg = self.message(at, key, vec![Persona::Director], body);
        out.push(Action::Post(msg));
    }

    /// The `on_infrastructure` policy allows one more resubmit in this run, and the Phase 4.5
    /// gate does not hold the run (a fix awaiting validation must not start by a side door).
    pub(super) fn resubmit_allowed(&self, at: DateTime<Utc>) -> bool {
        let used = self.run().map_or(0, |r| r.resubmits);
        let policy = self.settings.scheduler.on_infrastructure;
        matches!(policy, OnInfrastructure::Resubmit { limit } if used < limit)
            && self.gate_blocks(at, None).is_none()
    }

    /// The attempt ended for the cluster's reasons and the policy resubmits it: the question
    /// open on it is closed, what it showed is resolved as a consequence, and the next
    /// attempt is started (appending, resuming) without a decision.
    pub(super) fn resubmit(&mut self, at: DateTime<Utc>, outcome: ExitOutcome, out: &mut Vec<Action>) {
        let Some((n, limit, why)) = self.settle_infrastructure(at, outcome, None, out) else {
            return;
        };
        let Some(run) = self.active_mut() else { return };
        run.phase = Phase::Restarting {
            by: text::INFRASTRUCTURE_POLICY.into(),
            killed_old: false,
        };
        out.push(Action::Spawn {
            run: run.id,
            attempt: run.attempt + 1,
            append: true,
            resume: true,
        });
        self.post_resubmitted(at, why, false, n, limit, out);
    }

    /// Close the attempt's open question and incidents for an infrastructure end, file the
    /// end itself as a resolved incident, count the resubmit. Returns (n, limit, why).
    fn settle_infrastructure(
        &mut self,
        at: DateTime<Utc>,
        outcome: ExitOutcome,
        reason: Option<&str>,
        out: &mut Vec<Action>,
    ) -> Option<(u32, u32, String)> {
        let OnInfrastructure::Resubmit { limit } = self.settings.scheduler.on_infrastructure else {
            return None;
        };
        let incident = infrastructure_incident(outcome, reason);
        let run = self.active_mut()?;
        let n = run.resubmits + 1;
        run.resubmits = n;
        let note = text::resubmitted(n, limit);
        if let Some(point) = run.phase.open() {
            out.push(Action::Resolve {
                run: run.id,
                key: point_key(point),
                note: note.clone(),
            });
        }
        let attempt = run.attempt;
        // The detector's verdict on the end, when it already filed one, is the incident.
        let filed = run.incidents.iter().position(|i| {
            i.attempt == attempt && i.resolution.is_none() && i.incident.category == Category::Infrastructure
        });
        if filed.is_none() {
            self.record_incident(at, u64::MAX - u64::from(attempt), incident.clone(), out);
        }
        let run = self.active_mut()?;
        for i in run.incidents.iter_mut().filter(|i| i.attempt == attempt) {
            // What the log showed while the node died is the end's consequence, not an error.
            if i.incident.category != Category::Infrastructure && i.resolution.is_none() {
                i.incident.severity = Severity::Warning;
            }
        }
        resolve_incidents(run, None, &note, None, at, out);
        run.extending = None;
        run.limit_at = None;
        run.horizon = None;
        run.stall = None;
        Some((n, limit, incident.text))
    }

    fn post_resubmitted(
        &mut self,
        at: DateTime<Utc>,
        why: String,
        requeued: bool,
        n: u32,
        limit: u32,
        out: &mut Vec<Action>,
    ) {
        let Some(run) = self.active_mut() else { return };
        run.notice_count += 1;
        let key = MessageKey::Notice(run.notice_count);
        let body = Body::Resubmitted {
            why,
            requeued,
            n,
            limit,
        };
        let msg = self.message(at, key, vec![], body);
        out.push(Action::Post(msg));
    }

    /// The scheduler took the running attempt back into its queue. Its process is gone; the
    /// same scheduler job starts again by itself as the next attempt. Within the policy's
    /// limit that is told and nothing else; past it (or with "ask") it is reported like an
    /// error, while the job waits in the queue (a kill still cancels it).
    pub(super) fn requeued(&mut self, at: DateTime<Utc>, reason: String, out: &mut Vec<Action>) {
        let outcome = ExitOutcome::Scheduler(SchedulerEnd::Requeued);
        let Some(run) = self.active_mut() else { return };
        if !run.alive
            || !matches!(
                run.phase,
                Phase::Running { .. } | Phase::Halted { .. } | Phase::TimeoutWarned { .. }
            )
        {
            return;
        }
        run.last_exit = Some(outcome);
        out.push(Action::Record(Record::AttemptEnded {
            run: run.id,
            attempt: run.attempt,
            outcome,
        }));
        let settled = if self.resubmit_allowed(at) {
            self.settle_infrastructure(at, outcome, Some(&reason), out)
        } else {
            None
        };
        let Some(run) = self.active_mut() else { return };
        run.queue = Some(QueueWait {
            since: at,
            reason: reason.clone(),
        });
        run.extending = None;
        run.limit_at = None;
        run.horizon = None;
        run.stall = None;
        match settled {
            Some((n, limit, why)) => {
                run.phase = Phase::RUNNING;
                self.next_attempt(at, out);
                self.post_resubmitted(at, why, true, n, limit, out);
            }
            None => {
                // The usual report and decision, as the ended attempt's error; the job waits
                // in the queue meanwhile (so a kill cancels it, a restart resubmits it).
                let incident = infrastructure_incident(outcome, Some(&reason));
                let key = u64::MAX - u64::from(run.attempt);
                self.incident(at, key, incident, out);
                self.next_attempt(at, out);
            }
        }
    }

    /// The requeued scheduler job is the run's next attempt, under the same id.
    fn next_attempt(&mut self, at: DateTime<Utc>, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        run.attempt += 1;
        run.attempt_started_at = at;
        let (id, attempt, pid) = (run.id, run.attempt, run.pid.unwrap_or_default());
        out.push(Action::Record(Record::AttemptStarted {
            run: id,
            attempt,
            pid,
            checkpoint: None,
        }));
    }

    pub(super) fn scheduler_unreachable(&mut self, at: DateTime<Utc>, error: String, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        if run.scheduler_down.is_some() {
            return;
        }
        run.scheduler_down = Some(at);
        self.scheduler_notice(at, SchedulerNotice::Unreachable { error }, out);
    }

    pub(super) fn scheduler_answering(&mut self, at: DateTime<Utc>, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        let Some(since) = run.scheduler_down.take() else {
            return;
        };
        let after = dur(at - since);
        self.scheduler_notice(at, SchedulerNotice::Answering { after }, out);
    }

    fn scheduler_notice(&mut self, at: DateTime<Utc>, notice: SchedulerNotice, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        run.notice_count += 1;
        let key = MessageKey::Notice(run.notice_count);
        let msg = self.message(at, key, vec![], Body::Scheduler { notice });
        out.push(Action::Post(msg));
    }
}

/// The incident that stands for an infrastructure end: the exit classifier's verdict, with
/// the scheduler's own reason when it gave one (a requeue's).
fn infrastructure_incident(outcome: ExitOutcome, reason: Option<&str>) -> crate::model::Incident {
    let mut incident = exit_incident(outcome);
    if let Some(r) = reason.filter(|r| !r.is_empty()) {
        incident.text = format!("{} ({r})", incident.text);
    }
    incident
}

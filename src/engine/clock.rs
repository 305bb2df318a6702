//! The clock rules: status updates, the timeout warning, the early overrun warning, and
//! the "hung?" question of a stall.

use chrono::{DateTime, Utc};

use super::event::Action;
use super::incidents::summaries;
use super::machine::{chrono_dur, dur, JobMachine};
use super::message::{AttemptTime, Body, Convergence, DecisionPoint, MessageKey, Progress, StallKind};
use super::report::{buttons, decision_buttons};
use super::state::{Phase, StallEpisode};
use super::text;
use crate::model::Persona;

impl JobMachine {
    pub(super) fn tick(&mut self, at: DateTime<Utc>, out: &mut Vec<Action>) {
        let interval = chrono_dur(self.settings.status_interval);
        let (expected, max) = (self.settings.expected, self.settings.max);
        let Some(run) = self.state.run.as_mut().filter(|r| !r.phase.is_over()) else {
            return;
        };
        if !run.alive || !matches!(run.phase, Phase::Running { .. } | Phase::TimeoutWarned { .. }) {
            return;
        }
        let queued = run.queue.is_some();
        if let (Phase::Running { stall }, true, false) =
            (&run.phase, run.horizon.is_some_and(|h| at >= h), queued)
        {
            let stall = *stall;
            run.horizon = None;
            run.timeout_count += 1;
            let n = run.timeout_count;
            if let Some(k) = stall {
                out.push(Action::Resolve {
                    run: run.id,
                    key: MessageKey::Stall(k),
                    note: text::SUPERSEDED_BY_TIMEOUT.into(),
                });
            }
            run.phase = Phase::TimeoutWarned { warning: n };
            let point = DecisionPoint::Timeout(n);
            let buttons = buttons(point, &text::TIMEOUT_BUTTONS);
            let body = Body::TimeoutWarning {
                pid: run.pid.unwrap_or_default(),
                expected,
                max: max.unwrap_or_default(),
                elapsed: dur(at - run.attempt_started_at),
                last_line: run.last_line.clone(),
            };
            let mut msg = self.message(at, MessageKey::Timeout(n), vec![Persona::Director], body);
            msg.buttons = buttons;
            out.push(Action::Post(msg));
        }
        self.limit_warning(at, out);
        let log_file = self.settings.log.clone();
        let Some(run) = self.state.run.as_mut().filter(|r| !r.phase.is_over()) else {
            return;
        };
        if at >= run.next_status {
            run.next_status += interval;
            if run.next_status <= at {
                // Ticks were missed (machine asleep, trainwatch down): one update, not a burst.
                run.next_status = at + interval;
            }
            run.status_count += 1;
            let n = run.status_count;
            if let Some(q) = &run.queue {
                // Held in the scheduler's queue: how long, and why, instead of a clock that
                // does not run.
                let body = Body::Queued {
                    pid: run.pid.unwrap_or_default(),
                    attempt: run.attempt,
                    reason: q.reason.clone(),
                    waiting_for: dur(at - q.since),
                    log_file,
                };
                let msg = self.message(at, MessageKey::Status(n), vec![], body);
                out.push(Action::Post(msg));
                return;
            }
            // The run's time (less what it waited in a scheduler's queue), as the percent
            // counts the whole run; after a restart the attempt's own time is shown beside it.
            let elapsed = run.running_for(at);
            let attempt = (run.attempt > 1).then(|| AttemptTime {
                attempt: run.attempt,
                running_for: dur(at - run.attempt_started_at),
            });
            let mut progress = run.progress.clone();
            if progress.percent.is_none() {
                progress.percent =
                    expected.map(|e| (elapsed.as_secs_f64() / e.as_secs_f64() * 100.0).min(99.9));
            }
            let body = Body::StatusUpdate {
                pid: run.pid.unwrap_or_default(),
                log_file,
                elapsed,
                attempt,
                expected,
                progress,
                last_line: run.last_line.clone(),
                open: summaries(run)
                    .into_iter()
                    .filter(|s| s.resolution.is_none())
                    .collect(),
            };
            let msg = self.message(at, MessageKey::Status(n), vec![], body);
            out.push(Action::Post(msg));
        }
    }

    /// Latest progress from the log; warns once when the projected finish passes the maximum.
    pub(super) fn progress(
        &mut self,
        at: DateTime<Utc>,
        progress: Progress,
        convergence: Option<Convergence>,
        out: &mut Vec<Action>,
    ) {
        let max = self.settings.max;
        let Some(run) = self.active_mut() else { return };
        if convergence.is_some() {
            run.convergence = convergence;
        }
        let over = progress.overrun;
        run.progress = progress;
        // Only ahead of the timeout: once it has passed, the timeout warning asks instead.
        let ahead =
            matches!(run.phase, Phase::Running { .. }) && run.alive && run.horizon.is_some_and(|h| at < h);
        let (Some(over), Some(max), false, true) = (over, max, run.overrun_warned, ahead) else {
            return;
        };
        run.overrun_warned = true;
        let elapsed = dur(at - run.attempt_started_at);
        let body = Body::OverrunWarning {
            pid: run.pid.unwrap_or_default(),
            elapsed,
            projected_total: max + over,
            max,
            eta: run
                .progress
                .eta
                .unwrap_or_else(|| (max + over).saturating_sub(elapsed)),
            progress: run.progress.clone(),
        };
        let msg = self.message(at, MessageKey::Overrun, vec![Persona::Director], body);
        out.push(Action::Post(msg));
    }

    /// The process looks hung: ask the director, once per stall episode.
    pub(super) fn stalled(
        &mut self,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
        kind: StallKind,
        last_line: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let Some(run) = self.active_mut() else { return };
        // Another question (an error, the timeout) already awaits a decision; the stall is
        // asked about once that is settled, if it still lasts.
        if run.phase != Phase::RUNNING || !run.alive || run.stall.is_some() || run.queue.is_some() {
            return;
        }
        run.stall_count += 1;
        let n = run.stall_count;
        run.stall = Some(StallEpisode { since, kind });
        let point = DecisionPoint::Stall(n);
        run.phase = Phase::Running { stall: Some(n) };
        let last_line = last_line.or_else(|| run.last_line.clone());
        let body = Body::StallWarning {
            seq: n,
            pid: run.pid.unwrap_or_default(),
            stall: kind,
            since,
            stalled_for: dur(at - since),
            step: run.progress.step,
            last_line,
        };
        let mut msg = self.message(at, MessageKey::Stall(n), vec![Persona::Director], body);
        msg.buttons = decision_buttons(point);
        out.push(Action::Post(msg));
    }

    /// Output or progress came back: the stall is over, and so is its question.
    pub(super) fn stall_ended(&mut self, at: DateTime<Utc>, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        if run.stall.take().is_none() {
            return;
        }
        if let Phase::Running { stall: Some(n) } = run.phase {
            run.phase = Phase::RUNNING;
            out.push(Action::Resolve {
                run: run.id,
                key: MessageKey::Stall(n),
                note: text::output_resumed(at),
            });
        }
    }
}

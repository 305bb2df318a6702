//! Commands and decisions: start, status, restart, kill, continue, investigate, and the
//! `on_error` policy that decides when nobody can.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::event::{Action, Record};
use super::incidents::{resolve_incidents, stall_incident};
use super::machine::{chrono_dur, hhmm, JobMachine};
use super::message::{Body, Button, Decision, DecisionPoint, MessageKey, ProgressView, Reply};
use super::state::{Decided, Phase, RunState};
use crate::config::format_duration;
use crate::model::{Actor, JobName, OnError, Persona, RunId, Severity};
use crate::review::Snapshot;

/// Fraction of the maximum duration by which "continue monitoring" pushes the timeout
/// horizon when no explicit extension is given (24h max → warn again 6h later).
const DEFAULT_EXTENSION_DIVISOR: u32 = 4;

impl JobMachine {
    pub(super) fn start(&mut self, at: DateTime<Utc>, by: Actor, out: &mut Vec<Action>) {
        let job = self.settings.job.clone();
        if !(by.has(Persona::Director) || by.has(Persona::Starter)) {
            let reason = format!(
                "{} may not start jobs: that needs the director or starter role",
                by.display
            );
            return self.refuse(&by, "start", reason, out);
        }
        if let Some(run) = self.run().filter(|r| !r.phase.is_over()) {
            let reason = format!(
                "{job} is already {} (run {}{})",
                run.phase.as_str(),
                run.id,
                pid_suffix(run.pid)
            );
            return self.refuse(&by, "start", reason, out);
        }
        let id = RunId(self.state.last_run + 1);
        self.state.last_run = id.0;
        self.state.run = Some(RunState {
            id,
            phase: Phase::Starting,
            started_at: at,
            started_by: by.display.clone(),
            ended_at: None,
            attempt: 0,
            attempt_started_at: at,
            pid: None,
            alive: false,
            last_exit: None,
            open: None,
            horizon: None,
            next_status: at,
            status_count: 0,
            timeout_count: 0,
            notice_count: 0,
            incidents: Vec::new(),
            auto_restarts: 0,
            pending_by: Some(by.display.clone()),
            last_line: None,
            last_line_no: 0,
            progress: ProgressView::default(),
            convergence: None,
            decided: Vec::new(),
            baseline: None,
            fixes: Vec::new(),
            killed_for_restart: false,
            stall_count: 0,
            stall: None,
            overrun_warned: false,
        });
        out.push(Action::Record(Record::RunStarted {
            run: id,
            by: by.display.clone(),
        }));
        self.accept(&by, "start", format!("starting {job} (run {id})"), out);
        out.push(Action::Spawn {
            run: id,
            attempt: 1,
            append: false,
            resume: false,
        });
    }

    pub(super) fn status_query(&self, by: Actor, out: &mut Vec<Action>) {
        let job = &self.settings.job;
        let text = match self.run() {
            None => format!("{job}: no run yet"),
            Some(r) => {
                let mut t = format!("{job} run {}: {}{}", r.id, r.phase.as_str(), pid_suffix(r.pid));
                match (r.progress.step, r.progress.total, r.progress.percent) {
                    (Some(step), Some(total), Some(p)) => {
                        t.push_str(&format!("; step {step}/{total} ({p:.1}%)"))
                    }
                    (Some(step), _, _) => t.push_str(&format!("; step {step}")),
                    (None, _, Some(p)) => t.push_str(&format!("; {p:.1}% of the expected time")),
                    _ => {}
                }
                if r.stall.is_some() {
                    t.push_str("; looks hung (no output or progress)");
                }
                if let Some(line) = &r.last_line {
                    t.push_str(&format!("; last log line {}: {}", r.last_line_no, line));
                }
                let fatal = r
                    .incidents
                    .iter()
                    .filter(|i| i.incident.severity == Severity::Fatal)
                    .count();
                t.push_str(&format!("; {} incident(s), {} fatal", r.incidents.len(), fatal));
                t
            }
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
        if !by.has(Persona::Director) {
            let reason = format!(
                "{} may not {what} {job}: decisions need the director role",
                by.display
            );
            return self.refuse(&by, what, reason, out);
        }
        let Some(run) = self.state.run.as_ref() else {
            return self.refuse(&by, what, format!("{job} has no run to {what}"), out);
        };
        if let Some((target_run, point)) = target {
            if let Some(reason) = stale_target(run, target_run, point, "report", &job) {
                return self.refuse(&by, what, reason, out);
            }
            if run.open != Some(point) {
                let reason = format!(
                    "that report no longer awaits a decision ({job} is {})",
                    run.phase.as_str()
                );
                return self.refuse(&by, what, reason, out);
            }
        }
        if run.phase.is_over() {
            let reason = format!(
                "run {} of {job} has already {}; use start for a new run",
                run.id,
                run.phase.as_str()
            );
            return self.refuse(&by, what, reason, out);
        }
        let phase = run.phase;
        let alive = run.alive;
        let stall_open = phase == Phase::Running && matches!(run.open, Some(DecisionPoint::Stall(_)));
        match decision {
            Decision::Restart => {
                if !matches!(phase, Phase::Running | Phase::Halted | Phase::TimeoutWarned) {
                    let reason = format!("{job} is {}; restart is not possible now", phase.as_str());
                    return self.refuse(&by, what, reason, out);
                }
                if let Some(reason) = self.gate_blocks(at, code.as_ref()) {
                    return self.refuse(&by, what, reason, out);
                }
                self.mark_fix_applied(at);
                self.accept(&by, what, format!("restarting {job}"), out);
                self.close_open(at, decision, &by.display, out);
                self.restart(&by.display, out);
            }
            Decision::Kill => {
                if matches!(phase, Phase::Stopping) {
                    return self.refuse(&by, what, format!("{job} is already being killed"), out);
                }
                self.accept(&by, what, format!("killing {job}"), out);
                self.close_open(at, decision, &by.display, out);
                self.kill(at, &by.display, out);
            }
            Decision::Continue => {
                let reason = match (phase, alive) {
                    (Phase::Halted, false) => Some(format!(
                        "{job}'s process has ended ({}); restart or kill",
                        run.last_exit
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| "status unknown".into())
                    )),
                    (Phase::Halted, true) | (Phase::TimeoutWarned, _) => None,
                    (Phase::Running, true) if stall_open => None,
                    _ => Some(format!("nothing of {job} awaits a decision ({})", phase.as_str())),
                };
                if let Some(reason) = reason {
                    return self.refuse(&by, what, reason, out);
                }
                let detail = if phase == Phase::TimeoutWarned {
                    let ext = extend.unwrap_or_else(|| self.default_extension());
                    format!(
                        "continuing to monitor {job}; next timeout warning in {}",
                        format_duration(ext)
                    )
                } else {
                    format!("continuing to monitor {job}")
                };
                self.accept(&by, what, detail.clone(), out);
                self.close_open(at, decision, &by.display, out);
                let ext = extend.unwrap_or_else(|| self.default_extension());
                let run = self.active_mut().expect("active run checked above");
                if phase == Phase::TimeoutWarned {
                    run.horizon = Some(at + chrono_dur(ext));
                }
                run.phase = Phase::Running;
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
            Decision::Investigate => {
                if !(stall_open || matches!(phase, Phase::Halted | Phase::TimeoutWarned)) {
                    let reason = format!("nothing of {job} awaits investigation ({})", phase.as_str());
                    return self.refuse(&by, what, reason, out);
                }
                let incident = match run.open {
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
                self.accept(&by, what, format!("asked @{owner} to investigate {job}"), out);
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

    /// Mark the report awaiting a decision as decided: disable its buttons, note who.
    pub(super) fn close_open(
        &mut self,
        at: DateTime<Utc>,
        decision: Decision,
        by: &str,
        out: &mut Vec<Action>,
    ) {
        let Some(run) = self.active_mut() else { return };
        let Some(point) = run.open.take() else { return };
        run.decided.push(Decided {
            point,
            decision,
            by: by.to_string(),
            at,
        });
        out.push(Action::Resolve {
            run: run.id,
            key: point_key(point),
            note: format!("{} by {} at {}", decision.done(), by, hhmm(at)),
        });
        if let DecisionPoint::Incident(seq) = point {
            let resolution = match decision {
                Decision::Restart => "restarted",
                Decision::Kill => "killed",
                Decision::Continue => "monitoring continued",
                Decision::Investigate | Decision::Approve | Decision::Reject => return,
            };
            resolve_incidents(run, Some(seq), resolution, Some(by), at, out);
        }
    }

    pub(super) fn restart(&mut self, by: &str, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        run.pending_by = Some(by.to_string());
        run.phase = Phase::Restarting;
        run.horizon = None;
        run.killed_for_restart = run.alive;
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
        run.pending_by = Some(by.to_string());
        if run.alive {
            run.phase = Phase::Stopping;
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
        if run.phase != Phase::Halted {
            return;
        }
        let alive = run.alive;
        let policy = Actor::policy();
        match self.settings.on_error {
            OnError::Wait => {
                if !alive {
                    self.finish_failed(
                        at,
                        run.last_exit,
                        "the process failed and nobody can decide (unattended, on_error = wait)".into(),
                        out,
                    );
                }
                // Still alive (the program caught its error and goes on): keep watching.
            }
            OnError::Kill => {
                let detail = "on_error = kill".to_string();
                self.accept(&policy, "kill", detail, out);
                self.close_open(at, Decision::Kill, &policy.display, out);
                self.kill(at, &policy.display, out);
            }
            OnError::Restart { limit } => {
                if run.auto_restarts >= limit {
                    let reason = format!("on_error = restart: limit of {limit} restart(s) reached");
                    if alive {
                        self.accept(&policy, "kill", reason, out);
                        self.close_open(at, Decision::Kill, &policy.display, out);
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
                self.mark_fix_applied(at);
                self.accept(
                    &policy,
                    "restart",
                    format!("on_error = restart ({n} of {limit})"),
                    out,
                );
                self.close_open(at, Decision::Restart, &policy.display, out);
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
        return Some(format!(
            "that {noun} belongs to run {target_run} of {job}; the latest run is {}",
            run.id
        ));
    }
    run.decided.iter().find(|d| d.point == point).map(|d| {
        format!(
            "already decided: {} by {} at {}",
            d.decision.done(),
            d.by,
            hhmm(d.at)
        )
    })
}

/// Restart / Kill / Continue / Investigate under a report.
pub(super) fn decision_buttons(point: DecisionPoint) -> Vec<Button> {
    [
        (Decision::Restart, "Restart"),
        (Decision::Kill, "Kill"),
        (Decision::Continue, "Continue"),
        (Decision::Investigate, "Investigate"),
    ]
    .into_iter()
    .map(|(decision, label)| Button {
        decision,
        point,
        label: label.into(),
    })
    .collect()
}

pub(super) fn point_key(point: DecisionPoint) -> MessageKey {
    match point {
        DecisionPoint::Incident(seq) => MessageKey::Incident(seq),
        DecisionPoint::Timeout(n) => MessageKey::Timeout(n),
        DecisionPoint::Fix(n) => MessageKey::Gate(n),
        DecisionPoint::Stall(n) => MessageKey::Stall(n),
    }
}

pub(super) fn pid_suffix(pid: Option<u32>) -> String {
    pid.map(|p| format!(", PID {p}")).unwrap_or_default()
}

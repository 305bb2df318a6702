//! The Watch Mode Protocol for one job, as a state machine. `JobMachine::handle` takes an
//! event with its time and returns the actions to carry out; it does no I/O and reads no
//! clock, so every rule below is a fast, deterministic unit test.
//!
//! A run goes Starting → Running, and from there to Halted (a fatal error awaits a
//! decision), TimeoutWarned (past the maximum duration, awaiting a decision), Restarting
//! (old process being stopped, new one starting, same log), Stopping (a kill is under way),
//! and ends Completed, Failed or Killed.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::{Action, Command, Event, FixEvidence, Input, Record};
use super::message::{
    Body, Button, Convergence, Decision, DecisionPoint, IncidentSummary, Message, MessageKey, OutputFile,
    Progress, Reply, Resolution, StallKind,
};
use crate::config::format_duration;
use crate::model::{Actor, Category, ExitOutcome, Incident, JobName, OnError, Persona, RunId, Severity};
use crate::review::Snapshot;
// The one exit classifier, shared with the detector (live watching and triage).
pub use crate::watch::detect::exit_incident;

/// What the engine needs to know about a job (taken from its config).
#[derive(Debug, Clone, PartialEq)]
pub struct JobSettings {
    pub job: JobName,
    pub argv: Vec<String>,
    pub log: PathBuf,
    pub expected: Option<Duration>,
    pub max: Option<Duration>,
    pub status_interval: Duration,
    pub on_error: OnError,
    /// No person can take decisions (no TTY, no chat): the `on_error` policy decides.
    pub unattended: bool,
    /// How long a validator's approval stays valid (None: until used).
    pub approval_ttl: Option<Duration>,
}

/// Where a run is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Starting,
    Running,
    Halted,
    TimeoutWarned,
    Restarting,
    Stopping,
    Completed,
    Failed,
    Killed,
}

impl Phase {
    pub fn is_over(self) -> bool {
        matches!(self, Phase::Completed | Phase::Failed | Phase::Killed)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Halted => "halted on error, awaiting decision",
            Phase::TimeoutWarned => "past its maximum duration, awaiting decision",
            Phase::Restarting => "restarting",
            Phase::Stopping => "being killed",
            Phase::Completed => "completed",
            Phase::Failed => "failed",
            Phase::Killed => "killed",
        }
    }
}

/// An incident within a run, with what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEntry {
    /// The supervisor's key (to attach later evidence).
    pub key: u64,
    /// 1-based number within the run, as shown in chat ("error #2").
    pub seq: u32,
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub incident: Incident,
    /// The message that reported it, if one was posted.
    pub posted: Option<MessageKey>,
    pub resolution: Option<Resolution>,
}

/// Where a submitted fix stands in the Phase 4.5 gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixStatus {
    /// No design parameter changed: the director may resume directly.
    Simple,
    /// Design parameters changed: restart is refused until the validator approves.
    AwaitingValidation,
    Approved {
        by: String,
        at: DateTime<Utc>,
        expires: Option<DateTime<Utc>>,
    },
    Rejected {
        by: String,
        at: DateTime<Utc>,
        reason: Option<String>,
    },
    /// A newer fix replaced it before it was decided.
    Superseded,
    /// Training was resumed with it.
    Applied { at: DateTime<Utc> },
}

/// A fix submitted during a run, with its evidence and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixEntry {
    pub seq: u32,
    pub by: Actor,
    pub at: DateTime<Utc>,
    pub summary: String,
    pub evidence: FixEvidence,
    pub status: FixStatus,
}

/// A decision already taken on a report (so a second click can be told who decided).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    pub point: DecisionPoint,
    pub decision: Decision,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A stall the engine has warned about; it lasts until output or progress resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StallEpisode {
    pub since: DateTime<Utc>,
    pub kind: StallKind,
}

/// The state of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub id: RunId,
    pub phase: Phase,
    pub started_at: DateTime<Utc>,
    pub started_by: String,
    pub ended_at: Option<DateTime<Utc>>,
    pub attempt: u32,
    pub attempt_started_at: DateTime<Utc>,
    /// PID of the current (or last) process; `alive` says whether it still runs.
    pub pid: Option<u32>,
    pub alive: bool,
    pub last_exit: Option<ExitOutcome>,
    pub open: Option<DecisionPoint>,
    /// When to post the timeout warning (None: no maximum, or already warned).
    pub horizon: Option<DateTime<Utc>>,
    pub next_status: DateTime<Utc>,
    pub status_count: u32,
    pub timeout_count: u32,
    pub notice_count: u32,
    pub incidents: Vec<IncidentEntry>,
    pub auto_restarts: u32,
    /// Who asked for the restart or kill under way.
    pub pending_by: Option<String>,
    pub last_line: Option<String>,
    pub last_line_no: u64,
    pub progress: Progress,
    pub convergence: Option<Convergence>,
    pub decided: Vec<Decided>,
    /// The job's code when the run started (what fixes are compared against).
    #[serde(default)]
    pub baseline: Option<Snapshot>,
    #[serde(default)]
    pub fixes: Vec<FixEntry>,
    /// The restart under way had to kill the old process (false: it had already ended).
    #[serde(default)]
    pub killed_for_restart: bool,
    /// "Hung?" warnings posted in this run.
    #[serde(default)]
    pub stall_count: u32,
    /// The stall under way, once warned about (one warning per episode).
    #[serde(default)]
    pub stall: Option<StallEpisode>,
    /// The early overrun warning went out (once per run).
    #[serde(default)]
    pub overrun_warned: bool,
}

/// Everything the engine remembers about a job; persisted after every event, so a
/// restarted trainwatch resumes exactly here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub last_run: u32,
    pub run: Option<RunState>,
}

/// The protocol for one job.
#[derive(Debug, Clone)]
pub struct JobMachine {
    pub settings: JobSettings,
    pub state: JobState,
}

/// Fraction of the maximum duration by which "continue monitoring" pushes the timeout
/// horizon when no explicit extension is given (24h max → warn again 6h later).
const DEFAULT_EXTENSION_DIVISOR: u32 = 4;

impl JobMachine {
    pub fn new(settings: JobSettings) -> Self {
        Self {
            settings,
            state: JobState::default(),
        }
    }

    pub fn restore(settings: JobSettings, state: JobState) -> Self {
        Self { settings, state }
    }

    pub fn run(&self) -> Option<&RunState> {
        self.state.run.as_ref()
    }

    /// True while a run is under way (not yet completed, failed or killed).
    pub fn is_active(&self) -> bool {
        self.run().is_some_and(|r| !r.phase.is_over())
    }

    /// Apply one event; return what to do.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        let at = input.at;
        match input.event {
            Event::Command { command, by, code } => self.command(at, command, by, code, &mut out),
            Event::Baseline { snapshot } => {
                if let Some(run) = self.active_mut() {
                    if run.baseline.is_none() {
                        run.baseline = Some(snapshot);
                    }
                }
            }
            Event::Spawned {
                pid,
                checkpoint,
                previous_log,
            } => self.spawned(at, pid, checkpoint, previous_log, &mut out),
            Event::SpawnFailed { error } => self.spawn_failed(at, error, &mut out),
            Event::Incident { key, incident } => self.incident(at, key, incident, &mut out),
            Event::IncidentUpdated { key, incident } => self.incident_updated(at, key, incident, &mut out),
            Event::LogActivity { last_line, line_no } => {
                if let Some(run) = self.active_mut() {
                    run.last_line = Some(last_line);
                    run.last_line_no = line_no;
                }
            }
            Event::Progress {
                progress,
                convergence,
            } => self.progress(at, progress, convergence, &mut out),
            Event::Stalled {
                since,
                kind,
                last_line,
            } => self.stalled(at, since, kind, last_line, &mut out),
            Event::StallEnded => self.stall_ended(at, &mut out),
            Event::Exited { outcome, outputs } => self.exited(at, outcome, outputs, &mut out),
            Event::Tick => self.tick(at, &mut out),
        }
        out
    }

    /// When the next tick matters (status update or timeout), for a supervisor that sleeps.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let run = self.run()?;
        if !matches!(run.phase, Phase::Running | Phase::TimeoutWarned) || !run.alive {
            return None;
        }
        let status = Some(run.next_status);
        let horizon = if run.phase == Phase::Running {
            run.horizon
        } else {
            None
        };
        [status, horizon].into_iter().flatten().min()
    }

    fn active_mut(&mut self) -> Option<&mut RunState> {
        self.state.run.as_mut().filter(|r| !r.phase.is_over())
    }

    // ---- commands -------------------------------------------------------------------

    fn command(
        &mut self,
        at: DateTime<Utc>,
        command: Command,
        by: Actor,
        code: Option<Snapshot>,
        out: &mut Vec<Action>,
    ) {
        match command {
            Command::Start => self.start(at, by, out),
            Command::Status => self.status_query(by, out),
            Command::Decide {
                decision: decision @ (Decision::Approve | Decision::Reject),
                target,
                ..
            } => {
                let fix = match target {
                    Some((run, DecisionPoint::Fix(n))) => Some((run, n)),
                    Some(_) => {
                        let reason = format!("{decision} applies to a submitted fix, not to this report");
                        return self.refuse(&by, decision.as_str(), reason, out);
                    }
                    None => None,
                };
                self.validate(at, decision == Decision::Approve, None, fix, by, code, out)
            }
            Command::Decide {
                decision,
                target,
                extend,
            } => self.decide(at, decision, target, extend, by, code, out),
            Command::SubmitFix { summary, evidence } => self.submit_fix(at, summary, evidence, by, out),
            Command::Validate { approve, reason } => self.validate(at, approve, reason, None, by, code, out),
        }
    }

    fn refuse(&self, by: &Actor, what: &str, reason: String, out: &mut Vec<Action>) {
        out.push(Action::Record(Record::Decision {
            run: self.run().map(|r| r.id),
            decision: what.to_string(),
            by: by.clone(),
            accepted: false,
            detail: reason.clone(),
        }));
        out.push(Action::Reply(Reply {
            to: by.clone(),
            accepted: false,
            text: reason,
        }));
    }

    fn accept(&self, by: &Actor, what: &str, detail: String, out: &mut Vec<Action>) {
        out.push(Action::Record(Record::Decision {
            run: self.run().map(|r| r.id),
            decision: what.to_string(),
            by: by.clone(),
            accepted: true,
            detail: detail.clone(),
        }));
        out.push(Action::Reply(Reply {
            to: by.clone(),
            accepted: true,
            text: detail,
        }));
    }

    fn start(&mut self, at: DateTime<Utc>, by: Actor, out: &mut Vec<Action>) {
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
            progress: Progress::default(),
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

    fn status_query(&self, by: Actor, out: &mut Vec<Action>) {
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
    fn decide(
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

    // ---- the Phase 4.5 gate ---------------------------------------------------------------

    fn submit_fix(
        &mut self,
        at: DateTime<Utc>,
        summary: String,
        evidence: Option<Box<FixEvidence>>,
        by: Actor,
        out: &mut Vec<Action>,
    ) {
        let job = self.settings.job.clone();
        let fixers = [
            Persona::Director,
            Persona::CodeTranslator,
            Persona::DataEngineer,
            Persona::Modeler,
        ];
        if !fixers.iter().any(|p| by.has(*p)) {
            let reason = format!(
                "{} may not submit fixes: that needs the code_translator, data_engineer, modeler or director role",
                by.display
            );
            return self.refuse(&by, "fix_submit", reason, out);
        }
        let Some(run) = self.state.run.as_ref().filter(|r| !r.phase.is_over()) else {
            return self.refuse(
                &by,
                "fix_submit",
                format!("{job} has no run under way to fix"),
                out,
            );
        };
        if run.phase == Phase::Stopping {
            return self.refuse(&by, "fix_submit", format!("{job} is being killed"), out);
        }
        let Some(evidence) = evidence else {
            let reason = "the changes could not be computed from the job's files".to_string();
            return self.refuse(&by, "fix_submit", reason, out);
        };
        let evidence = *evidence;
        let seq = run.fixes.len() as u32 + 1;
        let run_id = run.id;
        // A newer fix replaces any earlier one that was not used yet.
        let mut superseded = Vec::new();
        let run = self.active_mut().expect("active run checked above");
        for f in run.fixes.iter_mut() {
            if matches!(
                f.status,
                FixStatus::AwaitingValidation
                    | FixStatus::Rejected { .. }
                    | FixStatus::Approved { .. }
                    | FixStatus::Simple
            ) {
                if f.status == FixStatus::AwaitingValidation {
                    superseded.push(f.seq);
                }
                f.status = FixStatus::Superseded;
            }
        }
        for n in superseded {
            out.push(Action::Resolve {
                run: run_id,
                key: MessageKey::Gate(n),
                note: format!("superseded by fix #{seq}"),
            });
        }
        let design_changed = evidence.changes.design_changed;
        let status = if design_changed {
            FixStatus::AwaitingValidation
        } else {
            FixStatus::Simple
        };
        run.fixes.push(FixEntry {
            seq,
            by: by.clone(),
            at,
            summary: summary.clone(),
            evidence: evidence.clone(),
            status,
        });
        let changed: Vec<String> = evidence
            .changes
            .params_changed
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let detail = format!(
            "fix #{seq}: {summary}; design changed: {}; {}",
            if design_changed {
                format!("yes ({})", changed.join(", "))
            } else {
                "no".into()
            },
            hashes_text(&evidence.reviewed)
        );
        out.push(Action::Record(Record::Decision {
            run: Some(run_id),
            decision: "fix_submit".into(),
            by: by.clone(),
            accepted: true,
            detail,
        }));
        let msg = self.message(
            at,
            MessageKey::Fix(seq),
            vec![Persona::Director],
            Body::FixSubmitted {
                seq,
                by: by.display.clone(),
                summary,
                changes: evidence.changes.clone(),
            },
        );
        out.push(Action::Post(msg));
        if design_changed {
            let point = DecisionPoint::Fix(seq);
            let mut msg = self.message(
                at,
                MessageKey::Gate(seq),
                vec![Persona::TimeValidator],
                Body::RevalidationRequired {
                    seq,
                    submitted_by: by.display.clone(),
                    changes: evidence.changes,
                    comparison: evidence.comparison,
                },
            );
            msg.buttons = vec![
                Button {
                    decision: Decision::Approve,
                    point,
                    label: "Approve".into(),
                },
                Button {
                    decision: Decision::Reject,
                    point,
                    label: "Reject".into(),
                },
            ];
            out.push(Action::Post(msg));
            out.push(Action::Reply(Reply {
                to: by,
                accepted: true,
                text: format!(
                    "fix #{seq} submitted; it changes design parameters ({}): @time_validator must approve it before {job} may resume",
                    changed.join(", ")
                ),
            }));
        } else {
            out.push(Action::Reply(Reply {
                to: by,
                accepted: true,
                text: format!(
                    "fix #{seq} submitted: a simple bug fix (no design parameter changed); @director may resume {job} directly"
                ),
            }));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn validate(
        &mut self,
        at: DateTime<Utc>,
        approve: bool,
        reason: Option<String>,
        target: Option<(RunId, u32)>,
        by: Actor,
        code: Option<Snapshot>,
        out: &mut Vec<Action>,
    ) {
        let what = if approve { "approve" } else { "reject" };
        let job = self.settings.job.clone();
        if !by.has(Persona::TimeValidator) {
            let reason = format!(
                "{} may not {what} fixes: that needs the time_validator role",
                by.display
            );
            return self.refuse(&by, what, reason, out);
        }
        let Some(run) = self.state.run.as_ref() else {
            return self.refuse(&by, what, format!("{job} has no run"), out);
        };
        if let Some((target_run, n)) = target {
            if let Some(reason) = stale_target(run, target_run, DecisionPoint::Fix(n), "fix", &job) {
                return self.refuse(&by, what, reason, out);
            }
            if run.fixes.last().map(|f| f.seq) != Some(n) {
                let reason = format!("fix #{n} was superseded by a newer fix of {job}");
                return self.refuse(&by, what, reason, out);
            }
        }
        if run.phase.is_over() {
            return self.refuse(&by, what, format!("run {} of {job} is over", run.id), out);
        }
        let Some(fix) = run.fixes.last() else {
            return self.refuse(&by, what, format!("no fix of {job} awaits validation"), out);
        };
        let seq = fix.seq;
        if fix.status != FixStatus::AwaitingValidation {
            let reason = format!(
                "fix #{seq} of {job} does not await validation ({})",
                status_text(&fix.status)
            );
            return self.refuse(&by, what, reason, out);
        }
        if fix.by.id == by.id {
            let reason = format!(
                "{} submitted fix #{seq}: someone else must validate it (four eyes)",
                by.display
            );
            return self.refuse(&by, what, reason, out);
        }
        if let Some(current) = &code {
            if !current.same_code_as(&fix.evidence.reviewed) {
                let reason = format!(
                    "the code of {job} changed after fix #{seq} was submitted: submit the fix again so the review covers what will run"
                );
                return self.refuse(&by, what, reason, out);
            }
        }
        let run_id = run.id;
        let hashes = hashes_text(&fix.evidence.reviewed);
        let expires = if approve {
            self.settings.approval_ttl.map(|t| at + chrono_dur(t))
        } else {
            None
        };
        let run = self.active_mut().expect("checked above");
        let fix = run.fixes.last_mut().expect("checked above");
        fix.status = if approve {
            FixStatus::Approved {
                by: by.display.clone(),
                at,
                expires,
            }
        } else {
            FixStatus::Rejected {
                by: by.display.clone(),
                at,
                reason: reason.clone(),
            }
        };
        run.decided.push(Decided {
            point: DecisionPoint::Fix(seq),
            decision: if approve {
                Decision::Approve
            } else {
                Decision::Reject
            },
            by: by.display.clone(),
            at,
        });
        let note = format!(
            "{} by {} at {}",
            if approve { "Approved" } else { "Rejected" },
            by.display,
            hhmm(at)
        );
        out.push(Action::Resolve {
            run: run_id,
            key: MessageKey::Gate(seq),
            note,
        });
        let reason_text = reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        let detail = format!(
            "fix #{seq} {}{reason_text}; bound to {hashes}",
            if approve { "approved" } else { "rejected" }
        );
        self.accept(&by, what, detail, out);
        let to = if approve {
            vec![Persona::Director]
        } else {
            vec![Persona::CodeTranslator]
        };
        let msg = self.message(
            at,
            MessageKey::Verdict(seq),
            to,
            Body::ValidationDecided {
                seq,
                approved: approve,
                by: by.display.clone(),
                reason,
                expires,
            },
        );
        out.push(Action::Post(msg));
    }

    /// Why training may not resume now, if the gate says so.
    fn gate_blocks(&self, at: DateTime<Utc>, code: Option<&Snapshot>) -> Option<String> {
        let job = &self.settings.job;
        let fix = self.run()?.fixes.last()?;
        let n = fix.seq;
        match &fix.status {
            FixStatus::AwaitingValidation => {
                let changed: Vec<&str> = fix
                    .evidence
                    .changes
                    .params_changed
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                Some(format!(
                    "fix #{n} changes design parameters ({}): training may not resume until @time_validator approves it (/validate approve {job})",
                    changed.join(", ")
                ))
            }
            FixStatus::Rejected { by, reason, .. } => {
                let why = reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                Some(format!(
                    "fix #{n} was rejected by {by}{why}; full rework required — submit a new fix (/fix submit {job} ...)"
                ))
            }
            FixStatus::Approved { expires, .. } => {
                if let Some(e) = expires.filter(|e| at > *e) {
                    return Some(format!(
                        "the approval of fix #{n} expired at {}; a new review is required (submit the fix again)",
                        hhmm(e)
                    ));
                }
                match code {
                    Some(c) if !c.same_code_as(&fix.evidence.reviewed) => Some(format!(
                        "the code of {job} changed after fix #{n} was approved: the approval is void; submit the fix again for review"
                    )),
                    _ => None,
                }
            }
            FixStatus::Simple | FixStatus::Superseded | FixStatus::Applied { .. } => None,
        }
    }

    /// The latest fix is what training now resumes with.
    fn mark_fix_applied(&mut self, at: DateTime<Utc>) {
        let Some(run) = self.active_mut() else { return };
        if let Some(fix) = run.fixes.last_mut() {
            if matches!(fix.status, FixStatus::Approved { .. } | FixStatus::Simple) {
                fix.status = FixStatus::Applied { at };
            }
        }
    }

    fn default_extension(&self) -> Duration {
        self.settings
            .max
            .map(|m| m / DEFAULT_EXTENSION_DIVISOR)
            .unwrap_or(self.settings.status_interval)
    }

    /// Mark the report awaiting a decision as decided: disable its buttons, note who.
    fn close_open(&mut self, at: DateTime<Utc>, decision: Decision, by: &str, out: &mut Vec<Action>) {
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

    fn restart(&mut self, by: &str, out: &mut Vec<Action>) {
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

    fn kill(&mut self, at: DateTime<Utc>, by: &str, out: &mut Vec<Action>) {
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

    // ---- executor events --------------------------------------------------------------

    fn spawned(
        &mut self,
        at: DateTime<Utc>,
        pid: u32,
        checkpoint: Option<PathBuf>,
        previous_log: Option<PathBuf>,
        out: &mut Vec<Action>,
    ) {
        let interval = chrono_dur(self.settings.status_interval);
        let max = self.settings.max;
        let Some(run) = self.active_mut() else { return };
        let was = run.phase;
        if !matches!(was, Phase::Starting | Phase::Restarting) {
            return;
        }
        let old_pid = run.pid;
        let old_ended = !run.killed_for_restart;
        run.attempt += 1;
        run.attempt_started_at = at;
        run.pid = Some(pid);
        run.alive = true;
        run.phase = Phase::Running;
        run.next_status = at + interval;
        run.horizon = max.map(|m| at + chrono_dur(m));
        // A new process: an earlier stall (and its question) is over.
        run.stall = None;
        if let Some(DecisionPoint::Stall(_)) = run.open {
            run.open = None;
        }
        let (id, attempt) = (run.id, run.attempt);
        let decided_by = run.pending_by.take().unwrap_or_default();
        out.push(Action::Record(Record::AttemptStarted {
            run: id,
            attempt,
            pid,
            checkpoint: checkpoint.clone(),
        }));
        let log_file = self.settings.log.clone();
        let msg = if was == Phase::Starting {
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
        if was == Phase::Starting {
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

    fn spawn_failed(&mut self, at: DateTime<Utc>, error: String, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        if !matches!(run.phase, Phase::Starting | Phase::Restarting) {
            return;
        }
        run.alive = false;
        self.finish_failed(at, None, format!("could not start the job: {error}"), out);
    }

    fn incident(&mut self, at: DateTime<Utc>, key: u64, incident: Incident, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        if run.incidents.iter().any(|i| i.key == key) {
            return self.incident_updated(at, key, incident, out);
        }
        let seq = run.incidents.len() as u32 + 1;
        run.incidents.push(IncidentEntry {
            key,
            seq,
            attempt: run.attempt,
            at,
            incident: incident.clone(),
            posted: None,
            resolution: None,
        });
        out.push(Action::Record(Record::Incident {
            run: run.id,
            seq,
            incident: incident.clone(),
        }));
        self.report_incident(at, seq, out);
    }

    /// Post what an incident calls for, given the phase: an error report that halts the
    /// run, or a warning that does not.
    fn report_incident(&mut self, at: DateTime<Utc>, seq: u32, out: &mut Vec<Action>) {
        let log_file = self.settings.log.clone();
        let Some(run) = self.active_mut() else { return };
        let idx = (seq - 1) as usize;
        let entry = &run.incidents[idx];
        let incident = entry.incident.clone();
        let owner = incident.category.owner();
        if incident.severity == Severity::Warning {
            if entry.posted.is_some() {
                return;
            }
            run.incidents[idx].posted = Some(MessageKey::Warning(seq));
            let msg = self.message(
                at,
                MessageKey::Warning(seq),
                vec![owner],
                Body::WarningNoticed {
                    seq,
                    log_file,
                    incident,
                },
            );
            out.push(Action::Post(msg));
            return;
        }
        // Fatal: halts the run, unless a decision is already pending or the run is being
        // stopped or restarted anyway (then it is recorded and listed in the final report).
        if !matches!(run.phase, Phase::Running | Phase::TimeoutWarned) {
            return;
        }
        if let Some(point @ (DecisionPoint::Timeout(_) | DecisionPoint::Stall(_))) = run.open.take() {
            // The error supersedes the timeout or stall question.
            out.push(Action::Resolve {
                run: run.id,
                key: point_key(point),
                note: format!("superseded by error #{seq}"),
            });
        }
        run.phase = Phase::Halted;
        run.open = Some(DecisionPoint::Incident(seq));
        run.incidents[idx].posted = Some(MessageKey::Incident(seq));
        let msg = self.error_report(at, seq);
        out.push(Action::Post(msg));
        if self.settings.unattended {
            self.apply_policy(at, out);
        }
    }

    fn error_report(&self, at: DateTime<Utc>, seq: u32) -> Message {
        let run = self.run().expect("error report needs a run");
        let entry = &run.incidents[(seq - 1) as usize];
        let point = DecisionPoint::Incident(seq);
        let buttons = decision_buttons(point);
        let mut msg = self.message(
            entry.at,
            MessageKey::Incident(seq),
            vec![Persona::Director, entry.incident.category.owner()],
            Body::ErrorDetected {
                seq,
                pid: run.pid,
                log_file: self.settings.log.clone(),
                incident: entry.incident.clone(),
                exit: if run.alive { None } else { run.last_exit },
                elapsed: dur(at - run.attempt_started_at),
            },
        );
        msg.buttons = if run.open == Some(point) {
            buttons
        } else {
            Vec::new()
        };
        msg
    }

    fn incident_updated(&mut self, at: DateTime<Utc>, key: u64, incident: Incident, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        let Some(idx) = run.incidents.iter().position(|i| i.key == key) else {
            return self.incident(at, key, incident, out);
        };
        let was = run.incidents[idx].incident.severity;
        let seq = run.incidents[idx].seq;
        out.push(Action::Record(Record::Incident {
            run: run.id,
            seq,
            incident: incident.clone(),
        }));
        run.incidents[idx].incident = incident;
        let posted = run.incidents[idx].posted;
        let now = run.incidents[idx].incident.severity;
        match posted {
            Some(MessageKey::Incident(_)) => {
                let msg = self.error_report(at, seq);
                out.push(Action::Update(msg));
            }
            Some(MessageKey::Warning(_)) if now == Severity::Fatal && was == Severity::Warning => {
                self.report_incident(at, seq, out);
            }
            Some(MessageKey::Warning(_)) => {
                let incident = run.incidents[idx].incident.clone();
                let msg = self.message(
                    at,
                    MessageKey::Warning(seq),
                    vec![incident.category.owner()],
                    Body::WarningNoticed {
                        seq,
                        log_file: self.settings.log.clone(),
                        incident,
                    },
                );
                out.push(Action::Update(msg));
            }
            _ => self.report_incident(at, seq, out),
        }
    }

    fn exited(
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
            Phase::Restarting => {
                out.push(Action::Spawn {
                    run: run.id,
                    attempt: run.attempt + 1,
                    append: true,
                    resume: true,
                });
            }
            Phase::Stopping => self.finish_killed(at, out),
            Phase::Starting => {
                self.finish_failed(at, Some(outcome), "the job ended before it started".into(), out)
            }
            Phase::Running | Phase::TimeoutWarned | Phase::Halted => {
                if outcome.success() {
                    return self.finish_completed(at, outputs, out);
                }
                let attempt = run.attempt;
                let reported = run
                    .incidents
                    .iter()
                    .any(|i| i.attempt == attempt && i.incident.severity == Severity::Fatal);
                if !reported {
                    // Nothing in the log explained the failure: the exit itself is the evidence.
                    let key = u64::MAX - u64::from(attempt);
                    self.incident(at, key, exit_incident(outcome), out);
                } else if let Some(DecisionPoint::Incident(seq)) = self.run().and_then(|r| r.open) {
                    // The report is already out: show that the process has now ended.
                    let msg = self.error_report(at, seq);
                    out.push(Action::Update(msg));
                }
                if self.settings.unattended && self.run().is_some_and(|r| r.phase == Phase::Halted) {
                    self.apply_policy(at, out);
                }
            }
            Phase::Completed | Phase::Failed | Phase::Killed => {}
        }
    }

    /// Nobody can decide: the job's `on_error` policy does.
    fn apply_policy(&mut self, at: DateTime<Utc>, out: &mut Vec<Action>) {
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

    fn tick(&mut self, at: DateTime<Utc>, out: &mut Vec<Action>) {
        let interval = chrono_dur(self.settings.status_interval);
        let (expected, max, log_file) = (
            self.settings.expected,
            self.settings.max,
            self.settings.log.clone(),
        );
        let Some(run) = self.state.run.as_mut().filter(|r| !r.phase.is_over()) else {
            return;
        };
        if !run.alive || !matches!(run.phase, Phase::Running | Phase::TimeoutWarned) {
            return;
        }
        if run.phase == Phase::Running && run.horizon.is_some_and(|h| at >= h) {
            run.horizon = None;
            run.timeout_count += 1;
            let n = run.timeout_count;
            if let Some(DecisionPoint::Stall(k)) = run.open {
                out.push(Action::Resolve {
                    run: run.id,
                    key: MessageKey::Stall(k),
                    note: "superseded by the timeout warning".into(),
                });
            }
            run.phase = Phase::TimeoutWarned;
            run.open = Some(DecisionPoint::Timeout(n));
            let point = DecisionPoint::Timeout(n);
            let buttons = [
                (Decision::Continue, "Continue monitoring"),
                (Decision::Investigate, "Investigate"),
                (Decision::Restart, "Terminate and restart"),
            ]
            .into_iter()
            .map(|(decision, label)| Button {
                decision,
                point,
                label: label.into(),
            })
            .collect();
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
            let elapsed = dur(at - run.attempt_started_at);
            let mut progress = run.progress.clone();
            if progress.percent.is_none() {
                progress.percent =
                    expected.map(|e| (elapsed.as_secs_f64() / e.as_secs_f64() * 100.0).min(99.9));
            }
            let body = Body::StatusUpdate {
                pid: run.pid.unwrap_or_default(),
                log_file,
                elapsed,
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

    // ---- progress, stalls, overrun -------------------------------------------------------

    /// Latest progress from the log; warns once when the projected finish passes the maximum.
    fn progress(
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
        let ahead = run.phase == Phase::Running && run.alive && run.horizon.is_some_and(|h| at < h);
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
    fn stalled(
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
        if run.phase != Phase::Running || !run.alive || run.open.is_some() || run.stall.is_some() {
            return;
        }
        run.stall_count += 1;
        let n = run.stall_count;
        run.stall = Some(StallEpisode { since, kind });
        let point = DecisionPoint::Stall(n);
        run.open = Some(point);
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
    fn stall_ended(&mut self, at: DateTime<Utc>, out: &mut Vec<Action>) {
        let Some(run) = self.active_mut() else { return };
        if run.stall.take().is_none() {
            return;
        }
        if let Some(DecisionPoint::Stall(n)) = run.open {
            run.open = None;
            out.push(Action::Resolve {
                run: run.id,
                key: MessageKey::Stall(n),
                note: format!("output resumed at {}", hhmm(at)),
            });
        }
    }

    // ---- endings ------------------------------------------------------------------------

    fn finish_completed(&mut self, at: DateTime<Utc>, outputs: Vec<OutputFile>, out: &mut Vec<Action>) {
        let log_file = self.settings.log.clone();
        let Some(run) = self.active_mut() else { return };
        if let Some(point) = run.open.take() {
            out.push(Action::Resolve {
                run: run.id,
                key: point_key(point),
                note: "the run went on and completed".into(),
            });
        }
        resolve_incidents(run, None, "the run went on and completed", None, at, out);
        let body = Body::Completed {
            total: dur(at - run.started_at),
            attempts: run.attempt,
            outputs,
            log_file,
            errors: summaries(run),
            convergence: run.convergence.clone(),
        };
        self.end(
            at,
            Phase::Completed,
            "completed".into(),
            body,
            vec![Persona::Director],
            out,
        );
    }

    fn finish_failed(
        &mut self,
        at: DateTime<Utc>,
        exit: Option<ExitOutcome>,
        reason: String,
        out: &mut Vec<Action>,
    ) {
        let log_file = self.settings.log.clone();
        let Some(run) = self.active_mut() else { return };
        if let Some(point) = run.open.take() {
            out.push(Action::Resolve {
                run: run.id,
                key: point_key(point),
                note: format!("run failed: {reason}"),
            });
        }
        resolve_incidents(run, None, "unresolved: the run failed", None, at, out);
        let body = Body::Failed {
            exit,
            reason: reason.clone(),
            total: dur(at - run.started_at),
            log_file,
            last_line: run.last_line.clone(),
            errors: summaries(run),
        };
        self.end(at, Phase::Failed, reason, body, vec![Persona::Director], out);
    }

    fn finish_killed(&mut self, at: DateTime<Utc>, out: &mut Vec<Action>) {
        let log_file = self.settings.log.clone();
        let Some(run) = self.active_mut() else { return };
        let by = run.pending_by.take().unwrap_or_else(|| "someone".into());
        if let Some(point) = run.open.take() {
            out.push(Action::Resolve {
                run: run.id,
                key: point_key(point),
                note: format!("Killed by {by} at {}", hhmm(at)),
            });
        }
        resolve_incidents(run, None, "killed", Some(&by), at, out);
        let body = Body::Killed {
            by: by.clone(),
            pid: run.pid,
            total: dur(at - run.started_at),
            log_file,
            errors: summaries(run),
        };
        self.end(
            at,
            Phase::Killed,
            format!("killed by {by}"),
            body,
            vec![Persona::Director],
            out,
        );
    }

    fn end(
        &mut self,
        at: DateTime<Utc>,
        phase: Phase,
        detail: String,
        body: Body,
        to: Vec<Persona>,
        out: &mut Vec<Action>,
    ) {
        let msg = self.message(at, MessageKey::Final, to, body);
        let Some(run) = self.active_mut() else { return };
        run.phase = phase;
        run.ended_at = Some(at);
        run.alive = false;
        let id = run.id;
        out.push(Action::Post(msg));
        out.push(Action::Record(Record::RunEnded {
            run: id,
            state: phase.as_str().into(),
            detail,
        }));
        out.push(Action::RunEnded {
            run: id,
            success: phase == Phase::Completed,
        });
    }

    fn message(&self, at: DateTime<Utc>, key: MessageKey, to: Vec<Persona>, body: Body) -> Message {
        Message {
            job: self.settings.job.clone(),
            run: self.run().map(|r| r.id).unwrap_or(RunId(0)),
            key,
            at,
            to,
            body,
            buttons: Vec::new(),
            attachments: Vec::new(),
        }
    }
}

/// Mark unresolved incidents as resolved (one by number, or every fatal one when `seq` is None,
/// plus, for None, every warning left open).
fn resolve_incidents(
    run: &mut RunState,
    seq: Option<u32>,
    what: &str,
    by: Option<&str>,
    at: DateTime<Utc>,
    out: &mut Vec<Action>,
) {
    for entry in run.incidents.iter_mut() {
        let selected = match seq {
            Some(s) => entry.seq == s,
            None => true,
        };
        if !selected || entry.resolution.is_some() {
            continue;
        }
        let what = if seq.is_none() && entry.incident.severity == Severity::Warning {
            "noted; the run went on"
        } else {
            what
        };
        entry.resolution = Some(Resolution {
            what: what.to_string(),
            by: by.map(str::to_string),
            at,
        });
        out.push(Action::Record(Record::IncidentResolved {
            run: run.id,
            seq: entry.seq,
            resolution: what.to_string(),
            by: by.map(str::to_string),
        }));
    }
}

fn summaries(run: &RunState) -> Vec<IncidentSummary> {
    run.incidents
        .iter()
        .map(|e| IncidentSummary {
            seq: e.seq,
            category: e.incident.category,
            text: e.incident.text.clone(),
            line: e.incident.line,
            count: e.incident.count,
            fatal: e.incident.severity == Severity::Fatal,
            resolution: e.resolution.clone(),
        })
        .collect()
}

/// Why a button's target (a report or fix of some run) can no longer be decided: it belongs
/// to another run, or someone already decided it.
fn stale_target(
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

fn status_text(s: &FixStatus) -> String {
    match s {
        FixStatus::Simple => "a simple bug fix".into(),
        FixStatus::AwaitingValidation => "awaiting validation".into(),
        FixStatus::Approved { by, at, .. } => format!("approved by {by} at {}", hhmm(*at)),
        FixStatus::Rejected { by, at, .. } => format!("rejected by {by} at {}", hhmm(*at)),
        FixStatus::Superseded => "superseded".into(),
        FixStatus::Applied { at } => format!("applied at {}", hhmm(*at)),
    }
}

/// The reviewed files and their hashes, short, for the audit log.
fn hashes_text(s: &Snapshot) -> String {
    let files: Vec<String> = s
        .files
        .iter()
        .map(|(p, h)| format!("{}={}", p.display(), &h[..h.len().min(12)]))
        .collect();
    format!("files [{}]", files.join(", "))
}

/// Restart / Kill / Continue / Investigate under a report.
fn decision_buttons(point: DecisionPoint) -> Vec<Button> {
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

/// What an investigation of a stall is about. A hung process is most often a deadlock in
/// data loading or a collective operation, or a resource wait: the code translator is asked.
fn stall_incident(stall: StallEpisode, last_line: Option<String>) -> Incident {
    let what = match stall.kind {
        StallKind::NoOutput => "the process is alive but has written nothing",
        StallKind::NoProgress => "the process writes but its step counter has not moved",
    };
    Incident {
        category: Category::Resource,
        severity: Severity::Warning,
        line: 0,
        text: format!("{what} since {} (hung?)", hhmm(stall.since)),
        excerpt: last_line.into_iter().collect(),
        count: 1,
    }
}

fn point_key(point: DecisionPoint) -> MessageKey {
    match point {
        DecisionPoint::Incident(seq) => MessageKey::Incident(seq),
        DecisionPoint::Timeout(n) => MessageKey::Timeout(n),
        DecisionPoint::Fix(n) => MessageKey::Gate(n),
        DecisionPoint::Stall(n) => MessageKey::Stall(n),
    }
}

fn pid_suffix(pid: Option<u32>) -> String {
    pid.map(|p| format!(", PID {p}")).unwrap_or_default()
}

fn hhmm(at: DateTime<Utc>) -> String {
    at.format("%H:%M UTC").to_string()
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn dur(d: chrono::Duration) -> Duration {
    d.to_std().unwrap_or_default()
}

//! The engine's entry point: `JobMachine::handle` takes an event with its time, dispatches it
//! to the protocol area that owns it (decisions, gate, incidents, clock, endings, process
//! events) and returns the actions to carry out. It does no I/O and reads no clock.
//! Who may give which command is decided here too, once (`authorize`). The phases of a
//! run are described in the engine's module doc.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::event::{Action, Command, Event, Input, Record};
use super::message::{Body, Decision, DecisionPoint, Message, MessageKey, Reply};
use super::state::{JobState, Phase, RunState};
use super::text;
use crate::model::{Actor, JobName, OnError, OnInfrastructure, Persona, RunId};
use crate::review::Snapshot;

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
    /// What the engine does about a scheduler: its time limit, its infrastructure failures.
    pub scheduler: SchedulerPolicy,
}

/// The job's rules for a scheduler (from `[jobs.NAME.slurm]` and `on_infrastructure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerPolicy {
    /// How long before the scheduler's time limit the timeout warning comes (capped at half
    /// the attempt's limit).
    pub warn_before: Duration,
    /// How much more time "extend" asks the scheduler for.
    pub extend_by: Duration,
    /// What an infrastructure end (or a requeue) leads to.
    pub on_infrastructure: OnInfrastructure,
}

impl SchedulerPolicy {
    pub const DEFAULT_WARN_BEFORE: Duration = Duration::from_secs(10 * 60);
    pub const DEFAULT_EXTEND_BY: Duration = Duration::from_secs(3600);
}

impl Default for SchedulerPolicy {
    fn default() -> Self {
        Self {
            warn_before: Self::DEFAULT_WARN_BEFORE,
            extend_by: Self::DEFAULT_EXTEND_BY,
            on_infrastructure: OnInfrastructure::default(),
        }
    }
}

/// The protocol for one job.
#[derive(Debug, Clone)]
pub struct JobMachine {
    pub settings: JobSettings,
    pub state: JobState,
}

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
            Event::IncidentUpdated { key, incident } => self.incident(at, key, incident, &mut out),
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
            Event::Queued { reason } => self.queued(at, reason, &mut out),
            Event::Started { limit_at } => self.started(at, limit_at, &mut out),
            Event::LimitExtended { limit_at } => self.limit_extended(at, limit_at, &mut out),
            Event::ExtendFailed { error } => self.extend_failed(at, error, &mut out),
            Event::Requeued { reason } => self.requeued(at, reason, &mut out),
            Event::SchedulerUnreachable { error } => self.scheduler_unreachable(at, error, &mut out),
            Event::SchedulerAnswering => self.scheduler_answering(at, &mut out),
        }
        out
    }

    /// When the next tick matters (status update or timeout), for a supervisor that sleeps.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let run = self.run()?;
        if !matches!(run.phase, Phase::Running { .. } | Phase::TimeoutWarned { .. }) || !run.alive {
            return None;
        }
        let status = Some(run.next_status);
        // While queued the attempt's clocks stand still: only the status update is due.
        let running = run.queue.is_none();
        let horizon = if matches!(run.phase, Phase::Running { .. }) && running {
            run.horizon
        } else {
            None
        };
        let limit = self.limit_warning_due().filter(|_| running);
        [status, horizon, limit].into_iter().flatten().min()
    }

    pub(super) fn active_mut(&mut self) -> Option<&mut RunState> {
        self.state.run.as_mut().filter(|r| !r.phase.is_over())
    }

    fn command(
        &mut self,
        at: DateTime<Utc>,
        command: Command,
        by: Actor,
        code: Option<Snapshot>,
        out: &mut Vec<Action>,
    ) {
        if let Err((what, reason)) = authorize(&command, &by, &self.settings.job) {
            return self.refuse(&by, what, reason, out);
        }
        match command {
            Command::Start => self.start(at, by, out),
            Command::Status => self.status_query(at, by, out),
            Command::Decide {
                decision: decision @ (Decision::Approve | Decision::Reject),
                target,
                ..
            } => {
                let fix = match target {
                    Some((run, DecisionPoint::Fix(n))) => Some((run, n)),
                    Some(_) => {
                        let reason = text::not_for_this_report(decision);
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

    pub(super) fn refuse(&self, by: &Actor, what: &str, reason: String, out: &mut Vec<Action>) {
        self.answer(by, what, false, reason, out);
    }

    pub(super) fn accept(&self, by: &Actor, what: &str, detail: String, out: &mut Vec<Action>) {
        self.answer(by, what, true, detail, out);
    }

    /// A command's answer goes to its sender and, with who asked, to the audit trail.
    fn answer(&self, by: &Actor, what: &str, accepted: bool, text: String, out: &mut Vec<Action>) {
        out.push(Action::Record(Record::Decision {
            run: self.run().map(|r| r.id),
            decision: what.to_string(),
            by: by.clone(),
            accepted,
            detail: text.clone(),
        }));
        out.push(Action::Reply(Reply {
            to: by.clone(),
            accepted,
            text,
        }));
    }

    pub(super) fn message(
        &self,
        at: DateTime<Utc>,
        key: MessageKey,
        to: Vec<Persona>,
        body: Body,
    ) -> Message {
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

/// Who may give which command: the protocol's roles, checked here once for every command
/// before any protocol area sees it. On refusal: the audit name of the command and why.
fn authorize(command: &Command, by: &Actor, job: &JobName) -> Result<(), (&'static str, String)> {
    const STARTERS: &[Persona] = &[Persona::Director, Persona::Starter];
    const DIRECTORS: &[Persona] = &[Persona::Director];
    const FIXERS: &[Persona] = &[
        Persona::Director,
        Persona::CodeTranslator,
        Persona::DataEngineer,
        Persona::Modeler,
    ];
    const VALIDATORS: &[Persona] = &[Persona::TimeValidator];
    let verdict = |approve: bool| if approve { "approve" } else { "reject" };
    let (what, needed) = match command {
        Command::Status => return Ok(()),
        Command::Start => ("start", STARTERS),
        Command::Decide {
            decision: d @ (Decision::Approve | Decision::Reject),
            ..
        } => (verdict(*d == Decision::Approve), VALIDATORS),
        Command::Decide { decision, .. } => (decision.as_str(), DIRECTORS),
        Command::SubmitFix { .. } => ("fix_submit", FIXERS),
        Command::Validate { approve, .. } => (verdict(*approve), VALIDATORS),
    };
    if needed.iter().any(|p| by.has(*p)) {
        return Ok(());
    }
    let who = by.display.as_str();
    let reason = match command {
        Command::Start => text::may_not_start(who),
        Command::SubmitFix { .. } => text::may_not_fix(who),
        _ if needed == VALIDATORS => text::may_not_validate(who, what),
        _ => text::may_not_decide(who, what, job),
    };
    Err((what, reason))
}

pub(super) fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

pub(super) fn dur(d: chrono::Duration) -> Duration {
    d.to_std().unwrap_or_default()
}

//! The state of a job and its run, as persisted after every event: the phase, the
//! incidents, the fixes and their verdicts, the decisions taken.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::FixEvidence;
use super::message::{Convergence, Decision, DecisionPoint, MessageKey, Progress, Resolution, StallKind};
use crate::model::{Actor, ExitOutcome, Incident, ProcessId, RunId};
use crate::review::Snapshot;

/// Where a run is in the protocol, with what is true only in that phase: the question that
/// awaits a decision, who asked for the restart or kill under way, when the run ended.
/// (Whether the process still runs is not a phase: an error halts a run whose process may
/// have ended or may go on, so liveness is `RunState::alive`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The run's first process is being started.
    Starting,
    /// A process runs; `stall` is the "hung?" question (by its number) awaiting the director.
    Running {
        stall: Option<u32>,
    },
    /// An error halted the run: its report (error `incident`) awaits the director.
    Halted {
        incident: u32,
    },
    /// Past the maximum duration: timeout warning `warning` awaits the director.
    TimeoutWarned {
        warning: u32,
    },
    /// A restart asked for by `by`; `killed_old`: the old process had to be killed for it
    /// (false: it had already ended).
    Restarting {
        by: String,
        killed_old: bool,
    },
    /// A kill asked for by `by`, waiting for the process to end.
    Stopping {
        by: String,
    },
    Completed {
        at: DateTime<Utc>,
    },
    Failed {
        at: DateTime<Utc>,
    },
    Killed {
        at: DateTime<Utc>,
    },
}

impl Phase {
    /// A process runs and nothing but (perhaps) a stall question awaits.
    pub const RUNNING: Phase = Phase::Running { stall: None };

    pub fn is_over(&self) -> bool {
        matches!(
            self,
            Phase::Completed { .. } | Phase::Failed { .. } | Phase::Killed { .. }
        )
    }

    /// The report that awaits a decision in this phase, if any.
    pub fn open(&self) -> Option<DecisionPoint> {
        match *self {
            Phase::Running { stall: Some(n) } => Some(DecisionPoint::Stall(n)),
            Phase::Halted { incident } => Some(DecisionPoint::Incident(incident)),
            Phase::TimeoutWarned { warning } => Some(DecisionPoint::Timeout(warning)),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running { .. } => "running",
            Phase::Halted { .. } => "halted on error, awaiting decision",
            Phase::TimeoutWarned { .. } => "past its maximum duration, awaiting decision",
            Phase::Restarting { .. } => "restarting",
            Phase::Stopping { .. } => "being killed",
            Phase::Completed { .. } => "completed",
            Phase::Failed { .. } => "failed",
            Phase::Killed { .. } => "killed",
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
    pub attempt: u32,
    pub attempt_started_at: DateTime<Utc>,
    /// PID of the current (or last) process; `alive` says whether it still runs.
    pub pid: Option<ProcessId>,
    pub alive: bool,
    pub last_exit: Option<ExitOutcome>,
    /// When to post the timeout warning (None: no maximum, or already warned).
    pub horizon: Option<DateTime<Utc>>,
    pub next_status: DateTime<Utc>,
    pub status_count: u32,
    pub timeout_count: u32,
    pub notice_count: u32,
    pub incidents: Vec<IncidentEntry>,
    pub auto_restarts: u32,
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
    /// "Hung?" warnings posted in this run.
    #[serde(default)]
    pub stall_count: u32,
    /// The stall under way, once warned about (one warning per episode).
    #[serde(default)]
    pub stall: Option<StallEpisode>,
    /// The early overrun warning went out (once per run).
    #[serde(default)]
    pub overrun_warned: bool,
    /// The current attempt waits in the scheduler's queue (its clocks stand still).
    #[serde(default)]
    pub queue: Option<QueueWait>,
    /// Time this run's earlier attempts spent in the scheduler's queue (not running time).
    #[serde(default)]
    pub queued_for: Duration,
    /// When the scheduler will end the current attempt (its time limit), if it has one.
    #[serde(default)]
    pub limit_at: Option<DateTime<Utc>>,
    /// The attempt whose start the scheduler has told (0: none yet), so that a supervisor
    /// re-adopting the job, which hears it again, does not tell it twice.
    #[serde(default)]
    pub started_attempt: u32,
    /// The timeout warning posted for a scheduler limit (one per limit).
    #[serde(default)]
    pub limit_warned: Option<LimitWarned>,
    /// More time was asked of the scheduler, by this person; its answer is awaited.
    #[serde(default)]
    pub extending: Option<String>,
    /// Attempts started by the `on_infrastructure` policy in this run.
    #[serde(default)]
    pub resubmits: u32,
    /// The scheduler's controller has not answered since then (told once per episode).
    #[serde(default)]
    pub scheduler_down: Option<DateTime<Utc>>,
    /// The earlier log the first attempt moved aside (shown again when its start message is
    /// edited with the queue's reason).
    #[serde(default)]
    pub previous_log: Option<std::path::PathBuf>,
}

/// An attempt held in the scheduler's queue: since when, and why (the scheduler's words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueWait {
    pub since: DateTime<Utc>,
    pub reason: String,
}

/// The timeout warning of a scheduler time limit: which limit, and the warning's number
/// (None: the limit had passed before it could be warned about, e.g. trainwatch was down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitWarned {
    pub limit_at: DateTime<Utc>,
    pub warning: Option<u32>,
}

impl RunState {
    /// A run just started by `by`, its first process not yet spawned.
    pub(super) fn new(id: RunId, at: DateTime<Utc>, by: &str) -> Self {
        Self {
            id,
            phase: Phase::Starting,
            started_at: at,
            started_by: by.to_string(),
            attempt: 0,
            attempt_started_at: at,
            pid: None,
            alive: false,
            last_exit: None,
            horizon: None,
            next_status: at,
            status_count: 0,
            timeout_count: 0,
            notice_count: 0,
            incidents: Vec::new(),
            auto_restarts: 0,
            last_line: None,
            last_line_no: 0,
            progress: Progress::default(),
            convergence: None,
            decided: Vec::new(),
            baseline: None,
            fixes: Vec::new(),
            stall_count: 0,
            stall: None,
            overrun_warned: false,
            queue: None,
            queued_for: Duration::ZERO,
            limit_at: None,
            started_attempt: 0,
            limit_warned: None,
            extending: None,
            resubmits: 0,
            scheduler_down: None,
            previous_log: None,
        }
    }

    /// How long the run has been running as of `at`: since it started, less what its
    /// attempts waited in the scheduler's queue.
    pub(super) fn running_for(&self, at: DateTime<Utc>) -> Duration {
        let wall = (at - self.started_at).to_std().unwrap_or_default();
        let waiting = self
            .queue
            .as_ref()
            .map(|q| (at - q.since).to_std().unwrap_or_default())
            .unwrap_or_default();
        wall.saturating_sub(self.queued_for + waiting)
    }

    /// The open timeout warning is the one for the scheduler's time limit.
    pub(super) fn limit_question_open(&self) -> bool {
        matches!((&self.phase, self.limit_warned), (Phase::TimeoutWarned { warning }, Some(w)) if w.warning == Some(*warning))
    }
}

/// The fix a restart resumed with, as the resolution of the error it fixed names it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AppliedFix {
    pub seq: u32,
    pub summary: String,
}

/// Everything the engine remembers about a job; persisted after every event, so a
/// restarted trainwatch resumes exactly here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub last_run: u32,
    pub run: Option<RunState>,
}

impl JobState {
    /// Reads a state as the store holds it, including one stored by an older trainwatch
    /// (before phases carried their data), so a run under way survives an upgrade.
    pub fn from_stored(json: &str) -> Result<JobState, serde_json::Error> {
        let mut value: serde_json::Value = serde_json::from_str(json)?;
        if let Some(run) = value.get_mut("run").and_then(serde_json::Value::as_object_mut) {
            upgrade_phase(run);
        }
        serde_json::from_value(value)
    }
}

/// Older stored form: `phase` a bare name, with the question awaiting a decision (`open`),
/// who asked for the restart or kill (`pending_by`), whether the restart killed the old
/// process (`killed_for_restart`) and when the run ended (`ended_at`) as fields of the run.
fn upgrade_phase(run: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::{json, Value};
    let Some(Value::String(name)) = run.get("phase").cloned() else {
        return;
    };
    let open = run.remove("open").unwrap_or(Value::Null);
    let by = run.remove("pending_by").unwrap_or(Value::Null);
    let by = by.as_str().unwrap_or_default();
    let killed_old = run.remove("killed_for_restart").and_then(|v| v.as_bool());
    let ended_at = run.remove("ended_at").unwrap_or(Value::Null);
    let point = |kind: &str| open.get(kind).cloned().unwrap_or(Value::Null);
    let phase = match name.as_str() {
        "running" => json!({ "running": { "stall": point("stall") } }),
        "halted" => json!({ "halted": { "incident": point("incident") } }),
        "timeout_warned" => json!({ "timeout_warned": { "warning": point("timeout") } }),
        "restarting" => json!({ "restarting": { "by": by, "killed_old": killed_old.unwrap_or(false) } }),
        "stopping" => json!({ "stopping": { "by": by } }),
        "completed" | "failed" | "killed" => json!({ name: { "at": ended_at } }),
        _ => return,
    };
    run.insert("phase".into(), phase);
}

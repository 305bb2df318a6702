//! The protocol's messages as typed values. Each carries the fields the protocol shows
//! and the personas it addresses; rendering (terminal text, Discord embeds) is the chat
//! adapter's job. A `MessageKey` names a report so it can later be edited in place
//! (traceback completed, decision taken).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Actor, Category, ExitOutcome, Incident, JobName, Persona, ProcessId, RunId};
use crate::review::{ChangesSummary, Comparison};
// The progress, convergence and stall facts are the log side's own plain data types: the
// engine shows them as measured, with no copy of its own.
pub use crate::watch::metrics::Convergence;
pub use crate::watch::progress::{Progress, StallKind};

/// What a director (or validator) can decide on a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Restart,
    Kill,
    Continue,
    Investigate,
    /// The validator's verdict on a fix that changes the design (Phase 4.5).
    Approve,
    Reject,
    /// Ask the scheduler for more time (the job's `extend_by`): the director's, while the
    /// attempt runs under a scheduler time limit.
    Extend,
}

impl Decision {
    pub const ALL: [Decision; 7] = [
        Decision::Restart,
        Decision::Kill,
        Decision::Continue,
        Decision::Investigate,
        Decision::Approve,
        Decision::Reject,
        Decision::Extend,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Restart => "restart",
            Decision::Kill => "kill",
            Decision::Continue => "continue",
            Decision::Investigate => "investigate",
            Decision::Approve => "approve",
            Decision::Reject => "reject",
            Decision::Extend => "extend",
        }
    }
    /// Past tense for "Restarted by @x at 14:02".
    pub fn done(self) -> &'static str {
        match self {
            Decision::Restart => "Restarted",
            Decision::Kill => "Killed",
            Decision::Continue => "Monitoring continued",
            Decision::Investigate => "Investigation requested",
            Decision::Approve => "Approved",
            Decision::Reject => "Rejected",
            Decision::Extend => "More time asked of the scheduler",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decision::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                format!("unknown decision {s:?} (expected restart, kill, continue, investigate or extend)")
            })
    }
}

/// A report that awaits a decision: an error report (by incident number) or a timeout warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionPoint {
    Incident(u32),
    Timeout(u32),
    /// A submitted fix awaiting the validator (Phase 4.5 gate).
    Fix(u32),
    /// A "hung?" warning (stall episode n of the run).
    Stall(u32),
}

/// Names a posted message within a run, so an adapter can find it again to edit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKey {
    Started,
    Incident(u32),
    Warning(u32),
    Status(u32),
    Timeout(u32),
    Restarting(u32),
    Investigate(u32),
    Notice(u32),
    /// The CHANGES SUMMARY of fix n.
    Fix(u32),
    /// RE-VALIDATION REQUIRED for fix n (with Approve / Reject).
    Gate(u32),
    /// The validator's verdict on fix n.
    Verdict(u32),
    /// The "hung?" warning of stall episode n.
    Stall(u32),
    /// The early warning that the run is projected to pass its maximum duration.
    Overrun,
    Final,
    /// The supervisor's n-th word about its store (unwritable, replaced, writable again).
    Store(u32),
}

impl fmt::Display for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageKey::Started => f.write_str("started"),
            MessageKey::Incident(n) => write!(f, "incident-{n}"),
            MessageKey::Warning(n) => write!(f, "warning-{n}"),
            MessageKey::Status(n) => write!(f, "status-{n}"),
            MessageKey::Timeout(n) => write!(f, "timeout-{n}"),
            MessageKey::Restarting(n) => write!(f, "restarting-{n}"),
            MessageKey::Investigate(n) => write!(f, "investigate-{n}"),
            MessageKey::Notice(n) => write!(f, "notice-{n}"),
            MessageKey::Fix(n) => write!(f, "fix-{n}"),
            MessageKey::Gate(n) => write!(f, "gate-{n}"),
            MessageKey::Verdict(n) => write!(f, "verdict-{n}"),
            MessageKey::Stall(n) => write!(f, "stall-{n}"),
            MessageKey::Overrun => f.write_str("overrun"),
            MessageKey::Final => f.write_str("final"),
            MessageKey::Store(n) => write!(f, "store-{n}"),
        }
    }
}

impl std::str::FromStr for MessageKey {
    type Err = String;

    /// The key back from its text (as an outbox row keeps it): the inverse of `Display`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("not a message key: {s:?}");
        match s {
            "started" => return Ok(MessageKey::Started),
            "overrun" => return Ok(MessageKey::Overrun),
            "final" => return Ok(MessageKey::Final),
            _ => {}
        }
        let (kind, n) = s.rsplit_once('-').ok_or_else(bad)?;
        let n: u32 = n.parse().map_err(|_| bad())?;
        Ok(match kind {
            "incident" => MessageKey::Incident(n),
            "warning" => MessageKey::Warning(n),
            "status" => MessageKey::Status(n),
            "timeout" => MessageKey::Timeout(n),
            "restarting" => MessageKey::Restarting(n),
            "investigate" => MessageKey::Investigate(n),
            "notice" => MessageKey::Notice(n),
            "fix" => MessageKey::Fix(n),
            "gate" => MessageKey::Gate(n),
            "verdict" => MessageKey::Verdict(n),
            "stall" => MessageKey::Stall(n),
            "store" => MessageKey::Store(n),
            _ => return Err(bad()),
        })
    }
}

/// A button under a report: what it decides, on which report, with the protocol's label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub decision: Decision,
    pub point: DecisionPoint,
    pub label: String,
}

/// An expected output file and its size, or None when it is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    pub path: PathBuf,
    pub size: Option<u64>,
}

/// How an incident was resolved, for the completion report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub what: String,
    pub by: Option<String>,
    pub at: DateTime<Utc>,
}

/// One error encountered during a run, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSummary {
    pub seq: u32,
    pub category: Category,
    pub text: String,
    pub line: u64,
    pub count: u32,
    pub fatal: bool,
    pub resolution: Option<Resolution>,
}

/// An attempt of a run and how long its process has been running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptTime {
    pub attempt: u32,
    pub running_for: Duration,
}

/// The body of each protocol message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// "Training started with PID … Log file … Entering watch mode."
    TrainingStarted {
        pid: ProcessId,
        log_file: PathBuf,
        argv: Vec<String>,
        expected: Option<Duration>,
        max: Option<Duration>,
        /// An earlier log moved aside so this run starts a fresh one.
        previous_log: Option<PathBuf>,
        /// Why the scheduler holds the job in its queue, once it has said (a Slurm job posts
        /// this message when submitted and edits it as the reason arrives or changes).
        #[serde(default)]
        queued: Option<String>,
    },
    /// "⚠️ ERROR DETECTED": the report that awaits the director's decision.
    ErrorDetected {
        seq: u32,
        pid: Option<ProcessId>,
        log_file: PathBuf,
        incident: Incident,
        /// Set when the process has already ended.
        exit: Option<ExitOutcome>,
        elapsed: Duration,
    },
    /// A problem that does not stop the run (a ConvergenceWarning, a caught exception).
    WarningNoticed {
        seq: u32,
        log_file: PathBuf,
        incident: Incident,
    },
    /// "Phase 5B Training Status Update".
    StatusUpdate {
        pid: ProcessId,
        log_file: PathBuf,
        /// Since the run started (all attempts).
        elapsed: Duration,
        /// The attempt under way, once the run has restarted (None for the first attempt).
        #[serde(default)]
        attempt: Option<AttemptTime>,
        expected: Option<Duration>,
        progress: Progress,
        last_line: Option<String>,
        /// Warnings noticed so far (no fatal error is open while the run is "running normally").
        open: Vec<IncidentSummary>,
    },
    /// "⚠️ TIMEOUT WARNING".
    TimeoutWarning {
        pid: ProcessId,
        expected: Option<Duration>,
        max: Duration,
        elapsed: Duration,
        last_line: Option<String>,
    },
    /// "Hung?": the process is alive but silent (or its steps stand still) for the stall timeout.
    StallWarning {
        seq: u32,
        pid: ProcessId,
        stall: StallKind,
        /// The last sign of life of the kind that stopped (last line, or last step advance).
        since: DateTime<Utc>,
        /// How long it has been silent or stuck when the warning went out.
        stalled_for: Duration,
        step: Option<u64>,
        last_line: Option<String>,
    },
    /// The projected finish (elapsed + ETA) falls after the maximum duration: told once,
    /// ahead of the timeout.
    OverrunWarning {
        pid: ProcessId,
        elapsed: Duration,
        projected_total: Duration,
        max: Duration,
        eta: Duration,
        progress: Progress,
    },
    /// "Restarting training with fixed code…".
    Restarting {
        old_pid: Option<ProcessId>,
        /// The old process had already ended by itself (nothing was killed).
        #[serde(default)]
        old_ended: bool,
        new_pid: ProcessId,
        log_file: PathBuf,
        checkpoint: Option<PathBuf>,
        decided_by: String,
        attempt: u32,
    },
    /// A decision was taken (continue monitoring, or a kill on its way).
    DecisionTaken {
        decision: Decision,
        by: String,
        detail: String,
    },
    /// The protocol's investigation request, addressed to the category's owner.
    Investigate {
        owner: Persona,
        requested_by: String,
        incident: Option<Incident>,
        log_file: PathBuf,
        last_line: Option<String>,
    },
    /// A fix was submitted: the protocol's CHANGES SUMMARY, computed from the job's files.
    FixSubmitted {
        seq: u32,
        by: String,
        summary: String,
        changes: ChangesSummary,
    },
    /// "RE-VALIDATION REQUIRED": the fix changes design parameters; the validator must
    /// approve before training may resume.
    RevalidationRequired {
        seq: u32,
        submitted_by: String,
        changes: ChangesSummary,
        comparison: Comparison,
    },
    /// The validator's verdict.
    ValidationDecided {
        seq: u32,
        approved: bool,
        by: String,
        reason: Option<String>,
        expires: Option<DateTime<Utc>>,
    },
    /// "✅ Phase 5B Training Complete".
    Completed {
        total: Duration,
        attempts: u32,
        outputs: Vec<OutputFile>,
        log_file: PathBuf,
        errors: Vec<IncidentSummary>,
        convergence: Option<Convergence>,
    },
    /// The run ended without success: the process failed and nobody (or the policy) restarted it.
    Failed {
        exit: Option<ExitOutcome>,
        reason: String,
        total: Duration,
        log_file: PathBuf,
        last_line: Option<String>,
        errors: Vec<IncidentSummary>,
    },
    /// The run was killed by a decision.
    Killed {
        by: String,
        pid: Option<ProcessId>,
        total: Duration,
        log_file: PathBuf,
        errors: Vec<IncidentSummary>,
    },
    /// Not the protocol's: the supervisor's word on its store, so the team knows when what it
    /// sees is not being kept (and when it is again).
    Store { notice: StoreNotice },
    /// The status update while the scheduler holds the attempt in its queue: how long, why.
    /// (The attempt's clocks do not run meanwhile.)
    Queued {
        pid: ProcessId,
        attempt: u32,
        reason: String,
        waiting_for: Duration,
        log_file: PathBuf,
    },
    /// The scheduler started the attempt, after `waited` in its queue; it ends the attempt at
    /// `limit_at` (its time limit), if it has one.
    SchedulerStarted {
        pid: ProcessId,
        attempt: u32,
        waited: Duration,
        limit_at: Option<DateTime<Utc>>,
    },
    /// The protocol's "⚠️ TIMEOUT WARNING", for the scheduler's time limit: it comes `left`
    /// before the scheduler kills the attempt, while there is still time to act; "extend"
    /// asks the scheduler for `extend_by` more.
    LimitWarning {
        pid: ProcessId,
        limit_at: DateTime<Utc>,
        left: Duration,
        elapsed: Duration,
        extend_by: Duration,
        last_line: Option<String>,
    },
    /// The scheduler granted more time (asked for by `by`): the attempt now ends at `limit_at`.
    LimitExtended { by: String, limit_at: DateTime<Utc> },
    /// The scheduler did not grant more time; its limit stands.
    ExtendFailed {
        by: String,
        error: String,
        limit_at: Option<DateTime<Utc>>,
    },
    /// The scheduler ended the attempt for the cluster's reasons (`why`: a failed node, a
    /// preemption), or took it back into its queue (`requeued`): the next attempt starts by
    /// itself, the `n`-th of at most `limit` in this run, without a decision.
    Resubmitted {
        why: String,
        requeued: bool,
        n: u32,
        limit: u32,
    },
    /// Not the protocol's: the supervisor's word on the scheduler's controller, once per
    /// episode, so the team knows why nothing is heard of the job meanwhile.
    Scheduler { notice: SchedulerNotice },
}

impl Body {
    /// Short title, as the protocol heads each message.
    pub fn title(&self) -> &'static str {
        match self {
            Body::TrainingStarted { .. } => "✅ Training started",
            Body::ErrorDetected { .. } => "⚠️ ERROR DETECTED",
            Body::WarningNoticed { .. } => "⚠️ Warning noticed",
            Body::StatusUpdate { .. } => "📊 Training Status Update",
            Body::TimeoutWarning { .. } => "⚠️ TIMEOUT WARNING",
            Body::StallWarning { .. } => "⚠️ HUNG? No progress",
            Body::OverrunWarning { .. } => "⚠️ Projected to overrun",
            Body::Restarting { .. } => "🔄 Restarting training",
            Body::DecisionTaken { .. } => "📝 Decision",
            Body::Investigate { .. } => "🔍 Investigation requested",
            Body::FixSubmitted { .. } => "🔧 Fix submitted",
            Body::RevalidationRequired { .. } => "🛂 RE-VALIDATION REQUIRED",
            Body::ValidationDecided { approved: true, .. } => "✅ Fix APPROVED",
            Body::ValidationDecided { approved: false, .. } => "❌ Fix REJECTED",
            Body::Completed { .. } => "✅ Training Complete",
            Body::Failed { .. } => "❌ Training Failed",
            Body::Killed { .. } => "🛑 Training Killed",
            Body::Store {
                notice: StoreNotice::Unwritable { .. },
            } => "💾 Store unwritable",
            Body::Store {
                notice: StoreNotice::Replaced { .. },
            } => "💾 Store deleted or replaced",
            Body::Store {
                notice: StoreNotice::Recovered { .. },
            } => "💾 Store writable again",
            Body::Queued { .. } => "⏳ Waiting in queue",
            Body::SchedulerStarted { .. } => "▶️ Started by the scheduler",
            Body::LimitWarning { .. } => "⚠️ TIMEOUT WARNING",
            Body::LimitExtended { .. } => "⏱️ Time limit extended",
            Body::ExtendFailed { .. } => "⏱️ Time limit not extended",
            Body::Resubmitted { requeued: true, .. } => "🔁 Requeued by the scheduler",
            Body::Resubmitted { requeued: false, .. } => "🔁 Resubmitted after a cluster failure",
            Body::Scheduler {
                notice: SchedulerNotice::Unreachable { .. },
            } => "📡 Scheduler not answering",
            Body::Scheduler {
                notice: SchedulerNotice::Answering { .. },
            } => "📡 Scheduler answering again",
        }
    }
}

/// What the supervisor says about the scheduler's controller. Each is said once per episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SchedulerNotice {
    /// It stopped answering (`error`: what the last call said); the job is polled again with
    /// a back-off, and the run goes on.
    Unreachable { error: String },
    /// It answers again, after `after` without an answer.
    Answering { after: Duration },
}

/// What the supervisor says about its store. Each is said once per episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StoreNotice {
    /// Writes fail: what the job's steps recorded is held in memory and retried.
    Unwritable {
        path: PathBuf,
        why: String,
        retry_in: Duration,
    },
    /// The store file was deleted or replaced while in use: a new one was created at the same
    /// path and what the supervisor holds (the job's state, its unwritten steps) written to it.
    /// History written before is not in the new file.
    Replaced { path: PathBuf },
    /// Writes succeed again: every held step was written, except `dropped` history rows
    /// beyond the bound (chat messages are never dropped).
    Recovered {
        path: PathBuf,
        after: Duration,
        steps: usize,
        dropped: u64,
    },
}

/// A message the bot posts, addressed to personas, possibly with decision buttons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub job: JobName,
    pub run: RunId,
    pub key: MessageKey,
    pub at: DateTime<Utc>,
    /// Personas the protocol addresses in this message (mentioned in chat).
    pub to: Vec<Persona>,
    pub body: Body,
    pub buttons: Vec<Button>,
    /// Files shown with the message (a chart PNG). The engine leaves this empty; the
    /// supervisor attaches what it renders.
    #[serde(default)]
    pub attachments: Vec<PathBuf>,
}

/// Answer to a command, shown only to who sent it (ephemeral in Discord).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub to: Actor,
    pub accepted: bool,
    pub text: String,
}

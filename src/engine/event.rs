//! What flows into and out of the engine. Events carry the time they happened, so the
//! engine never reads a clock; actions are requests the supervisor carries out.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::message::{
    Convergence, Decision, DecisionPoint, Message, MessageKey, OutputFile, Progress, Reply, StallKind,
};
use crate::model::{Actor, ExitOutcome, Incident, ProcessId, RunId};
use crate::review::{ChangesSummary, Comparison, Snapshot};

/// A chat command, already parsed, with the report it refers to when it came from a button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Start a new run of the job.
    Start,
    /// Ask for a status update now.
    Status,
    /// A decision: from `/decide`, `/kill`, `/restart`, or a button.
    Decide {
        decision: Decision,
        /// Set by buttons: the run and report the button was posted under.
        target: Option<(RunId, DecisionPoint)>,
        /// For "continue" after a timeout warning: how far to push the horizon.
        extend: Option<Duration>,
    },
    /// `/fix submit`: a fix is ready. The chat sends it without evidence; the supervisor
    /// computes the evidence from the job's files before the engine sees it.
    SubmitFix {
        summary: String,
        evidence: Option<Box<FixEvidence>>,
    },
    /// `/validate approve|reject`: the validator's verdict on the latest fix.
    Validate { approve: bool, reason: Option<String> },
}

/// What a fix changed, computed from the job's files (never typed by hand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixEvidence {
    pub changes: ChangesSummary,
    pub comparison: Comparison,
    /// The snapshot of the code as submitted: an approval binds to its file hashes.
    pub reviewed: Snapshot,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The executor started the job's process (after a Spawn action).
    Spawned {
        pid: ProcessId,
        checkpoint: Option<PathBuf>,
        previous_log: Option<PathBuf>,
    },
    /// The executor could not start the process.
    SpawnFailed { error: String },
    /// A detector found a problem. `key` is the supervisor's id for it within the run, so
    /// later evidence (`IncidentUpdated`) can be attached to the same incident.
    Incident { key: u64, incident: Incident },
    /// More evidence for an incident already reported (rest of the traceback, a burst count).
    IncidentUpdated { key: u64, incident: Incident },
    /// The log grew; the last complete line (display form) and its number.
    LogActivity { last_line: String, line_no: u64 },
    /// Latest progress and metrics from the log.
    Progress {
        progress: Progress,
        convergence: Option<Convergence>,
    },
    /// The process is alive but has been silent (or its steps stood still) for the stall
    /// timeout. Sent on every check while the stall lasts; the engine warns once per episode.
    Stalled {
        since: DateTime<Utc>,
        kind: StallKind,
        last_line: Option<String>,
    },
    /// Output or progress resumed after a stall: the episode is over.
    StallEnded,
    /// The process ended. `outputs` are the job's expected output files, stat'ed by the
    /// supervisor at exit so the completion report can list their sizes.
    Exited {
        outcome: ExitOutcome,
        outputs: Vec<OutputFile>,
    },
    /// Time passed (the supervisor ticks; what is due is decided here).
    Tick,
    /// A command from chat (or the console), with who sent it. `code` is the job's code as it
    /// is now (file hashes), taken by the supervisor for decisions that a review binds.
    Command {
        command: Command,
        by: Actor,
        code: Option<Snapshot>,
    },
    /// The state of the job's code when a run starts: what a fix is compared against.
    Baseline { snapshot: Snapshot },
    /// The scheduler holds the attempt in its queue. Sent after `Spawned` while it waits, and
    /// again each time the reason changes; `reason` is the scheduler's, made readable
    /// ("Priority", "Resources", "held by the user"). While queued the attempt's clocks
    /// (timeouts, the stall watch, its elapsed time) do not run.
    Queued { reason: String },
    /// The scheduler started the attempt. `limit_at`: when the scheduler will end it (its
    /// time limit), None without one. After `Queued`, the attempt's clocks start here; for an
    /// attempt never queued, `Spawned` started them and only the limit is taken.
    Started { limit_at: Option<DateTime<Utc>> },
    /// The result of an `ExtendLimit` action: the scheduler now ends the attempt at `limit_at`.
    LimitExtended { limit_at: DateTime<Utc> },
    /// The result of an `ExtendLimit` action: the scheduler refused (or could not be asked).
    ExtendFailed { error: String },
    /// The scheduler took the running attempt back into its queue (a node failure, a
    /// preemption with requeue): its process is gone and the same scheduler job will start
    /// again by itself, as the run's next attempt appending to the same log. Not a restart
    /// the team decided, and not counted against `restart_limit`.
    Requeued { reason: String },
    /// The scheduler's controller stopped answering; the run goes on meanwhile.
    SchedulerUnreachable { error: String },
    /// The scheduler's controller answers again.
    SchedulerAnswering,
}

/// An event and when it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub at: DateTime<Utc>,
    pub event: Event,
}

/// Something the engine wants done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Post a new message to the job's chat.
    Post(Message),
    /// Replace a posted message (same key) with this newer version.
    Update(Message),
    /// Close a report's decision: disable its buttons and note who decided (“Restarted by @x at 14:02”).
    Resolve {
        run: RunId,
        key: MessageKey,
        note: String,
    },
    /// Answer the sender of a command (ephemeral).
    Reply(Reply),
    /// Start the job's process. A new run (`append: false`) starts a fresh log; a restart
    /// appends and, when `resume`, resumes from the newest checkpoint if the job has one.
    Spawn {
        run: RunId,
        attempt: u32,
        append: bool,
        resume: bool,
    },
    /// Stop the job's process group (TERM, then KILL after the grace period).
    Kill,
    /// Ask the scheduler for more time for the running attempt (`by` added to its time
    /// limit); the answer comes back as `LimitExtended` or `ExtendFailed`.
    ExtendLimit { by: Duration },
    /// Append to the audit trail (decisions, refusals, incidents…).
    Record(Record),
    /// The run is over; nothing more will happen until a new Start.
    RunEnded { run: RunId, success: bool },
}

/// A fact for the store's history, beyond the engine's own state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    RunStarted {
        run: RunId,
        by: String,
    },
    AttemptStarted {
        run: RunId,
        attempt: u32,
        pid: ProcessId,
        checkpoint: Option<PathBuf>,
    },
    AttemptEnded {
        run: RunId,
        attempt: u32,
        outcome: ExitOutcome,
    },
    Incident {
        run: RunId,
        seq: u32,
        incident: Incident,
    },
    IncidentResolved {
        run: RunId,
        seq: u32,
        resolution: String,
        by: Option<String>,
    },
    Decision {
        run: Option<RunId>,
        decision: String,
        by: Actor,
        accepted: bool,
        detail: String,
    },
    RunEnded {
        run: RunId,
        state: String,
        detail: String,
    },
}

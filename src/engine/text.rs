//! Every sentence the engine writes: replies to commands, notes on closed reports, audit
//! details, incident resolutions. One place, so the wording is consistent and reviewable;
//! the protocol areas decide *what* to say and call these for *how* it reads. (Report
//! bodies are typed data, worded by the chat renderers; the exit classifier's incident
//! text stays with the classifier.)

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::message::{Decision, StallKind};
use super::state::{FixStatus, Phase};
use crate::config::format_duration;
use crate::model::{ExitOutcome, JobName, Persona, ProcessId, RunId};
use crate::review::Snapshot;

/// A time of day as chat shows it: "14:02 UTC".
pub(super) fn hhmm(at: DateTime<Utc>) -> String {
    at.format("%H:%M UTC").to_string()
}

fn pid_suffix(pid: Option<ProcessId>) -> String {
    pid.map(|p| format!(", {p}")).unwrap_or_default()
}

// ---- who may do what ---------------------------------------------------------------------

pub(super) fn may_not_start(by: &str) -> String {
    format!("{by} may not start jobs: that needs the director or starter role")
}

pub(super) fn may_not_decide(by: &str, what: &str, job: &JobName) -> String {
    format!("{by} may not {what} {job}: decisions need the director role")
}

pub(super) fn may_not_fix(by: &str) -> String {
    format!(
        "{by} may not submit fixes: that needs the code_translator, data_engineer, modeler or director role"
    )
}

pub(super) fn may_not_validate(by: &str, what: &str) -> String {
    format!("{by} may not {what} fixes: that needs the time_validator role")
}

// ---- start and status ----------------------------------------------------------------------

pub(super) fn already_running(job: &JobName, phase: &Phase, run: RunId, pid: Option<ProcessId>) -> String {
    format!(
        "{job} is already {} (run {run}{})",
        phase.as_str(),
        pid_suffix(pid)
    )
}

pub(super) fn starting(job: &JobName, run: RunId) -> String {
    format!("starting {job} (run {run})")
}

pub(super) fn no_run_yet(job: &JobName) -> String {
    format!("{job}: no run yet")
}

/// What `/status` answers about a run, from its parts.
pub(super) struct StatusParts<'a> {
    pub job: &'a JobName,
    pub run: RunId,
    pub phase: &'a Phase,
    /// "waiting in queue for 14 min: Priority", while a scheduler holds the attempt.
    pub queued: Option<String>,
    pub pid: Option<ProcessId>,
    pub step: Option<u64>,
    pub total: Option<u64>,
    pub percent: Option<f64>,
    pub hung: bool,
    pub last_line: Option<(u64, &'a str)>,
    pub incidents: usize,
    pub fatal: usize,
}

pub(super) fn status(s: StatusParts<'_>) -> String {
    let mut t = format!(
        "{} run {}: {}{}",
        s.job,
        s.run,
        s.queued.as_deref().unwrap_or(s.phase.as_str()),
        pid_suffix(s.pid)
    );
    match (s.step, s.total, s.percent) {
        (Some(step), Some(total), Some(p)) => t.push_str(&format!("; step {step}/{total} ({p:.1}%)")),
        (Some(step), _, _) => t.push_str(&format!("; step {step}")),
        (None, _, Some(p)) => t.push_str(&format!("; {p:.1}% of the expected time")),
        _ => {}
    }
    if s.hung {
        t.push_str("; looks hung (no output or progress)");
    }
    // The counts before the log line: a long line (a progress bar, a dumped tensor) must not
    // push what the director decides on out of the message.
    t.push_str(&format!("; {} incident(s), {} fatal", s.incidents, s.fatal));
    if let Some((n, line)) = s.last_line {
        t.push_str(&format!("; last log line {n}: {line}"));
    }
    t
}

// ---- decisions -----------------------------------------------------------------------------

pub(super) fn not_for_this_report(decision: Decision) -> String {
    format!("{decision} applies to a submitted fix, not to this report")
}

pub(super) fn no_run_to(job: &JobName, what: &str) -> String {
    format!("{job} has no run to {what}")
}

pub(super) fn no_longer_awaits(job: &JobName, phase: &Phase) -> String {
    format!(
        "that report no longer awaits a decision ({job} is {})",
        phase.as_str()
    )
}

pub(super) fn run_already_over(job: &JobName, run: RunId, phase: &Phase) -> String {
    format!(
        "run {run} of {job} has already {}; use start for a new run",
        phase.as_str()
    )
}

pub(super) fn restart_not_possible(job: &JobName, phase: &Phase) -> String {
    format!("{job} is {}; restart is not possible now", phase.as_str())
}

pub(super) fn restarting(job: &JobName) -> String {
    format!("restarting {job}")
}

pub(super) fn already_being_killed(job: &JobName) -> String {
    format!("{job} is already being killed")
}

pub(super) fn killing(job: &JobName) -> String {
    format!("killing {job}")
}

pub(super) fn process_has_ended(job: &JobName, exit: Option<ExitOutcome>) -> String {
    let exit = exit
        .map(|e| e.to_string())
        .unwrap_or_else(|| "status unknown".into());
    format!("{job}'s process has ended ({exit}); restart or kill")
}

pub(super) fn nothing_awaits_decision(job: &JobName, phase: &Phase) -> String {
    format!("nothing of {job} awaits a decision ({})", phase.as_str())
}

pub(super) fn continuing(job: &JobName, next_timeout_in: Option<Duration>) -> String {
    match next_timeout_in {
        Some(ext) => format!(
            "continuing to monitor {job}; next timeout warning in {}",
            format_duration(ext)
        ),
        None => format!("continuing to monitor {job}"),
    }
}

pub(super) fn continuing_to_limit(job: &JobName, limit: DateTime<Utc>) -> String {
    format!(
        "continuing to monitor {job}; the scheduler ends it at its time limit, {}",
        hhmm(limit)
    )
}

pub(super) fn nothing_awaits_investigation(job: &JobName, phase: &Phase) -> String {
    format!("nothing of {job} awaits investigation ({})", phase.as_str())
}

pub(super) fn asked_to_investigate(job: &JobName, owner: Persona) -> String {
    format!("asked @{owner} to investigate {job}")
}

/// The note on a report once decided: "Restarted by @x at 14:02 UTC".
pub(super) fn decided_note(decision: Decision, by: &str, at: DateTime<Utc>) -> String {
    format!("{} by {by} at {}", decision.done(), hhmm(at))
}

pub(super) fn other_run(noun: &str, target: RunId, job: &JobName, latest: RunId) -> String {
    format!("that {noun} belongs to run {target} of {job}; the latest run is {latest}")
}

pub(super) fn already_decided(decision: Decision, by: &str, at: DateTime<Utc>) -> String {
    format!("already decided: {}", decided_note(decision, by, at))
}

// ---- a scheduler -------------------------------------------------------------------------

pub(super) fn no_limit_to_extend(job: &JobName) -> String {
    format!("{job} is not running under a scheduler time limit: there is nothing to extend")
}

pub(super) fn already_extending(job: &JobName, by: &str) -> String {
    format!("{by} already asked the scheduler for more time for {job}; its answer is awaited")
}

pub(super) fn extending(job: &JobName, by: Duration) -> String {
    format!("asking the scheduler for {} more for {job}", format_duration(by))
}

/// Who started an attempt after an infrastructure end: the job's policy.
pub(super) const INFRASTRUCTURE_POLICY: &str = "on_infrastructure policy";

pub(super) fn resubmitted(n: u32, limit: u32) -> String {
    format!("the cluster's failure: resubmitted by on_infrastructure = resubmit ({n} of {limit})")
}

pub(super) fn waiting_in_queue(waiting: Duration, reason: &str) -> String {
    format!("waiting in queue for {}: {reason}", format_duration(waiting))
}

// ---- the on_error policy -------------------------------------------------------------------

pub(super) const POLICY_WAIT_FAILED: &str =
    "the process failed and nobody can decide (unattended, on_error = wait)";
pub(super) const POLICY_KILL: &str = "on_error = kill";

pub(super) fn policy_limit_reached(limit: u32) -> String {
    format!("on_error = restart: limit of {limit} restart(s) reached")
}

pub(super) fn policy_restart(n: u32, limit: u32) -> String {
    format!("on_error = restart ({n} of {limit})")
}

// ---- the Phase 4.5 gate --------------------------------------------------------------------

pub(super) fn no_run_to_fix(job: &JobName) -> String {
    format!("{job} has no run under way to fix")
}

pub(super) fn being_killed(job: &JobName) -> String {
    format!("{job} is being killed")
}

pub(super) const NO_EVIDENCE: &str = "the changes could not be computed from the job's files";

/// A fix whose files are exactly as they were when the run started: most often an editor
/// that has not saved yet.
pub(super) fn nothing_changed(job: &JobName, run: RunId) -> String {
    format!(
        "nothing changed in {job}'s files since run {run} started: was the fix saved? Save it and submit again (/fix submit {job} ...)"
    )
}

pub(super) fn superseded_by_fix(seq: u32) -> String {
    format!("superseded by fix #{seq}")
}

pub(super) fn fix_audit(seq: u32, summary: &str, changed: &[String], reviewed: &Snapshot) -> String {
    let design = if changed.is_empty() {
        "no".to_string()
    } else {
        format!("yes ({})", changed.join(", "))
    };
    format!(
        "fix #{seq}: {summary}; design changed: {design}; {}",
        hashes(reviewed)
    )
}

pub(super) fn fix_needs_validation(seq: u32, job: &JobName, changed: &[String]) -> String {
    format!(
        "fix #{seq} submitted; it changes design parameters ({}): @time_validator must approve it before {job} may resume",
        changed.join(", ")
    )
}

pub(super) fn fix_is_simple(seq: u32, job: &JobName) -> String {
    format!(
        "fix #{seq} submitted: a simple bug fix (no design parameter changed); @director may resume {job} directly"
    )
}

pub(super) fn no_run(job: &JobName) -> String {
    format!("{job} has no run")
}

pub(super) fn fix_superseded(n: u32, job: &JobName) -> String {
    format!("fix #{n} was superseded by a newer fix of {job}")
}

pub(super) fn run_over(job: &JobName, run: RunId) -> String {
    format!("run {run} of {job} is over")
}

pub(super) fn no_fix_awaits(job: &JobName) -> String {
    format!("no fix of {job} awaits validation")
}

pub(super) fn fix_does_not_await(seq: u32, job: &JobName, status: &FixStatus) -> String {
    format!(
        "fix #{seq} of {job} does not await validation ({})",
        fix_status(status)
    )
}

pub(super) fn four_eyes(by: &str, seq: u32) -> String {
    format!("{by} submitted fix #{seq}: someone else must validate it (four eyes)")
}

pub(super) fn code_changed_since_submitted(job: &JobName, seq: u32) -> String {
    format!(
        "the code of {job} changed after fix #{seq} was submitted: submit the fix again so the review covers what will run"
    )
}

pub(super) fn verdict_note(approve: bool, by: &str, at: DateTime<Utc>) -> String {
    let decision = if approve {
        Decision::Approve
    } else {
        Decision::Reject
    };
    decided_note(decision, by, at)
}

pub(super) fn verdict_audit(seq: u32, approve: bool, reason: Option<&str>, reviewed: &Snapshot) -> String {
    let verdict = if approve { "approved" } else { "rejected" };
    let reason = reason.map(|r| format!(" ({r})")).unwrap_or_default();
    format!("fix #{seq} {verdict}{reason}; bound to {}", hashes(reviewed))
}

pub(super) fn gate_awaits_validation(n: u32, job: &JobName, changed: &[&str]) -> String {
    format!(
        "fix #{n} changes design parameters ({}): training may not resume until @time_validator approves it (/validate approve {job})",
        changed.join(", ")
    )
}

pub(super) fn gate_rejected(n: u32, job: &JobName, by: &str, reason: Option<&str>) -> String {
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    format!(
        "fix #{n} was rejected by {by}{why}; full rework required — submit a new fix (/fix submit {job} ...)"
    )
}

pub(super) fn approval_expired(n: u32, at: DateTime<Utc>) -> String {
    format!(
        "the approval of fix #{n} expired at {}; a new review is required (submit the fix again)",
        hhmm(at)
    )
}

pub(super) fn approval_void(n: u32, job: &JobName) -> String {
    format!(
        "the code of {job} changed after fix #{n} was approved: the approval is void; submit the fix again for review"
    )
}

fn fix_status(s: &FixStatus) -> String {
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
fn hashes(s: &Snapshot) -> String {
    let files: Vec<String> = s
        .files
        .iter()
        .map(|(p, h)| format!("{}={}", p.display(), &h[..h.len().min(12)]))
        .collect();
    format!("files [{}]", files.join(", "))
}

// ---- incidents, stalls, the clock ----------------------------------------------------------

pub(super) fn superseded_by_error(seq: u32) -> String {
    format!("superseded by error #{seq}")
}

pub(super) const SUPERSEDED_BY_TIMEOUT: &str = "superseded by the timeout warning";
pub(super) const SUPERSEDED_BY_LIMIT: &str = "superseded by the warning of the scheduler's time limit";

/// A report whose error the run then said it handled (a fallback, a retry) and outlived.
pub(super) const OUTLIVED: &str =
    "the run said it handled this and went on: a note in the final report, no decision needed";

/// A report whose error no longer halts the run: the job's output went on after it while it
/// runs, or, once it ended, something else explains the end (a scheduler's end, another
/// rank's failure). The engine cannot tell the two apart (the detector's last findings come
/// before the exit): the note is true of both.
pub(super) const JUDGED_A_CONSEQUENCE: &str =
    "no longer taken for what stops the run (its output went on after it, or another line explains the end): the final report says what ended it";

pub(super) fn output_resumed(at: DateTime<Utc>) -> String {
    format!("output resumed at {}", hhmm(at))
}

/// What an investigation of a stall is about.
pub(super) fn stall_text(kind: StallKind, since: DateTime<Utc>) -> String {
    let what = match kind {
        StallKind::NoOutput => "the process is alive but has written nothing",
        StallKind::NoProgress => "the process writes but its step counter has not moved",
    };
    format!("{what} since {} (hung?)", hhmm(since))
}

/// How an incident was resolved, by decision (the incident list's "→ …" part).
pub(super) fn resolved_by_decision(decision: Decision) -> Option<&'static str> {
    match decision {
        Decision::Restart => Some("restarted"),
        Decision::Kill => Some("killed"),
        Decision::Continue => Some("monitoring continued"),
        Decision::Investigate | Decision::Approve | Decision::Reject | Decision::Extend => None,
    }
}

/// A restart that resumed with a fix: "fixed by fix #1 'smaller batch' and restarted".
pub(super) fn fixed_and_restarted(seq: u32, summary: &str) -> String {
    format!("fixed by fix #{seq} '{summary}' and restarted")
}

// ---- endings -------------------------------------------------------------------------------

pub(super) const WENT_ON_AND_COMPLETED: &str = "the run went on and completed";
pub(super) const UNRESOLVED_FAILED: &str = "unresolved: the run failed";
pub(super) const WARNING_NOTED: &str = "noted; the run went on";
pub(super) const KILLED: &str = "killed";
pub(super) const COMPLETED: &str = "completed";
pub(super) const SOMEONE: &str = "someone";
pub(super) const ENDED_BEFORE_START: &str = "the job ended before it started";

pub(super) fn run_failed_note(reason: &str) -> String {
    format!("run failed: {reason}")
}

pub(super) fn killed_by(by: &str) -> String {
    format!("killed by {by}")
}

pub(super) fn could_not_start(error: &str) -> String {
    format!("could not start the job: {error}")
}

// ---- button labels -------------------------------------------------------------------------

/// Under an error report or a stall question.
pub(super) const DECISION_BUTTONS: [(Decision, &str); 4] = [
    (Decision::Restart, "Restart"),
    (Decision::Kill, "Kill"),
    (Decision::Continue, "Continue"),
    (Decision::Investigate, "Investigate"),
];

/// Under a timeout warning, in the protocol's words.
pub(super) const TIMEOUT_BUTTONS: [(Decision, &str); 3] = [
    (Decision::Continue, "Continue monitoring"),
    (Decision::Investigate, "Investigate"),
    (Decision::Restart, "Terminate and restart"),
];

/// Under a timeout warning ahead of the scheduler's time limit: the protocol's, and "extend".
pub(super) const LIMIT_BUTTONS: [(Decision, &str); 4] = [
    (Decision::Continue, "Continue monitoring"),
    (Decision::Investigate, "Investigate"),
    (Decision::Restart, "Terminate and restart"),
    (Decision::Extend, "Extend"),
];

/// Under a RE-VALIDATION REQUIRED request.
pub(super) const GATE_BUTTONS: [(Decision, &str); 2] =
    [(Decision::Approve, "Approve"), (Decision::Reject, "Reject")];

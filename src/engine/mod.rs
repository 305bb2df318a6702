//! The engine: the Watch Mode Protocol as a pure state machine per job.
//!
//! # Theory of operation
//!
//! Events come in with the time they happened (a log incident, a process exit, a tick, a
//! command and who sent it); actions come out (post, update, resolve, reply, spawn, kill,
//! record). [`JobMachine::handle`] is the only door. Nothing here does I/O or reads a clock,
//! so every rule below is a deterministic unit test and a 24-hour run simulates in
//! milliseconds. The state ([`JobState`]) is persisted by the caller after every event, so a
//! restarted supervisor resumes exactly where the protocol was.
//!
//! A run goes Starting → Running; from Running to Halted (a fatal error awaits a
//! decision), TimeoutWarned (past the maximum, awaiting a decision), Restarting (old process
//! stopping, new one starting on the same log) or Stopping (a kill under way); it ends
//! Completed, Failed or Killed ([`Phase`]). Each phase carries what is true only in it —
//! the question awaiting a decision (an error report, a timeout warning, a "hung?" question
//! while running), who asked for the restart or kill under way, when the run ended — so
//! at most one question is open at a time by construction, and a state stored by an older
//! trainwatch is upgraded on load (`JobState::from_stored`).
//!
//! The protocol's rules, in its words, and where each is enforced (tests in `tests/<area>.rs`):
//!
//! - **"Start training in background (capture PID)… Entering watch mode."** A start spawns a
//!   fresh log; the start message carries the PID once the executor confirms it.
//!   `decisions::start`, `process::spawned`.
//!   Test: `decisions::start_spawns_fresh_log_and_posts_training_started_with_pid`.
//! - **"Report status every 30 minutes"** — "Elapsed: {time} / ~12h ({percentage}%
//!   complete)", counted over the whole run; missed ticks give one update, not a burst.
//!   `clock::tick`. Tests: `clock::status_updates_every_30_minutes_over_a_24_hour_run`,
//!   `clock::missed_ticks_give_one_status_update_not_a_burst`,
//!   `clock::after_a_restart_the_status_update_shows_the_runs_elapsed_and_the_attempts`.
//! - **"Error detected → Report to @director immediately"**, "Severity: CRITICAL (training
//!   halted)", "Awaiting @director guidance": a fatal incident halts the run and posts one
//!   error report with Restart / Kill / Continue / Investigate; later evidence edits it in
//!   place; a failure the log did not explain is reported from the exit itself
//!   (`exit_incident`). `incidents::report_incident`, `incidents::incident_updated`,
//!   `process::exited`. Tests: `incidents::error_report_halts_mentions_owner_and_offers_four_buttons`,
//!   `incidents::more_traceback_evidence_updates_the_report`,
//!   `incidents::nonzero_exit_without_log_evidence_is_reported_as_an_error`.
//! - **Error categories and their owners** ("@code_translator fixes", "@data_engineer
//!   fixes data", "@modeler consulted"): the report and an investigation address the
//!   category's owner. `decisions::decide` (Investigate). Test:
//!   `decisions::investigate_asks_the_categorys_owner`.
//! - **Only @director decides** (restart, kill, continue, investigate); fixes come from the
//!   code translator, data engineer, modeler or director; only @time_validator approves or
//!   rejects. One check for every command: `machine::authorize`. Tests:
//!   `decisions::start_is_refused_while_a_run_is_active_and_without_the_role`,
//!   `decisions::decisions_are_refused_where_they_make_no_sense`.
//! - **A decision is taken once**: a second click, or a button from an older run, is told
//!   who decided. `decisions::stale_target`, `decisions::close_open`. Tests:
//!   `decisions::a_second_click_is_told_who_already_decided`,
//!   `decisions::a_button_from_an_older_run_is_refused`.
//! - **"Kill current process… Restart training with fixed code… Log file (appending)"**:
//!   restart kills first and spawns only once the old process is gone, appending to the same
//!   log and resuming from a checkpoint. `decisions::restart`, `process::exited`,
//!   `process::spawned`. Test: `decisions::restart_kills_the_old_process_and_appends_to_the_same_log`.
//! - **"IF fix changes design parameters… RE-VALIDATION REQUIRED… Do NOT allow training to
//!   resume until validation complete"**; "REJECT → Full rework required"; "ELSE (fix is
//!   simple bug fix) → Resume training". The CHANGES SUMMARY is computed from the files,
//!   an approval binds to the reviewed hashes (four eyes, expiry), and the gate binds the
//!   unattended policy too. A fix that changes nothing since the run started is refused
//!   and asks whether it was saved. `gate::submit_fix`, `gate::validate`,
//!   `gate::gate_blocks`. Tests: `gate::the_director_cannot_bypass_the_gate`,
//!   `gate::approval_is_void_when_the_code_changes_after_review`,
//!   `gate::rejection_blocks_until_a_new_fix_is_submitted`,
//!   `gate::a_fix_that_changes_nothing_is_refused_and_asks_whether_it_was_saved`.
//! - **"⚠️ TIMEOUT WARNING… Continue monitoring, investigate, or terminate and restart?"**
//!   at the maximum duration, once; "continue" pushes the horizon. An early warning when
//!   the projected finish passes the maximum. `clock::tick`, `clock::progress`,
//!   `decisions::decide` (Continue). Tests:
//!   `clock::timeout_warning_at_max_duration_once_then_awaits_decision`,
//!   `clock::continue_after_timeout_sets_a_new_horizon`,
//!   `clock::the_overrun_warning_goes_out_once_ahead_of_the_timeout`.
//! - **"Terminate and restart (if stuck)"**: a process alive but silent (or with its steps
//!   standing still) is asked about once per stall episode. `clock::stalled`,
//!   `clock::stall_ended`. Test: `clock::a_stall_is_asked_about_once_per_episode_with_the_four_buttons`.
//! - **"No-Exit Guarantee"**: with nobody to decide (unattended), the job's `on_error`
//!   policy decides instead of the run being left waiting. `decisions::apply_policy`. Tests:
//!   `policy::unattended_restart_policy_restarts_up_to_its_limit_then_fails`,
//!   `policy::attended_runs_ignore_the_policy_and_wait_for_a_person`.
//! - **"Completion → Report summary"** with "Errors Encountered and Resolved: {Error} →
//!   {Resolution}", naming the fix a restart resumed with; failed and killed runs report
//!   likewise. `endings`. Tests: `endings::exit_zero_completes_with_outputs_and_errors_resolved`,
//!   `gate::the_completion_report_names_the_fix_that_resolved_an_error`.
//! - **A job a scheduler holds** (Slurm; `scheduler`). While queued its clocks stand still
//!   and status says "waiting in queue for 14m: Priority"; the TIMEOUT WARNING comes
//!   `warn_before` ahead of the scheduler's time limit, once per limit, with "extend"
//!   (`Action::ExtendLimit`); a scheduler's end is reported as the scheduler states it; the
//!   cluster's failures (and requeues) are resubmitted by `on_infrastructure` without a
//!   decision and without counting against `restart_limit`, a bug never is. Tests:
//!   `scheduler::queued_attempt_clocks_stand_still_and_status_says_how_long_and_why`,
//!   `scheduler::the_timeout_warning_comes_ahead_of_the_scheduler_limit_once_with_extend`,
//!   `scheduler::extend_asks_the_scheduler_and_a_new_warning_follows_the_new_limit`,
//!   `scheduler::a_scheduler_end_is_reported_by_the_scheduler_not_by_the_logs_traceback`,
//!   `scheduler::an_infrastructure_end_is_resubmitted_by_itself_without_counting_the_restart_limit`,
//!   `scheduler::a_bug_is_never_resubmitted`.
//!
//! Every sentence the engine writes (replies, notes, audit details) is in `text`; the
//! message bodies are typed data ([`Body`]) that the chat adapters word.

mod clock;
mod decisions;
mod endings;
mod event;
mod gate;
mod incidents;
mod machine;
mod message;
mod process;
mod query;
mod report;
mod scheduler;
mod state;
#[cfg(test)]
mod tests;
mod text;

pub use event::{Action, Command, Event, FixEvidence, Input, Record};
pub use incidents::exit_incident;
pub use machine::{JobMachine, JobSettings, SchedulerPolicy};
pub use message::{
    AttemptTime, Body, Button, Convergence, Decision, DecisionPoint, IncidentSummary, Message, MessageKey,
    OutputFile, Progress, Reply, Resolution, SchedulerNotice, StallKind, StoreNotice,
};
pub use query::UnderWay;
pub use state::{Decided, IncidentEntry, JobState, LimitWarned, Phase, QueueWait, RunState, StallEpisode};

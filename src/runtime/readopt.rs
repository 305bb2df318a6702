//! Re-adoption: what to do about a run that was under way when trainwatch last stopped.
//!
//! [`plan`] is a pure function of what the engine saved (the run's phase, attempt, whether
//! its process was alive) and of what the executor finds in an attempt's state folder (a
//! process still running, one that ended with a known outcome, or nothing). The job's task
//! carries the plan out. Each branch is a unit test below.
//!
//! The cases, by saved phase:
//! - starting or restarting: the new attempt may have started while we were away (adopt it,
//!   running or ended); if not, a restart may still have been killing the old process
//!   (finish the kill, or take its exit); otherwise start the attempt now;
//! - any other phase with a live process: watch it again (killing it if a kill was under
//!   way), or take the exit it made while we were away (unknown if nothing says how);
//! - no live process: nothing to do (the engine already knows it ended).

use crate::engine::{Phase, UnderWay};
use crate::model::{ExitOutcome, ProcessId};

/// What the executor finds for one attempt (`H` is the handle on a running process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found<H> {
    Running(H),
    Ended(ExitOutcome),
    /// No trace of the attempt (never started, or its state is unreadable).
    Nothing,
}

/// What the job's task does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan<H> {
    Nothing,
    /// The new attempt started while we were away and still runs: take it as spawned.
    AdoptStarted {
        attempt: u32,
        handle: H,
    },
    /// The new attempt started and ended while we were away: record both (its PID is not
    /// kept once it has ended).
    StartedAndEnded {
        outcome: ExitOutcome,
    },
    /// Start the attempt now.
    Spawn {
        attempt: u32,
        append: bool,
    },
    /// Watch the running process again; `kill` when a kill (or a restart's kill) was under way.
    Watch {
        handle: H,
        kill: bool,
    },
    /// The process ended while we were away.
    Exited {
        pid: ProcessId,
        outcome: ExitOutcome,
    },
}

/// Decide what to do. `look(attempt)` asks the executor about one attempt of the run; it is
/// called only for the attempts the decision needs.
pub(crate) fn plan<H>(saved: UnderWay, mut look: impl FnMut(u32) -> Found<H>) -> Plan<H> {
    if saved.phase.is_over() {
        return Plan::Nothing;
    }
    let pid = saved.pid.unwrap_or_default();
    match saved.phase {
        Phase::Starting | Phase::Restarting { .. } => {
            let next = saved.attempt + 1;
            match look(next) {
                Found::Running(handle) => Plan::AdoptStarted {
                    attempt: next,
                    handle,
                },
                Found::Ended(outcome) => Plan::StartedAndEnded { outcome },
                Found::Nothing => {
                    let restarting = matches!(saved.phase, Phase::Restarting { .. });
                    // The new process never started: if the old one still runs (a restart
                    // was killing it), finish the kill; otherwise start it now.
                    let old = if restarting && saved.alive {
                        look(saved.attempt)
                    } else {
                        Found::Nothing
                    };
                    match old {
                        Found::Running(handle) => Plan::Watch { handle, kill: true },
                        Found::Ended(outcome) => Plan::Exited { pid, outcome },
                        Found::Nothing => Plan::Spawn {
                            attempt: next,
                            append: restarting,
                        },
                    }
                }
            }
        }
        _ if saved.alive => match look(saved.attempt) {
            Found::Running(handle) => Plan::Watch {
                handle,
                kill: matches!(saved.phase, Phase::Stopping { .. }),
            },
            Found::Ended(outcome) => Plan::Exited { pid, outcome },
            Found::Nothing => Plan::Exited {
                pid,
                outcome: ExitOutcome::Unknown,
            },
        },
        _ => Plan::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::model::RunId;

    /// The attempts a lookup was asked about, in order.
    type Asked = Rc<RefCell<Vec<u32>>>;

    fn saved(phase: Phase, attempt: u32, alive: bool) -> UnderWay {
        UnderWay {
            run: RunId(3),
            phase,
            attempt,
            alive,
            pid: Some(ProcessId::Local(4242)),
        }
    }

    fn restarting() -> Phase {
        Phase::Restarting {
            by: "@dana".into(),
            killed_old: true,
        }
    }

    fn stopping() -> Phase {
        Phase::Stopping { by: "@dana".into() }
    }

    /// A lookup that answers from a table and records which attempts were asked about.
    fn table(answers: Vec<(u32, Found<&'static str>)>) -> (impl FnMut(u32) -> Found<&'static str>, Asked) {
        let asked = Asked::default();
        let log = asked.clone();
        let look = move |a: u32| {
            log.borrow_mut().push(a);
            answers
                .iter()
                .find(|(n, _)| *n == a)
                .map_or(Found::Nothing, |(_, f)| f.clone())
        };
        (look, asked)
    }

    #[test]
    fn a_new_attempt_that_started_while_away_is_adopted() {
        for phase in [Phase::Starting, restarting()] {
            let (look, asked) = table(vec![(2, Found::Running("h2"))]);
            assert_eq!(
                plan(saved(phase, 1, true), look),
                Plan::AdoptStarted {
                    attempt: 2,
                    handle: "h2"
                }
            );
            assert_eq!(*asked.borrow(), [2], "the old attempt is not looked at");
        }
    }

    #[test]
    fn a_new_attempt_that_started_and_ended_while_away_is_recorded_as_both() {
        let (look, _) = table(vec![(1, Found::Ended(ExitOutcome::Code(3)))]);
        assert_eq!(
            plan(saved(Phase::Starting, 0, false), look),
            Plan::StartedAndEnded {
                outcome: ExitOutcome::Code(3)
            }
        );
    }

    #[test]
    fn a_first_attempt_that_never_started_is_started_on_a_fresh_log() {
        let (look, asked) = table(vec![]);
        assert_eq!(
            plan(saved(Phase::Starting, 0, false), look),
            Plan::Spawn {
                attempt: 1,
                append: false
            }
        );
        assert_eq!(*asked.borrow(), [1]);
    }

    #[test]
    fn a_restart_whose_old_process_still_runs_finishes_the_kill() {
        let (look, asked) = table(vec![(1, Found::Running("h1"))]);
        assert_eq!(
            plan(saved(restarting(), 1, true), look),
            Plan::Watch {
                handle: "h1",
                kill: true
            }
        );
        assert_eq!(*asked.borrow(), [2, 1]);
    }

    #[test]
    fn a_restart_whose_old_process_ended_takes_that_exit() {
        let (look, _) = table(vec![(1, Found::Ended(ExitOutcome::Signal(15)))]);
        assert_eq!(
            plan(saved(restarting(), 1, true), look),
            Plan::Exited {
                pid: ProcessId::Local(4242),
                outcome: ExitOutcome::Signal(15)
            }
        );
    }

    #[test]
    fn a_restart_with_neither_process_found_starts_the_new_attempt_appending() {
        // Old process gone without a trace, and (not alive) the old one is not looked at.
        for alive in [true, false] {
            let (look, asked) = table(vec![]);
            assert_eq!(
                plan(saved(restarting(), 1, alive), look),
                Plan::Spawn {
                    attempt: 2,
                    append: true
                }
            );
            let expected: &[u32] = if alive { &[2, 1] } else { &[2] };
            assert_eq!(*asked.borrow(), expected);
        }
    }

    #[test]
    fn a_running_process_is_watched_again() {
        for phase in [
            Phase::RUNNING,
            Phase::Halted { incident: 1 },
            Phase::TimeoutWarned { warning: 1 },
        ] {
            let (look, asked) = table(vec![(2, Found::Running("h"))]);
            assert_eq!(
                plan(saved(phase.clone(), 2, true), look),
                Plan::Watch {
                    handle: "h",
                    kill: false
                },
                "{phase:?}"
            );
            assert_eq!(*asked.borrow(), [2]);
        }
    }

    #[test]
    fn a_kill_under_way_is_finished() {
        let (look, _) = table(vec![(1, Found::Running("h"))]);
        assert_eq!(
            plan(saved(stopping(), 1, true), look),
            Plan::Watch {
                handle: "h",
                kill: true
            }
        );
    }

    #[test]
    fn a_process_that_ended_while_away_is_reported_with_its_outcome() {
        let (look, _) = table(vec![(1, Found::Ended(ExitOutcome::Code(0)))]);
        assert_eq!(
            plan(saved(Phase::RUNNING, 1, true), look),
            Plan::Exited {
                pid: ProcessId::Local(4242),
                outcome: ExitOutcome::Code(0)
            }
        );
    }

    #[test]
    fn a_process_without_a_trace_ended_in_an_unknown_way() {
        let (look, _) = table(vec![]);
        assert_eq!(
            plan(saved(Phase::RUNNING, 1, true), look),
            Plan::Exited {
                pid: ProcessId::Local(4242),
                outcome: ExitOutcome::Unknown
            }
        );
    }

    #[test]
    fn nothing_is_done_without_a_live_process_or_once_the_run_is_over() {
        let at = chrono::Utc::now();
        for phase in [Phase::RUNNING, Phase::Halted { incident: 1 }, stopping()] {
            let (look, asked) = table(vec![(1, Found::Running("h"))]);
            assert_eq!(plan(saved(phase, 1, false), look), Plan::Nothing);
            assert!(asked.borrow().is_empty());
        }
        for phase in [
            Phase::Completed { at },
            Phase::Failed { at },
            Phase::Killed { at },
        ] {
            let (look, asked) = table(vec![(1, Found::Running("h"))]);
            assert_eq!(plan(saved(phase, 1, true), look), Plan::Nothing);
            assert!(asked.borrow().is_empty());
        }
    }
}

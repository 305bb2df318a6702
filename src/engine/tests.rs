//! Protocol rules, one test each, with time passed in as data: a 24-hour run takes
//! milliseconds.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::model::{Actor, Category, ExitOutcome, Incident, JobName, OnError, Persona, RunId, Severity};

const MIN: i64 = 60;
const HOUR: i64 = 3600;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap()
}

fn settings() -> JobSettings {
    JobSettings {
        job: JobName::new("model_3").unwrap(),
        argv: vec!["python".into(), "model_3.py".into()],
        log: PathBuf::from("/runs/output/implementation/logs/training_model_3_full.log"),
        expected: Some(Duration::from_secs(12 * 3600)),
        max: Some(Duration::from_secs(24 * 3600)),
        status_interval: Duration::from_secs(30 * 60),
        on_error: OnError::Wait,
        unattended: false,
        approval_ttl: None,
    }
}

fn director() -> Actor {
    Actor::user("u1", "@dana", vec![Persona::Director])
}

fn translator() -> Actor {
    Actor::user("u2", "@bob", vec![Persona::CodeTranslator])
}

/// A job machine and a clock, with helpers that feed events at `t0 + offset`.
struct Sim {
    m: JobMachine,
}

impl Sim {
    fn new(s: JobSettings) -> Self {
        Self {
            m: JobMachine::new(s),
        }
    }
    fn at(&mut self, secs: i64, event: Event) -> Vec<Action> {
        self.m.handle(Input {
            at: t0() + chrono::Duration::seconds(secs),
            event,
        })
    }
    fn cmd(&mut self, secs: i64, by: Actor, command: Command) -> Vec<Action> {
        self.at(
            secs,
            Event::Command {
                command,
                by,
                code: None,
            },
        )
    }
    fn decide(&mut self, secs: i64, by: Actor, decision: Decision) -> Vec<Action> {
        self.cmd(
            secs,
            by,
            Command::Decide {
                decision,
                target: None,
                extend: None,
            },
        )
    }
    /// Start a run and let the executor report PID `pid`.
    fn started(mut self, pid: u32) -> Self {
        let a = self.cmd(0, director(), Command::Start);
        assert!(a.contains(&Action::Spawn {
            run: RunId(1),
            attempt: 1,
            append: false,
            resume: false
        }));
        self.at(0, spawned(pid));
        self
    }
    fn phase(&self) -> Phase {
        self.m.run().unwrap().phase
    }
}

fn spawned(pid: u32) -> Event {
    Event::Spawned {
        pid,
        checkpoint: None,
        previous_log: None,
    }
}

fn exited(code: i32) -> Event {
    Event::Exited {
        outcome: ExitOutcome::Code(code),
        outputs: vec![OutputFile {
            path: "output/results/results_model_3.csv".into(),
            size: Some(2048),
        }],
    }
}

fn key_error(line: u64) -> Incident {
    Incident {
        category: Category::Implementation,
        severity: Severity::Fatal,
        line,
        text: "AttributeError: 'Model' object has no attribute 'fit_transform'".into(),
        excerpt: vec![
            "Traceback (most recent call last):".into(),
            "  File \"model_3.py\", line 88, in <module>".into(),
            "AttributeError: 'Model' object has no attribute 'fit_transform'".into(),
        ],
        count: 1,
    }
}

fn posts(actions: &[Action]) -> Vec<&Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Post(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn replies(actions: &[Action]) -> Vec<&Reply> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn refused(actions: &[Action]) -> Option<String> {
    replies(actions)
        .into_iter()
        .find(|r| !r.accepted)
        .map(|r| r.text.clone())
}

#[test]
fn start_spawns_fresh_log_and_posts_training_started_with_pid() {
    let mut sim = Sim::new(settings());
    let a = sim.cmd(0, director(), Command::Start);
    assert!(a.contains(&Action::Spawn {
        run: RunId(1),
        attempt: 1,
        append: false,
        resume: false
    }));
    assert_eq!(sim.phase(), Phase::Starting);
    let a = sim.at(1, spawned(4242));
    let p = posts(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].to, vec![Persona::Director]);
    match &p[0].body {
        Body::TrainingStarted { pid, log_file, .. } => {
            assert_eq!(*pid, 4242);
            assert!(log_file.ends_with("training_model_3_full.log"));
        }
        other => panic!("expected TrainingStarted, got {other:?}"),
    }
    assert_eq!(sim.phase(), Phase::Running);
}

#[test]
fn start_is_refused_while_a_run_is_active_and_without_the_role() {
    let mut sim = Sim::new(settings()).started(10);
    let a = sim.cmd(5, director(), Command::Start);
    assert!(refused(&a).unwrap().contains("already running"));
    assert!(!a.iter().any(|x| matches!(x, Action::Spawn { .. })));

    let mut fresh = Sim::new(settings());
    let a = fresh.cmd(0, translator(), Command::Start);
    assert!(refused(&a).unwrap().contains("may not start"));
    assert!(fresh.m.run().is_none());
    // Every refusal is recorded.
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Record(Record::Decision { accepted: false, .. }))));
}

#[test]
fn status_updates_every_30_minutes_over_a_24_hour_run() {
    let mut s = settings();
    s.max = None;
    let mut sim = Sim::new(s).started(10);
    let mut statuses = 0;
    // A tick every minute for 24 hours.
    for minute in 1..=24 * 60 {
        let a = sim.at(minute * MIN, Event::Tick);
        for m in posts(&a) {
            assert!(matches!(m.body, Body::StatusUpdate { .. }));
            assert_eq!(minute % 30, 0, "status posted off-cadence at minute {minute}");
            statuses += 1;
        }
    }
    assert_eq!(statuses, 48);
}

#[test]
fn status_update_shows_elapsed_percent_and_last_line() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(
        100,
        Event::LogActivity {
            last_line: "epoch 3 loss=0.41".into(),
            line_no: 57,
        },
    );
    assert!(posts(&sim.at(29 * MIN, Event::Tick)).is_empty());
    let a = sim.at(3 * HOUR, Event::Tick);
    let p = posts(&a);
    match &p[0].body {
        Body::StatusUpdate {
            elapsed,
            progress,
            last_line,
            open,
            pid,
            ..
        } => {
            assert_eq!(*elapsed, Duration::from_secs(3 * 3600));
            assert_eq!(progress.percent, Some(25.0)); // 3h of an expected 12h
            assert_eq!(last_line.as_deref(), Some("epoch 3 loss=0.41"));
            assert!(open.is_empty());
            assert_eq!(*pid, 10);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missed_ticks_give_one_status_update_not_a_burst() {
    let mut sim = Sim::new(settings()).started(10);
    // trainwatch (or the machine) slept for 5 hours.
    let a = sim.at(5 * HOUR, Event::Tick);
    assert_eq!(posts(&a).len(), 1);
    assert!(posts(&sim.at(5 * HOUR + 10, Event::Tick)).is_empty());
    assert_eq!(posts(&sim.at(5 * HOUR + 30 * MIN, Event::Tick)).len(), 1);
}

#[test]
fn timeout_warning_at_max_duration_once_then_awaits_decision() {
    let mut sim = Sim::new(settings()).started(10);
    let mut warnings = Vec::new();
    for minute in 1..=30 * 60 {
        for m in posts(&sim.at(minute * MIN, Event::Tick)) {
            if let Body::TimeoutWarning { elapsed, max, .. } = &m.body {
                warnings.push(minute);
                assert_eq!(*elapsed, Duration::from_secs(24 * 3600));
                assert_eq!(*max, Duration::from_secs(24 * 3600));
                let labels: Vec<_> = m.buttons.iter().map(|b| b.label.as_str()).collect();
                assert_eq!(
                    labels,
                    ["Continue monitoring", "Investigate", "Terminate and restart"]
                );
                assert_eq!(m.to, vec![Persona::Director]);
            }
        }
    }
    assert_eq!(warnings, vec![24 * 60], "exactly one warning, at the maximum");
    assert_eq!(sim.phase(), Phase::TimeoutWarned);
}

#[test]
fn continue_after_timeout_sets_a_new_horizon() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(24 * HOUR, Event::Tick);
    assert_eq!(sim.phase(), Phase::TimeoutWarned);
    let a = sim.cmd(
        24 * HOUR + 60,
        director(),
        Command::Decide {
            decision: Decision::Continue,
            target: Some((RunId(1), DecisionPoint::Timeout(1))),
            extend: Some(Duration::from_secs(2 * 3600)),
        },
    );
    assert!(refused(&a).is_none());
    assert!(a.iter().any(|x| matches!(x, Action::Resolve { key: MessageKey::Timeout(1), note, .. } if note.starts_with("Monitoring continued by @dana"))));
    assert_eq!(sim.phase(), Phase::Running);
    // No warning before the new horizon, one at it.
    let before: Vec<_> = (1..=119)
        .flat_map(|m| {
            posts(&sim.at(24 * HOUR + 60 + m * MIN, Event::Tick))
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!before
        .iter()
        .any(|m| matches!(m.body, Body::TimeoutWarning { .. })));
    let a = sim.at(26 * HOUR + 60, Event::Tick);
    assert!(posts(&a)
        .iter()
        .any(|m| matches!(m.body, Body::TimeoutWarning { .. }) && m.key == MessageKey::Timeout(2)));
}

#[test]
fn terminate_and_restart_after_timeout_kills_then_respawns_appending() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(24 * HOUR, Event::Tick);
    let a = sim.cmd(
        24 * HOUR + 5,
        director(),
        Command::Decide {
            decision: Decision::Restart,
            target: Some((RunId(1), DecisionPoint::Timeout(1))),
            extend: None,
        },
    );
    assert!(a.contains(&Action::Kill));
    assert_eq!(sim.phase(), Phase::Restarting);
    let a = sim.at(
        24 * HOUR + 8,
        Event::Exited {
            outcome: ExitOutcome::Signal(15),
            outputs: vec![],
        },
    );
    assert!(a.contains(&Action::Spawn {
        run: RunId(1),
        attempt: 2,
        append: true,
        resume: true
    }));
}

#[test]
fn investigate_after_timeout_asks_the_modeler_and_keeps_the_question_open() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(24 * HOUR, Event::Tick);
    let a = sim.decide(24 * HOUR + 5, director(), Decision::Investigate);
    let p = posts(&a);
    assert!(matches!(
        p[0].body,
        Body::Investigate {
            owner: Persona::Modeler,
            ..
        }
    ));
    assert_eq!(sim.phase(), Phase::TimeoutWarned);
}

#[test]
fn exit_zero_completes_with_outputs_and_errors_resolved() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: key_error(120),
        },
    );
    sim.decide(HOUR + 60, director(), Decision::Restart);
    sim.at(
        HOUR + 62,
        Event::Exited {
            outcome: ExitOutcome::Signal(15),
            outputs: vec![],
        },
    );
    sim.at(HOUR + 63, spawned(11));
    let a = sim.at(10 * HOUR, exited(0));
    let p = posts(&a);
    match &p[0].body {
        Body::Completed {
            total,
            outputs,
            errors,
            attempts,
            ..
        } => {
            assert_eq!(*total, Duration::from_secs(10 * 3600));
            assert_eq!(*attempts, 2);
            assert_eq!(outputs[0].size, Some(2048));
            assert_eq!(errors.len(), 1);
            assert!(errors[0].text.starts_with("AttributeError"));
            let r = errors[0].resolution.as_ref().expect("resolved");
            assert_eq!(r.what, "restarted");
            assert_eq!(r.by.as_deref(), Some("@dana"));
        }
        other => panic!("{other:?}"),
    }
    assert!(a.contains(&Action::RunEnded {
        run: RunId(1),
        success: true
    }));
    assert_eq!(sim.phase(), Phase::Completed);
}

#[test]
fn nonzero_exit_without_log_evidence_is_reported_as_an_error() {
    let mut sim = Sim::new(settings()).started(10);
    let a = sim.at(HOUR, exited(3));
    let p = posts(&a);
    match &p[0].body {
        Body::ErrorDetected { incident, exit, .. } => {
            assert!(incident.text.contains("code 3"));
            assert_eq!(*exit, Some(ExitOutcome::Code(3)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.phase(), Phase::Halted);
    assert!(
        !a.iter().any(|x| matches!(x, Action::RunEnded { .. })),
        "a person decides, the run is not over"
    );
}

#[test]
fn sigkill_without_traceback_is_a_resource_error() {
    let mut sim = Sim::new(settings()).started(10);
    let a = sim.at(
        HOUR,
        Event::Exited {
            outcome: ExitOutcome::Signal(9),
            outputs: vec![],
        },
    );
    let p = posts(&a);
    match &p[0].body {
        Body::ErrorDetected { incident, .. } => {
            assert_eq!(incident.category, Category::Resource);
            assert!(incident.text.contains("SIGKILL"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p[0].to, vec![Persona::Director, Persona::CodeTranslator]);
}

#[test]
fn error_report_halts_mentions_owner_and_offers_four_buttons() {
    let mut sim = Sim::new(settings()).started(10);
    let mut inc = key_error(120);
    inc.category = Category::Data;
    let a = sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: inc,
        },
    );
    let p = posts(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].to, vec![Persona::Director, Persona::DataEngineer]);
    let labels: Vec<_> = p[0].buttons.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(labels, ["Restart", "Kill", "Continue", "Investigate"]);
    match &p[0].body {
        Body::ErrorDetected {
            seq, pid, incident, ..
        } => {
            assert_eq!(*seq, 1);
            assert_eq!(*pid, Some(10));
            assert_eq!(incident.line, 120);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.phase(), Phase::Halted);
    // No status updates while halted: the question is open.
    assert!(posts(&sim.at(2 * HOUR, Event::Tick)).is_empty());
}

#[test]
fn the_process_exit_after_an_error_report_updates_it_rather_than_posting_again() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: key_error(120),
        },
    );
    let a = sim.at(HOUR + 1, exited(1));
    assert!(posts(&a).is_empty());
    let updated: Vec<_> = a
        .iter()
        .filter_map(|x| if let Action::Update(m) = x { Some(m) } else { None })
        .collect();
    assert!(matches!(
        updated[0].body,
        Body::ErrorDetected {
            exit: Some(ExitOutcome::Code(1)),
            ..
        }
    ));
}

#[test]
fn more_traceback_evidence_updates_the_report() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(
        HOUR,
        Event::Incident {
            key: 7,
            incident: key_error(120),
        },
    );
    let mut more = key_error(120);
    more.excerpt.push("  (chained) RuntimeError: wrapper".into());
    let a = sim.at(
        HOUR,
        Event::IncidentUpdated {
            key: 7,
            incident: more.clone(),
        },
    );
    assert!(posts(&a).is_empty());
    assert!(a.iter().any(|x| matches!(x, Action::Update(m) if matches!(&m.body, Body::ErrorDetected { incident, .. } if incident.excerpt.len() == 4))));
}

#[test]
fn a_burst_is_one_incident_and_a_second_error_while_halted_is_not_posted() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: key_error(120),
        },
    );
    let mut burst = key_error(120);
    burst.count = 5000;
    let a = sim.at(
        HOUR,
        Event::IncidentUpdated {
            key: 1,
            incident: burst,
        },
    );
    assert!(posts(&a).is_empty());
    let a = sim.at(
        HOUR + 1,
        Event::Incident {
            key: 2,
            incident: key_error(130),
        },
    );
    assert!(posts(&a).is_empty());
    assert_eq!(sim.m.run().unwrap().incidents.len(), 2);
    assert_eq!(sim.m.run().unwrap().incidents[0].incident.count, 5000);
}

#[test]
fn warnings_are_posted_to_the_owner_without_halting() {
    let mut sim = Sim::new(settings()).started(10);
    let warning = Incident {
        category: Category::Convergence,
        severity: Severity::Warning,
        line: 300,
        text: "ConvergenceWarning: lbfgs failed to converge (status=1)".into(),
        excerpt: vec![],
        count: 1,
    };
    let a = sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: warning,
        },
    );
    let p = posts(&a);
    assert!(matches!(p[0].body, Body::WarningNoticed { .. }));
    assert_eq!(p[0].to, vec![Persona::Modeler]);
    assert!(p[0].buttons.is_empty());
    assert_eq!(sim.phase(), Phase::Running);
    // It shows in the next status update as open.
    let a = sim.at(2 * HOUR, Event::Tick);
    assert!(matches!(&posts(&a)[0].body, Body::StatusUpdate { open, .. } if open.len() == 1));
}

#[test]
fn decisions_are_refused_where_they_make_no_sense() {
    // No run at all.
    let mut sim = Sim::new(settings());
    assert!(refused(&sim.decide(0, director(), Decision::Restart))
        .unwrap()
        .contains("no run"));

    // Running normally: nothing to continue or investigate.
    let mut sim = Sim::new(settings()).started(10);
    assert!(refused(&sim.decide(60, director(), Decision::Continue))
        .unwrap()
        .contains("nothing"));
    assert!(refused(&sim.decide(60, director(), Decision::Investigate))
        .unwrap()
        .contains("nothing"));

    // The process has exited: continuing is impossible.
    sim.at(HOUR, exited(1));
    let r = refused(&sim.decide(HOUR + 5, director(), Decision::Continue)).unwrap();
    assert!(r.contains("has ended") && r.contains("restart or kill"), "{r}");

    // Not a director.
    let r = refused(&sim.decide(HOUR + 6, translator(), Decision::Restart)).unwrap();
    assert!(r.contains("director"), "{r}");

    // After the run ended.
    sim.decide(HOUR + 7, director(), Decision::Kill);
    assert_eq!(sim.phase(), Phase::Killed);
    let r = refused(&sim.decide(HOUR + 8, director(), Decision::Restart)).unwrap();
    assert!(r.contains("already killed"), "{r}");
}

#[test]
fn a_second_click_is_told_who_already_decided() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: key_error(120),
        },
    );
    let click = |d| Command::Decide {
        decision: d,
        target: Some((RunId(1), DecisionPoint::Incident(1))),
        extend: None,
    };
    let a = sim.cmd(HOUR + 120, director(), click(Decision::Restart));
    assert!(a.iter().any(|x| matches!(x, Action::Resolve { key: MessageKey::Incident(1), note, .. } if note == "Restarted by @dana at 09:02 UTC")));
    let other = Actor::user("u9", "@max", vec![Persona::Director]);
    let r = refused(&sim.cmd(HOUR + 130, other, click(Decision::Kill))).unwrap();
    assert_eq!(r, "already decided: Restarted by @dana at 09:02 UTC");
}

#[test]
fn a_button_from_an_older_run_is_refused() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(HOUR, exited(0));
    sim.cmd(HOUR + 1, director(), Command::Start);
    sim.at(HOUR + 2, spawned(20));
    let a = sim.cmd(
        HOUR + 3,
        director(),
        Command::Decide {
            decision: Decision::Kill,
            target: Some((RunId(1), DecisionPoint::Incident(1))),
            extend: None,
        },
    );
    assert!(refused(&a).unwrap().contains("run 1"));
    assert_eq!(sim.phase(), Phase::Running);
}

#[test]
fn restart_kills_the_old_process_and_appends_to_the_same_log() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: key_error(120),
        },
    );
    let a = sim.decide(HOUR + 60, director(), Decision::Restart);
    assert!(a.contains(&Action::Kill));
    assert!(
        !a.iter().any(|x| matches!(x, Action::Spawn { .. })),
        "spawn only after the old one is gone"
    );
    let a = sim.at(
        HOUR + 61,
        Event::Exited {
            outcome: ExitOutcome::Signal(15),
            outputs: vec![],
        },
    );
    assert!(a.contains(&Action::Spawn {
        run: RunId(1),
        attempt: 2,
        append: true,
        resume: true
    }));
    let a = sim.at(
        HOUR + 62,
        Event::Spawned {
            pid: 11,
            checkpoint: Some("ckpt/step_400.ckpt".into()),
            previous_log: None,
        },
    );
    match &posts(&a)[0].body {
        Body::Restarting {
            old_pid,
            old_ended,
            new_pid,
            checkpoint,
            decided_by,
            attempt,
            log_file,
        } => {
            assert_eq!(*old_pid, Some(10));
            assert!(!old_ended, "the old process was killed for the restart");
            assert_eq!(*new_pid, 11);
            assert_eq!(
                checkpoint.as_deref(),
                Some(std::path::Path::new("ckpt/step_400.ckpt"))
            );
            assert_eq!(decided_by, "@dana");
            assert_eq!(*attempt, 2);
            assert!(log_file.ends_with("training_model_3_full.log"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.phase(), Phase::Running);
}

#[test]
fn restart_of_an_exited_process_spawns_directly() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(HOUR, exited(1));
    let a = sim.decide(HOUR + 60, director(), Decision::Restart);
    assert!(!a.contains(&Action::Kill));
    assert!(a.contains(&Action::Spawn {
        run: RunId(1),
        attempt: 2,
        append: true,
        resume: true
    }));
    let a = sim.at(HOUR + 61, spawned(11));
    assert!(
        matches!(
            posts(&a)[0].body,
            Body::Restarting {
                old_pid: Some(10),
                old_ended: true,
                ..
            }
        ),
        "the report says the old process had already ended"
    );
}

#[test]
fn kill_decision_stops_the_group_and_reports_killed() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: key_error(120),
        },
    );
    let a = sim.decide(HOUR + 60, director(), Decision::Kill);
    assert!(a.contains(&Action::Kill));
    assert_eq!(sim.phase(), Phase::Stopping);
    let a = sim.at(
        HOUR + 65,
        Event::Exited {
            outcome: ExitOutcome::Signal(15),
            outputs: vec![],
        },
    );
    match &posts(&a)[0].body {
        Body::Killed { by, errors, .. } => {
            assert_eq!(by, "@dana");
            assert_eq!(errors[0].resolution.as_ref().unwrap().what, "killed");
        }
        other => panic!("{other:?}"),
    }
    assert!(a.contains(&Action::RunEnded {
        run: RunId(1),
        success: false
    }));
}

#[test]
fn continue_after_a_caught_error_returns_to_running() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: key_error(120),
        },
    );
    let a = sim.decide(HOUR + 60, director(), Decision::Continue);
    assert!(refused(&a).is_none());
    assert_eq!(sim.phase(), Phase::Running);
    let a = sim.at(9 * HOUR, exited(0));
    match &posts(&a)[0].body {
        Body::Completed { errors, .. } => assert_eq!(
            errors[0].resolution.as_ref().unwrap().what,
            "monitoring continued"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn investigate_asks_the_categorys_owner() {
    for (category, owner) in [
        (Category::Implementation, Persona::CodeTranslator),
        (Category::Resource, Persona::CodeTranslator),
        (Category::Data, Persona::DataEngineer),
        (Category::Convergence, Persona::Modeler),
    ] {
        let mut sim = Sim::new(settings()).started(10);
        let mut inc = key_error(120);
        inc.category = category;
        sim.at(
            HOUR,
            Event::Incident {
                key: 1,
                incident: inc,
            },
        );
        let a = sim.decide(HOUR + 60, director(), Decision::Investigate);
        let p = posts(&a);
        assert_eq!(p[0].to, vec![owner]);
        assert!(matches!(&p[0].body, Body::Investigate { owner: o, incident: Some(_), .. } if *o == owner));
        assert_eq!(
            sim.phase(),
            Phase::Halted,
            "investigating leaves the decision open"
        );
    }
}

#[test]
fn unattended_wait_policy_fails_the_run_when_the_process_dies() {
    let mut s = settings();
    s.unattended = true;
    let mut sim = Sim::new(s).started(10);
    sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: key_error(120),
        },
    );
    assert_eq!(sim.phase(), Phase::Halted);
    let a = sim.at(HOUR + 1, exited(1));
    match &posts(&a)[0].body {
        Body::Failed { exit, errors, .. } => {
            assert_eq!(*exit, Some(ExitOutcome::Code(1)));
            assert_eq!(errors.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(a.contains(&Action::RunEnded {
        run: RunId(1),
        success: false
    }));
}

#[test]
fn unattended_restart_policy_restarts_up_to_its_limit_then_fails() {
    let mut s = settings();
    s.unattended = true;
    s.on_error = OnError::Restart { limit: 2 };
    let mut sim = Sim::new(s).started(10);
    let mut t = 0;
    for pid in [11, 12] {
        t += HOUR;
        let a = sim.at(t, exited(1));
        assert!(a.contains(&Action::Spawn {
            run: RunId(1),
            attempt: pid - 9,
            append: true,
            resume: true
        }));
        let a2 = sim.at(t + 1, spawned(pid));
        match &posts(&a2)[0].body {
            Body::Restarting { decided_by, .. } => assert_eq!(decided_by, "on_error policy"),
            other => panic!("{other:?}"),
        }
    }
    let a = sim.at(t + HOUR, exited(1));
    assert!(!a.iter().any(|x| matches!(x, Action::Spawn { .. })));
    match posts(&a).last().map(|m| &m.body) {
        Some(Body::Failed { reason, errors, .. }) => {
            assert!(reason.contains("limit of 2"), "{reason}");
            assert_eq!(errors.len(), 3);
            assert_eq!(
                errors[0].resolution.as_ref().unwrap().by.as_deref(),
                Some("on_error policy")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unattended_kill_policy_kills_on_the_first_error() {
    let mut s = settings();
    s.unattended = true;
    s.on_error = OnError::Kill;
    let mut sim = Sim::new(s).started(10);
    let a = sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: key_error(120),
        },
    );
    assert!(a.contains(&Action::Kill));
    let a = sim.at(
        HOUR + 1,
        Event::Exited {
            outcome: ExitOutcome::Signal(15),
            outputs: vec![],
        },
    );
    assert!(matches!(posts(&a)[0].body, Body::Killed { .. }));
}

#[test]
fn attended_runs_ignore_the_policy_and_wait_for_a_person() {
    let mut s = settings();
    s.on_error = OnError::Restart { limit: 3 };
    let mut sim = Sim::new(s).started(10);
    let a = sim.at(HOUR, exited(1));
    assert!(!a.iter().any(|x| matches!(x, Action::Spawn { .. })));
    assert_eq!(sim.phase(), Phase::Halted);
}

#[test]
fn spawn_failure_fails_the_run_with_the_reason() {
    let mut sim = Sim::new(settings());
    sim.cmd(0, director(), Command::Start);
    let a = sim.at(
        1,
        Event::SpawnFailed {
            error: "python: not found".into(),
        },
    );
    match &posts(&a)[0].body {
        Body::Failed { reason, .. } => assert!(reason.contains("python: not found")),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.phase(), Phase::Failed);
}

#[test]
fn state_survives_a_round_trip_through_the_store_format() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: key_error(120),
        },
    );
    let json = serde_json::to_string(&sim.m.state).unwrap();
    let restored: JobState = serde_json::from_str(&json).unwrap();
    let mut again = Sim {
        m: JobMachine::restore(settings(), restored),
    };
    assert_eq!(again.phase(), Phase::Halted);
    let a = again.decide(HOUR + 60, director(), Decision::Restart);
    assert!(a.contains(&Action::Kill));
    // The run number continues too.
    again.at(HOUR + 61, exited(0));
    again.at(HOUR + 62, spawned(11));
    again.at(2 * HOUR, exited(0));
    let a = again.cmd(3 * HOUR, director(), Command::Start);
    assert!(a.iter().any(|x| matches!(x, Action::Spawn { run: RunId(2), .. })));
}

#[test]
fn next_deadline_is_the_earlier_of_status_and_timeout() {
    let mut s = settings();
    s.max = Some(Duration::from_secs(20 * 60));
    let sim = Sim::new(s).started(10);
    assert_eq!(sim.m.next_deadline(), Some(t0() + chrono::Duration::minutes(20)));
}

// ---- the Phase 4.5 re-validation gate ------------------------------------------------------

mod gate {
    use std::collections::BTreeMap;

    use super::*;
    use crate::review::{
        ChangesSummary, Comparison, ComparisonRow, ParamChange, ParamValue, Snapshot, Verdict,
    };

    fn code(files: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            taken_at: t0(),
            files: files
                .iter()
                .map(|(p, h)| (PathBuf::from(p), h.to_string()))
                .collect(),
            params: BTreeMap::new(),
            git: None,
        }
    }

    fn evidence(design_changed: bool, reviewed: Snapshot) -> Option<Box<FixEvidence>> {
        let params_changed = if design_changed {
            vec![ParamChange {
                name: "draws".into(),
                before: Ok(ParamValue::Number(2000.0)),
                after: Ok(ParamValue::Number(1000.0)),
            }]
        } else {
            vec![]
        };
        Some(Box::new(FixEvidence {
            changes: ChangesSummary {
                files_modified: vec![],
                params_changed,
                algorithm_changed: false,
                features_added: vec![],
                features_removed: vec![],
                design_changed,
                compliance: if design_changed {
                    "1 of 2 within tolerance".into()
                } else {
                    "unchanged".into()
                },
            },
            comparison: Comparison {
                rows: vec![ComparisonRow {
                    name: "draws".into(),
                    design: "2000".into(),
                    actual: "1000".into(),
                    tolerance: "±10%".into(),
                    verdict: Verdict::Outside,
                }],
                score: 0.5,
            },
            reviewed,
        }))
    }

    fn validator() -> Actor {
        Actor::user("u7", "@vera", vec![Persona::TimeValidator])
    }

    /// A halted run with fix #1 submitted by @bob (design changed or not).
    fn halted_with_fix(design_changed: bool) -> Sim {
        let mut sim = Sim::new(settings()).started(10);
        sim.at(
            HOUR,
            Event::Incident {
                key: 1,
                incident: key_error(120),
            },
        );
        let a = sim.cmd(
            HOUR + 600,
            translator(),
            Command::SubmitFix {
                summary: "use fit() not fit_transform()".into(),
                evidence: evidence(design_changed, code(&[("model_3.py", "aaa")])),
            },
        );
        assert!(refused(&a).is_none(), "{a:?}");
        sim
    }

    fn with_code(
        sim: &mut Sim,
        secs: i64,
        by: Actor,
        command: Command,
        files: &[(&str, &str)],
    ) -> Vec<Action> {
        sim.at(
            secs,
            Event::Command {
                command,
                by,
                code: Some(code(files)),
            },
        )
    }

    fn restart() -> Command {
        Command::Decide {
            decision: Decision::Restart,
            target: None,
            extend: None,
        }
    }

    #[test]
    fn a_design_change_posts_the_gate_to_the_validator_with_buttons() {
        let mut sim = Sim::new(settings()).started(10);
        sim.at(
            HOUR,
            Event::Incident {
                key: 1,
                incident: key_error(120),
            },
        );
        let a = sim.cmd(
            HOUR + 600,
            translator(),
            Command::SubmitFix {
                summary: "fewer draws".into(),
                evidence: evidence(true, code(&[("model_3.py", "aaa")])),
            },
        );
        let p = posts(&a);
        assert!(matches!(p[0].body, Body::FixSubmitted { seq: 1, .. }));
        assert_eq!(p[1].to, vec![Persona::TimeValidator]);
        match &p[1].body {
            Body::RevalidationRequired {
                comparison, changes, ..
            } => {
                assert_eq!(comparison.score, 0.5);
                assert_eq!(changes.params_changed[0].name, "draws");
            }
            other => panic!("{other:?}"),
        }
        let labels: Vec<_> = p[1].buttons.iter().map(|b| (b.label.as_str(), b.point)).collect();
        assert_eq!(
            labels,
            [
                ("Approve", DecisionPoint::Fix(1)),
                ("Reject", DecisionPoint::Fix(1))
            ]
        );
        assert!(replies(&a)[0].text.contains("@time_validator must approve"));
    }

    #[test]
    fn the_director_cannot_bypass_the_gate() {
        let mut sim = halted_with_fix(true);
        let a = with_code(
            &mut sim,
            HOUR + 700,
            director(),
            restart(),
            &[("model_3.py", "aaa")],
        );
        let r = refused(&a).expect("refused");
        assert!(r.contains("until @time_validator approves"), "{r}");
        assert!(!a.contains(&Action::Kill));
        assert_eq!(sim.phase(), Phase::Halted);
        // Nor can the unattended policy.
        let mut s = settings();
        s.unattended = true;
        s.on_error = OnError::Restart { limit: 3 };
        let mut sim = Sim::new(s).started(10);
        sim.at(
            HOUR,
            Event::Incident {
                key: 1,
                incident: key_error(1),
            },
        );
        sim.at(HOUR + 1, exited(1));
        // (the policy restarted once; a design-changing fix now blocks the next restart)
        sim.at(HOUR + 2, spawned(11));
        sim.cmd(
            HOUR + 3,
            translator(),
            Command::SubmitFix {
                summary: "x".into(),
                evidence: evidence(true, code(&[])),
            },
        );
        let a = sim.at(HOUR + 4, exited(1));
        assert!(!a.iter().any(|x| matches!(x, Action::Spawn { .. })));
        assert!(matches!(posts(&a).last().unwrap().body, Body::Failed { .. }));
    }

    #[test]
    fn approval_lets_the_director_resume() {
        let mut sim = halted_with_fix(true);
        let a = with_code(
            &mut sim,
            HOUR + 800,
            validator(),
            Command::Validate {
                approve: true,
                reason: None,
            },
            &[("model_3.py", "aaa")],
        );
        assert!(refused(&a).is_none(), "{a:?}");
        assert!(a.iter().any(|x| matches!(x, Action::Resolve { key: MessageKey::Gate(1), note, .. } if note.starts_with("Approved by @vera"))));
        assert!(posts(&a).iter().any(
            |m| matches!(m.body, Body::ValidationDecided { approved: true, .. })
                && m.to == vec![Persona::Director]
        ));
        let a = with_code(
            &mut sim,
            HOUR + 900,
            director(),
            restart(),
            &[("model_3.py", "aaa")],
        );
        assert!(refused(&a).is_none(), "{a:?}");
        assert!(a.contains(&Action::Kill));
    }

    #[test]
    fn approval_is_void_when_the_code_changes_after_review() {
        let mut sim = halted_with_fix(true);
        with_code(
            &mut sim,
            HOUR + 800,
            validator(),
            Command::Validate {
                approve: true,
                reason: None,
            },
            &[("model_3.py", "aaa")],
        );
        let a = with_code(
            &mut sim,
            HOUR + 900,
            director(),
            restart(),
            &[("model_3.py", "bbb")],
        );
        let r = refused(&a).expect("refused");
        assert!(r.contains("changed after fix #1 was approved"), "{r}");
        // Validating code that changed after submission is refused too.
        let mut sim = halted_with_fix(true);
        let a = with_code(
            &mut sim,
            HOUR + 800,
            validator(),
            Command::Validate {
                approve: true,
                reason: None,
            },
            &[("model_3.py", "ccc")],
        );
        assert!(refused(&a)
            .unwrap()
            .contains("changed after fix #1 was submitted"));
    }

    #[test]
    fn self_approval_is_refused_whatever_roles_the_submitter_holds() {
        let mut sim = halted_with_fix(true);
        let bob_with_all_roles = Actor::user("u2", "@bob", Persona::ALL.to_vec());
        let a = with_code(
            &mut sim,
            HOUR + 800,
            bob_with_all_roles,
            Command::Validate {
                approve: true,
                reason: None,
            },
            &[("model_3.py", "aaa")],
        );
        assert!(refused(&a).unwrap().contains("four eyes"));
        // And someone without the validator role cannot decide at all.
        let a = with_code(
            &mut sim,
            HOUR + 801,
            director(),
            Command::Validate {
                approve: true,
                reason: None,
            },
            &[("model_3.py", "aaa")],
        );
        assert!(refused(&a).unwrap().contains("time_validator role"));
    }

    #[test]
    fn rejection_blocks_until_a_new_fix_is_submitted() {
        let mut sim = halted_with_fix(true);
        let a = with_code(
            &mut sim,
            HOUR + 800,
            validator(),
            Command::Validate {
                approve: false,
                reason: Some("draws below the design's 2000".into()),
            },
            &[("model_3.py", "aaa")],
        );
        let p = posts(&a);
        assert_eq!(p[0].to, vec![Persona::CodeTranslator]);
        assert!(
            matches!(&p[0].body, Body::ValidationDecided { approved: false, reason: Some(r), .. } if r.contains("2000"))
        );
        let r = refused(&with_code(
            &mut sim,
            HOUR + 900,
            director(),
            restart(),
            &[("model_3.py", "aaa")],
        ))
        .unwrap();
        assert!(
            r.contains("rejected by @vera") && r.contains("full rework"),
            "{r}"
        );
        // A new fix that keeps the design: a simple bug fix, the director may resume.
        let a = sim.cmd(
            HOUR + 1000,
            translator(),
            Command::SubmitFix {
                summary: "redo".into(),
                evidence: evidence(false, code(&[("model_3.py", "ddd")])),
            },
        );
        assert!(replies(&a)[0].text.contains("simple bug fix"));
        let a = with_code(
            &mut sim,
            HOUR + 1100,
            director(),
            restart(),
            &[("model_3.py", "ddd")],
        );
        assert!(refused(&a).is_none(), "{a:?}");
    }

    #[test]
    fn a_simple_bug_fix_needs_no_validation() {
        let mut sim = halted_with_fix(false);
        let a = with_code(
            &mut sim,
            HOUR + 700,
            director(),
            restart(),
            &[("model_3.py", "zzz")],
        );
        assert!(refused(&a).is_none(), "{a:?}");
    }

    #[test]
    fn an_expired_approval_requires_a_new_review() {
        let mut s = settings();
        s.approval_ttl = Some(Duration::from_secs(3600));
        let mut sim = Sim::new(s).started(10);
        sim.at(
            HOUR,
            Event::Incident {
                key: 1,
                incident: key_error(120),
            },
        );
        sim.cmd(
            HOUR + 60,
            translator(),
            Command::SubmitFix {
                summary: "x".into(),
                evidence: evidence(true, code(&[("m.py", "a")])),
            },
        );
        let a = with_code(
            &mut sim,
            HOUR + 120,
            validator(),
            Command::Validate {
                approve: true,
                reason: None,
            },
            &[("m.py", "a")],
        );
        assert!(matches!(
            posts(&a)[0].body,
            Body::ValidationDecided { expires: Some(_), .. }
        ));
        let r = refused(&with_code(
            &mut sim,
            3 * HOUR,
            director(),
            restart(),
            &[("m.py", "a")],
        ))
        .unwrap();
        assert!(r.contains("expired"), "{r}");
        // Within the hour it would have been fine.
        let mut s = settings();
        s.approval_ttl = Some(Duration::from_secs(3600));
        let mut sim = Sim::new(s).started(10);
        sim.at(
            HOUR,
            Event::Incident {
                key: 1,
                incident: key_error(120),
            },
        );
        sim.cmd(
            HOUR + 60,
            translator(),
            Command::SubmitFix {
                summary: "x".into(),
                evidence: evidence(true, code(&[("m.py", "a")])),
            },
        );
        with_code(
            &mut sim,
            HOUR + 120,
            validator(),
            Command::Validate {
                approve: true,
                reason: None,
            },
            &[("m.py", "a")],
        );
        assert!(refused(&with_code(
            &mut sim,
            HOUR + 1800,
            director(),
            restart(),
            &[("m.py", "a")]
        ))
        .is_none());
    }

    #[test]
    fn approve_button_twice_says_who_decided_and_old_fix_buttons_are_refused() {
        let mut sim = halted_with_fix(true);
        let click = |d| Command::Decide {
            decision: d,
            target: Some((RunId(1), DecisionPoint::Fix(1))),
            extend: None,
        };
        let a = with_code(
            &mut sim,
            HOUR + 800,
            validator(),
            click(Decision::Approve),
            &[("model_3.py", "aaa")],
        );
        assert!(refused(&a).is_none(), "{a:?}");
        let other = Actor::user("u8", "@val2", vec![Persona::TimeValidator]);
        let r = refused(&with_code(
            &mut sim,
            HOUR + 801,
            other.clone(),
            click(Decision::Reject),
            &[("model_3.py", "aaa")],
        ))
        .unwrap();
        assert!(r.starts_with("already decided: Approved by @vera"), "{r}");
        // A second fix supersedes the first; its buttons no longer count.
        let mut sim = halted_with_fix(true);
        sim.cmd(
            HOUR + 900,
            translator(),
            Command::SubmitFix {
                summary: "v2".into(),
                evidence: evidence(true, code(&[("model_3.py", "eee")])),
            },
        );
        let r = refused(&with_code(
            &mut sim,
            HOUR + 901,
            other,
            click(Decision::Approve),
            &[("model_3.py", "eee")],
        ))
        .unwrap();
        assert!(r.contains("superseded"), "{r}");
    }

    #[test]
    fn fix_submissions_and_verdicts_are_audited_with_hashes() {
        let mut sim = halted_with_fix(true);
        let a = with_code(
            &mut sim,
            HOUR + 800,
            validator(),
            Command::Validate {
                approve: true,
                reason: None,
            },
            &[("model_3.py", "aaa")],
        );
        let audited: Vec<_> = a
            .iter()
            .filter_map(|x| match x {
                Action::Record(Record::Decision {
                    decision,
                    detail,
                    by,
                    accepted,
                    ..
                }) => Some((decision.clone(), detail.clone(), by.display.clone(), *accepted)),
                _ => None,
            })
            .collect();
        assert_eq!(audited.len(), 1);
        assert_eq!(audited[0].0, "approve");
        assert!(audited[0].1.contains("model_3.py=aaa"), "{:?}", audited[0]);
        assert_eq!(audited[0].2, "@vera");
    }
}

// ---- progress, stalls and the early overrun warning --------------------------------------

mod progress_and_stalls {
    use super::*;

    fn stalled(since_secs: i64) -> Event {
        Event::Stalled {
            since: t0() + chrono::Duration::seconds(since_secs),
            kind: StallKind::NoOutput,
            last_line: Some("epoch 3 step 1200 loss=0.41".into()),
        }
    }

    fn progress(step: u64, total: u64, overrun: Option<Duration>) -> Event {
        Event::Progress {
            progress: Progress {
                percent: Some(step as f64 / total as f64 * 100.0),
                step: Some(step),
                total: Some(total),
                rate_per_sec: Some(0.5),
                eta: Some(Duration::from_secs((total - step) * 2)),
                metrics: vec![("loss".into(), 0.41), ("lr".into(), 1e-4)],
                overrun,
                ..Progress::default()
            },
            convergence: None,
        }
    }

    fn stall_key(actions: &[Action]) -> Option<u32> {
        posts(actions).iter().find_map(|m| match (&m.body, m.key) {
            (Body::StallWarning { .. }, MessageKey::Stall(n)) => Some(n),
            _ => None,
        })
    }

    #[test]
    fn a_stall_is_asked_about_once_per_episode_with_the_four_buttons() {
        let mut s = Sim::new(settings()).started(4242);
        let a = s.at(20 * MIN, stalled(5 * MIN));
        let msg = posts(&a)[0];
        assert_eq!(msg.key, MessageKey::Stall(1));
        assert_eq!(msg.to, vec![Persona::Director]);
        match &msg.body {
            Body::StallWarning {
                pid,
                stall,
                stalled_for,
                last_line,
                ..
            } => {
                assert_eq!(*pid, 4242);
                assert_eq!(*stall, StallKind::NoOutput);
                assert_eq!(*stalled_for, Duration::from_secs(15 * 60));
                assert_eq!(last_line.as_deref(), Some("epoch 3 step 1200 loss=0.41"));
            }
            other => panic!("expected a stall warning, got {other:?}"),
        }
        let decisions: Vec<Decision> = msg.buttons.iter().map(|b| b.decision).collect();
        assert_eq!(
            decisions,
            [
                Decision::Restart,
                Decision::Kill,
                Decision::Continue,
                Decision::Investigate
            ]
        );
        assert!(msg.buttons.iter().all(|b| b.point == DecisionPoint::Stall(1)));
        // The same stall, checked again and again: no second warning.
        for k in 1..5 {
            assert!(s.at(20 * MIN + k * 10, stalled(5 * MIN)).is_empty());
        }
        // Output resumes: the question is closed; a later stall is a new episode.
        let a = s.at(30 * MIN, Event::StallEnded);
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Resolve { key: MessageKey::Stall(1), note, .. } if note.contains("resumed")
        )));
        assert_eq!(s.m.run().unwrap().open, None);
        let a = s.at(60 * MIN, stalled(40 * MIN));
        assert_eq!(stall_key(&a), Some(2));
    }

    #[test]
    fn continue_on_a_stall_keeps_watching_without_asking_again_in_the_same_episode() {
        let mut s = Sim::new(settings()).started(7);
        s.at(20 * MIN, stalled(5 * MIN));
        let a = s.cmd(
            21 * MIN,
            director(),
            Command::Decide {
                decision: Decision::Continue,
                target: Some((RunId(1), DecisionPoint::Stall(1))),
                extend: None,
            },
        );
        assert_eq!(refused(&a), None);
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Resolve {
                key: MessageKey::Stall(1),
                ..
            }
        )));
        assert_eq!(s.phase(), Phase::Running);
        assert!(s.at(25 * MIN, stalled(5 * MIN)).is_empty());
        // A second click on the same button is told who decided.
        let a = s.cmd(
            26 * MIN,
            director(),
            Command::Decide {
                decision: Decision::Kill,
                target: Some((RunId(1), DecisionPoint::Stall(1))),
                extend: None,
            },
        );
        assert!(refused(&a).unwrap().contains("already decided"));
    }

    #[test]
    fn restart_and_investigate_work_on_a_stall() {
        let mut s = Sim::new(settings()).started(7);
        s.at(20 * MIN, stalled(5 * MIN));
        let a = s.decide(21 * MIN, director(), Decision::Investigate);
        assert_eq!(refused(&a), None);
        let inv = posts(&a)[0];
        match &inv.body {
            Body::Investigate {
                owner,
                incident: Some(i),
                ..
            } => {
                assert_eq!(*owner, Persona::CodeTranslator);
                assert!(i.text.contains("hung?"), "{}", i.text);
            }
            other => panic!("expected an investigation request, got {other:?}"),
        }
        // The question stays open for the director.
        let a = s.decide(22 * MIN, director(), Decision::Restart);
        assert_eq!(refused(&a), None);
        assert!(a.contains(&Action::Kill));
        s.at(22 * MIN, exited(143));
        s.at(22 * MIN, spawned(8));
        let run = s.m.run().unwrap();
        assert_eq!((run.phase, run.stall, run.open), (Phase::Running, None, None));
    }

    #[test]
    fn no_stall_question_while_another_decision_is_pending_or_the_run_is_not_running() {
        let mut s = Sim::new(settings()).started(7);
        s.at(
            10 * MIN,
            Event::Incident {
                key: 1,
                incident: key_error(12),
            },
        );
        assert_eq!(s.phase(), Phase::Halted);
        assert!(s.at(20 * MIN, stalled(5 * MIN)).is_empty());
        let mut s = Sim::new(settings());
        s.cmd(0, director(), Command::Start);
        assert!(s.at(20 * MIN, stalled(0)).is_empty(), "not spawned yet");
    }

    #[test]
    fn an_error_supersedes_an_open_stall_question() {
        let mut s = Sim::new(settings()).started(7);
        s.at(20 * MIN, stalled(5 * MIN));
        let a = s.at(
            21 * MIN,
            Event::Incident {
                key: 1,
                incident: key_error(40),
            },
        );
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Resolve { key: MessageKey::Stall(1), note, .. } if note.contains("superseded")
        )));
        assert_eq!(s.m.run().unwrap().open, Some(DecisionPoint::Incident(1)));
    }

    #[test]
    fn the_overrun_warning_goes_out_once_ahead_of_the_timeout() {
        let mut s = Sim::new(settings()).started(7);
        // On pace: nothing.
        assert!(s.at(HOUR, progress(100, 1000, None)).is_empty());
        let over = Duration::from_secs(3 * 3600);
        let a = s.at(2 * HOUR, progress(150, 1000, Some(over)));
        let msg = posts(&a)[0];
        assert_eq!(msg.key, MessageKey::Overrun);
        assert_eq!(msg.to, vec![Persona::Director]);
        match &msg.body {
            Body::OverrunWarning {
                projected_total,
                max,
                elapsed,
                ..
            } => {
                assert_eq!(*max, Duration::from_secs(24 * 3600));
                assert_eq!(*projected_total, Duration::from_secs(27 * 3600));
                assert_eq!(*elapsed, Duration::from_secs(2 * 3600));
            }
            other => panic!("expected an overrun warning, got {other:?}"),
        }
        // Later updates still project an overrun: no second warning, not at each status update.
        for h in 3..10 {
            let a = s.at(h * HOUR, progress(150 + h as u64, 1000, Some(over)));
            assert!(posts(&a).iter().all(|m| m.key != MessageKey::Overrun));
            let a = s.at(h * HOUR + 1, Event::Tick);
            assert!(posts(&a).iter().all(|m| m.key != MessageKey::Overrun));
        }
    }

    #[test]
    fn no_overrun_warning_once_past_the_maximum() {
        let mut s = Sim::new(settings()).started(7);
        s.at(24 * HOUR, Event::Tick);
        assert_eq!(s.phase(), Phase::TimeoutWarned);
        let a = s.at(24 * HOUR + 5, progress(900, 1000, Some(Duration::from_secs(600))));
        assert!(posts(&a).is_empty());
    }

    #[test]
    fn the_status_update_carries_step_rate_eta_and_metrics() {
        let mut s = Sim::new(settings()).started(7);
        s.at(10 * MIN, progress(300, 1000, None));
        let a = s.at(30 * MIN, Event::Tick);
        let msg = posts(&a)[0];
        match &msg.body {
            Body::StatusUpdate { progress, .. } => {
                assert_eq!((progress.step, progress.total), (Some(300), Some(1000)));
                assert_eq!(progress.percent, Some(30.0));
                assert_eq!(progress.rate_per_sec, Some(0.5));
                assert_eq!(progress.eta, Some(Duration::from_secs(1400)));
                assert_eq!(progress.metrics[0], ("loss".to_string(), 0.41));
            }
            other => panic!("expected a status update, got {other:?}"),
        }
        assert!(msg.attachments.is_empty(), "the engine attaches nothing");
    }

    #[test]
    fn an_error_logged_before_the_start_is_confirmed_is_reported_after_it() {
        let mut s = Sim::new(settings());
        s.cmd(0, director(), Command::Start);
        // The process wrote its NaN loss before the executor reported its PID.
        let nan = Incident {
            category: Category::Convergence,
            severity: Severity::Fatal,
            line: 49,
            text: "loss is nan (not a finite number)".into(),
            excerpt: vec!["{'loss': nan}".into()],
            count: 1,
        };
        assert!(posts(&s.at(
            1,
            Event::Incident {
                key: 9,
                incident: nan
            }
        ))
        .is_empty());
        let a = s.at(2, spawned(11));
        let keys: Vec<MessageKey> = posts(&a).iter().map(|m| m.key).collect();
        assert_eq!(keys, [MessageKey::Started, MessageKey::Incident(1)]);
        assert_eq!(s.phase(), Phase::Halted);
        assert_eq!(s.m.run().unwrap().incidents[0].attempt, 1);
    }

    #[test]
    fn the_status_command_tells_the_step_and_a_stall() {
        let mut s = Sim::new(settings()).started(7);
        s.at(10 * MIN, progress(300, 1000, None));
        s.at(20 * MIN, stalled(12 * MIN));
        let a = s.cmd(21 * MIN, director(), Command::Status);
        let text = &replies(&a)[0].text;
        assert!(text.contains("step 300/1000 (30.0%)"), "{text}");
        assert!(text.contains("looks hung"), "{text}");
    }

    #[test]
    fn stored_messages_without_attachments_still_load() {
        let mut s = Sim::new(settings()).started(7);
        let a = s.at(30 * MIN, Event::Tick);
        let mut v = serde_json::to_value(posts(&a)[0]).unwrap();
        v.as_object_mut().unwrap().remove("attachments");
        let back: Message = serde_json::from_value(v).unwrap();
        assert!(back.attachments.is_empty());
        // And a run state stored before stalls existed.
        let mut state = serde_json::to_value(&s.m.state).unwrap();
        let run = state["run"].as_object_mut().unwrap();
        for k in ["stall_count", "stall", "overrun_warned"] {
            run.remove(k);
        }
        let back: JobState = serde_json::from_value(state).unwrap();
        assert_eq!(back.run.unwrap().stall_count, 0);
    }
}

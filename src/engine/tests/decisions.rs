//! Commands and decisions: start, who may decide what, restart, kill, continue, investigate.

use super::*;
use crate::model::ProcessId;

#[test]
fn start_spawns_fresh_log_and_posts_training_started_with_pid() {
    let mut sim = Sim::new(settings());
    let a = sim.cmd(0, director(), Command::Start);
    assert!(a.contains(&first_spawn()));
    assert_phase!(sim, Phase::Starting);
    let a = sim.at(1, spawned(4242));
    let p = posts(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].to, vec![Persona::Director]);
    match &p[0].body {
        Body::TrainingStarted { pid, log_file, .. } => {
            assert_eq!(*pid, ProcessId::Local(4242));
            assert!(log_file.ends_with("training_model_3_full.log"));
        }
        other => panic!("expected TrainingStarted, got {other:?}"),
    }
    assert_phase!(sim, Phase::Running { stall: None });
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
    assert_phase!(sim, Phase::Killed { .. });
    let r = refused(&sim.decide(HOUR + 8, director(), Decision::Restart)).unwrap();
    assert!(r.contains("already killed"), "{r}");
}

#[test]
fn a_second_click_is_told_who_already_decided() {
    let mut sim = Sim::new(settings()).started(10).halted(HOUR);
    let a = sim.click(
        HOUR + 120,
        director(),
        Decision::Restart,
        DecisionPoint::Incident(1),
    );
    assert!(a.iter().any(|x| matches!(x, Action::Resolve { key: MessageKey::Incident(1), note, .. } if note == "Restarted by @dana at 09:02 UTC")));
    let other = Actor::user("u9", "@max", vec![Persona::Director]);
    let r = refused(&sim.click(HOUR + 130, other, Decision::Kill, DecisionPoint::Incident(1))).unwrap();
    assert_eq!(r, "already decided: Restarted by @dana at 09:02 UTC");
}

#[test]
fn a_button_from_an_older_run_is_refused() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(HOUR, exited(0));
    sim.cmd(HOUR + 1, director(), Command::Start);
    sim.at(HOUR + 2, spawned(20));
    let a = sim.click(HOUR + 3, director(), Decision::Kill, DecisionPoint::Incident(1));
    assert!(refused(&a).unwrap().contains("run 1"));
    assert_phase!(sim, Phase::Running { stall: None });
}

#[test]
fn restart_kills_the_old_process_and_appends_to_the_same_log() {
    let mut sim = Sim::new(settings()).started(10).halted(HOUR);
    let a = sim.decide(HOUR + 60, director(), Decision::Restart);
    assert!(a.contains(&Action::Kill));
    assert!(
        !a.iter().any(|x| matches!(x, Action::Spawn { .. })),
        "spawn only after the old one is gone"
    );
    let a = sim.at(HOUR + 61, signalled(15));
    assert!(a.contains(&respawn(2)));
    let a = sim.at(
        HOUR + 62,
        Event::Spawned {
            pid: ProcessId::Local(11),
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
            assert_eq!(*old_pid, Some(ProcessId::Local(10)));
            assert!(!old_ended, "the old process was killed for the restart");
            assert_eq!(*new_pid, ProcessId::Local(11));
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
    assert_phase!(sim, Phase::Running { stall: None });
}

#[test]
fn restart_of_an_exited_process_spawns_directly() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(HOUR, exited(1));
    let a = sim.decide(HOUR + 60, director(), Decision::Restart);
    assert!(!a.contains(&Action::Kill));
    assert!(a.contains(&respawn(2)));
    let a = sim.at(HOUR + 61, spawned(11));
    assert!(
        matches!(
            posts(&a)[0].body,
            Body::Restarting {
                old_pid: Some(ProcessId::Local(10)),
                old_ended: true,
                ..
            }
        ),
        "the report says the old process had already ended"
    );
}

#[test]
fn kill_decision_stops_the_group_and_reports_killed() {
    let mut sim = Sim::new(settings()).started(10).halted(HOUR);
    let a = sim.decide(HOUR + 60, director(), Decision::Kill);
    assert!(a.contains(&Action::Kill));
    assert_phase!(sim, Phase::Stopping { .. });
    let a = sim.at(HOUR + 65, signalled(15));
    match &posts(&a)[0].body {
        Body::Killed { by, errors, .. } => {
            assert_eq!(by, "@dana");
            assert_eq!(errors[0].resolution.as_ref().unwrap().what, "killed");
        }
        other => panic!("{other:?}"),
    }
    assert!(a.contains(&run_ended(false)));
}

#[test]
fn continue_after_a_caught_error_returns_to_running() {
    let mut sim = Sim::new(settings()).started(10).halted(HOUR);
    let a = sim.decide(HOUR + 60, director(), Decision::Continue);
    assert!(refused(&a).is_none());
    assert_phase!(sim, Phase::Running { stall: None });
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
        sim.incident(HOUR, 1, inc);
        let a = sim.decide(HOUR + 60, director(), Decision::Investigate);
        let p = posts(&a);
        assert_eq!(p[0].to, vec![owner]);
        assert!(matches!(&p[0].body, Body::Investigate { owner: o, incident: Some(_), .. } if *o == owner));
        // Investigating leaves the decision open.
        assert_phase!(sim, Phase::Halted { incident: 1 });
    }
}

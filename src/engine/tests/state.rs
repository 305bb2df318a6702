//! The persisted state: round trips through the store format, and older stored forms that still load.

use super::*;

#[test]
fn state_survives_a_round_trip_through_the_store_format() {
    let sim = Sim::new(settings()).started(10).halted(HOUR);
    let json = serde_json::to_string(&sim.m.state).unwrap();
    let restored: JobState = serde_json::from_str(&json).unwrap();
    let mut again = Sim {
        m: JobMachine::restore(settings(), restored),
    };
    assert_phase!(again, Phase::Halted { incident: 1 });
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

/// A state as an older trainwatch stored it: the phase a bare name, its data in fields of the run.
fn stored_the_old_way(state: &JobState, phase: &str, fields: serde_json::Value) -> String {
    let mut v = serde_json::to_value(state).unwrap();
    let run = v["run"].as_object_mut().unwrap();
    run.insert("phase".into(), phase.into());
    for (k, x) in fields.as_object().unwrap() {
        run.insert(k.clone(), x.clone());
    }
    v.to_string()
}

#[test]
fn a_state_stored_before_phases_carried_their_data_still_loads() {
    // Halted on error #1, its report awaiting the director.
    let mut sim = Sim::new(settings()).started(10);
    sim.at(
        HOUR,
        Event::Incident {
            key: 1,
            incident: key_error(120),
        },
    );
    let old = stored_the_old_way(
        &sim.m.state,
        "halted",
        serde_json::json!({ "open": { "incident": 1 } }),
    );
    assert_eq!(JobState::from_stored(&old).unwrap(), sim.m.state);

    // A restart by @dana that had to kill the old process.
    sim.decide(HOUR + 60, director(), Decision::Restart);
    assert_phase!(sim, Phase::Restarting { killed_old: true, .. });
    let old = stored_the_old_way(
        &sim.m.state,
        "restarting",
        serde_json::json!({ "open": null, "pending_by": "@dana", "killed_for_restart": true }),
    );
    assert_eq!(JobState::from_stored(&old).unwrap(), sim.m.state);

    // Over: when it ended was a field of its own.
    sim.at(HOUR + 61, exited(0));
    sim.at(HOUR + 62, spawned(11));
    sim.at(2 * HOUR, exited(0));
    let Phase::Completed { at } = sim.phase() else {
        panic!("{:?}", sim.phase())
    };
    let old = stored_the_old_way(
        &sim.m.state,
        "completed",
        serde_json::json!({ "open": null, "pending_by": null, "ended_at": at }),
    );
    assert_eq!(JobState::from_stored(&old).unwrap(), sim.m.state);
    // And today's form reads back as it is.
    let new = serde_json::to_string(&sim.m.state).unwrap();
    assert_eq!(JobState::from_stored(&new).unwrap(), sim.m.state);
}

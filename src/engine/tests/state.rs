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

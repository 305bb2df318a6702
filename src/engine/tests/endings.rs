//! How a run ends: completed, or failed because it never started.

use super::*;

#[test]
fn exit_zero_completes_with_outputs_and_errors_resolved() {
    let mut sim = Sim::new(settings()).started(10).halted(HOUR);
    sim.decide(HOUR + 60, director(), Decision::Restart);
    sim.at(HOUR + 62, signalled(15));
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
    assert!(a.contains(&run_ended(true)));
    assert_phase!(sim, Phase::Completed { .. });
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
    assert_phase!(sim, Phase::Failed { .. });
}

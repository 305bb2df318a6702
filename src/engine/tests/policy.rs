//! Unattended runs: the `on_error` policy decides when nobody can.

use super::*;

#[test]
fn unattended_wait_policy_fails_the_run_when_the_process_dies() {
    let mut s = settings();
    s.unattended = true;
    let mut sim = Sim::new(s).started(10).halted(HOUR);
    assert_phase!(sim, Phase::Halted { incident: 1 });
    let a = sim.at(HOUR + 1, exited(1));
    match &posts(&a)[0].body {
        Body::Failed { exit, errors, .. } => {
            assert_eq!(*exit, Some(ExitOutcome::Code(1)));
            assert_eq!(errors.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(a.contains(&run_ended(false)));
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
        assert!(a.contains(&respawn(pid - 9)));
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
    let a = sim.incident(HOUR, 1, key_error(120));
    assert!(a.contains(&Action::Kill));
    let a = sim.at(HOUR + 1, signalled(15));
    assert!(matches!(posts(&a)[0].body, Body::Killed { .. }));
}

#[test]
fn attended_runs_ignore_the_policy_and_wait_for_a_person() {
    let mut s = settings();
    s.on_error = OnError::Restart { limit: 3 };
    let mut sim = Sim::new(s).started(10);
    let a = sim.at(HOUR, exited(1));
    assert!(!a.iter().any(|x| matches!(x, Action::Spawn { .. })));
    assert_phase!(sim, Phase::Halted { incident: 1 });
}

/// An error first taken for one the run outlived (more lines followed it) and then judged the
/// cause after all (the process ended with it): it halts the run again, so the policy
/// decides — the run is not left running with nothing to wait for.
#[test]
fn an_error_judged_the_cause_after_being_taken_as_outlived_halts_again() {
    let mut s = settings();
    s.unattended = true;
    let mut sim = Sim::new(s).started(10);
    let fatal = key_error(120);
    let mut outlived = fatal.clone();
    outlived.severity = Severity::Warning;
    sim.incident(HOUR, 1, fatal.clone());
    assert_phase!(sim, Phase::Halted { incident: 1 });
    sim.at(
        HOUR + 1,
        Event::IncidentUpdated {
            key: 1,
            incident: outlived,
        },
    );
    assert_phase!(sim, Phase::RUNNING);
    sim.at(
        HOUR + 2,
        Event::IncidentUpdated {
            key: 1,
            incident: fatal,
        },
    );
    assert_phase!(sim, Phase::Halted { incident: 1 });
    let a = sim.at(HOUR + 3, exited(1));
    assert!(a.contains(&run_ended(false)), "{a:?}");
}

/// A service outside the job warned of first (a retry the run went on from), then judged the
/// failure just before the exit (the detector holds a cluster-side cause for the exit): the
/// incident was posted as a warning, so the exit must still report it as the error. Left
/// running with nothing to wait for, an unattended `trainwatch run` never ended.
fn outage_warned_then_judged_fatal(unattended: bool) -> (Sim, Vec<Action>) {
    let mut s = settings();
    s.unattended = unattended;
    let mut sim = Sim::new(s).started(10);
    let mut outage = key_error(3);
    outage.category = Category::Infrastructure;
    outage.text = "WARNING feature cache read failed (attempt 1/3): MASTERDOWN".into();
    let mut warned = outage.clone();
    warned.severity = Severity::Warning;
    let a = sim.incident(HOUR, 1, warned);
    assert!(matches!(posts(&a)[0].body, Body::WarningNoticed { .. }), "{a:?}");
    let a = sim.incident_updated(HOUR + 1, 1, outage);
    assert!(posts(&a).is_empty(), "held for the exit it explains: {a:?}");
    assert_phase!(sim, Phase::RUNNING);
    let a = sim.at(HOUR + 2, exited(1));
    (sim, a)
}

#[test]
fn an_outage_first_posted_as_a_warning_is_reported_when_the_exit_it_explains_arrives() {
    let (sim, a) = outage_warned_then_judged_fatal(false);
    match &posts(&a)[..] {
        [msg] => match &msg.body {
            Body::ErrorDetected { seq, incident, .. } => {
                assert_eq!(*seq, 1);
                assert_eq!(incident.category, Category::Infrastructure);
            }
            other => panic!("{other:?}"),
        },
        other => panic!("one error report expected: {other:?}"),
    }
    assert_phase!(sim, Phase::Halted { incident: 1 });
}

#[test]
fn an_unattended_run_ends_when_an_outage_first_posted_as_a_warning_explains_the_exit() {
    let (_, a) = outage_warned_then_judged_fatal(true);
    assert!(a.contains(&run_ended(false)), "{a:?}");
}

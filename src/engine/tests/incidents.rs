//! Incidents: error reports that halt the run, their updates, bursts, warnings, exits the log did not explain.

use super::*;
use crate::model::ProcessId;

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
    assert_phase!(sim, Phase::Halted { incident: 1 });
    assert!(
        !a.iter().any(|x| matches!(x, Action::RunEnded { .. })),
        "a person decides, the run is not over"
    );
}

#[test]
fn sigkill_without_traceback_is_a_resource_error() {
    let mut sim = Sim::new(settings()).started(10);
    let a = sim.at(HOUR, signalled(9));
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
    let a = sim.incident(HOUR, 1, inc);
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
            assert_eq!(*pid, Some(ProcessId::Local(10)));
            assert_eq!(incident.line, 120);
        }
        other => panic!("{other:?}"),
    }
    assert_phase!(sim, Phase::Halted { incident: 1 });
    // No status updates while halted: the question is open.
    assert!(posts(&sim.at(2 * HOUR, Event::Tick)).is_empty());
}

#[test]
fn the_process_exit_after_an_error_report_updates_it_rather_than_posting_again() {
    let mut sim = Sim::new(settings()).started(10).halted(HOUR);
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
    sim.incident(HOUR, 7, key_error(120));
    let mut more = key_error(120);
    more.excerpt.push("  (chained) RuntimeError: wrapper".into());
    let a = sim.incident_updated(HOUR, 7, more.clone());
    assert!(posts(&a).is_empty());
    assert!(a.iter().any(|x| matches!(x, Action::Update(m) if matches!(&m.body, Body::ErrorDetected { incident, .. } if incident.excerpt.len() == 4))));
}

#[test]
fn a_burst_is_one_incident_and_a_second_error_while_halted_is_not_posted() {
    let mut sim = Sim::new(settings()).started(10).halted(HOUR);
    let mut burst = key_error(120);
    burst.count = 5000;
    let a = sim.incident_updated(HOUR, 1, burst);
    assert!(posts(&a).is_empty());
    let a = sim.incident(HOUR + 1, 2, key_error(130));
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
        reason: String::new(),
    };
    let a = sim.incident(HOUR, 1, warning);
    let p = posts(&a);
    assert!(matches!(p[0].body, Body::WarningNoticed { .. }));
    assert_eq!(p[0].to, vec![Persona::Modeler]);
    assert!(p[0].buttons.is_empty());
    assert_phase!(sim, Phase::Running { stall: None });
    // It shows in the next status update as open.
    let a = sim.at(2 * HOUR, Event::Tick);
    assert!(matches!(&posts(&a)[0].body, Body::StatusUpdate { open, .. } if open.len() == 1));
}

/// A fatal error seen while another report was open is recorded; if the run went on and the
/// process then ends, it is reported then — the run never sits with a dead process and
/// nothing to decide.
#[test]
fn an_error_held_behind_an_open_report_is_reported_when_the_process_ends() {
    let mut sim = Sim::new(settings()).started(10).halted(HOUR);
    let mut second = key_error(400);
    second.text = "KeyError: 'label'".into();
    assert!(posts(&sim.incident(HOUR + 10, 2, second)).is_empty());
    let a = sim.decide(HOUR + 60, director(), Decision::Continue);
    assert!(refused(&a).is_none());
    let a = sim.at(HOUR + 100, exited(1));
    match &posts(&a)[..] {
        [m] => match &m.body {
            Body::ErrorDetected {
                seq, incident, exit, ..
            } => {
                assert_eq!(*seq, 2);
                assert!(incident.text.contains("'label'"));
                assert_eq!(*exit, Some(ExitOutcome::Code(1)));
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert_phase!(sim, Phase::Halted { incident: 2 });
}

/// An error report taken back because the run said it handled the error (a fallback): the
/// question is resolved, the run goes on, and a note is never posted on its own.
#[test]
fn an_exception_the_run_outlived_is_a_note_that_resolves_its_report() {
    let mut sim = Sim::new(settings()).started(10).halted(HOUR);
    let mut note = key_error(120);
    note.severity = Severity::Note;
    let a = sim.incident_updated(HOUR + 1, 1, note.clone());
    assert!(posts(&a).is_empty());
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Resolve { note, .. } if note.contains("handled"))),
        "{a:?}"
    );
    assert_phase!(sim, Phase::RUNNING);
    // A fresh note posts nothing.
    let a = sim.incident(HOUR + 2, 2, note);
    assert!(posts(&a).is_empty(), "{a:?}");
}

//! The Phase 4.5 re-validation gate: fixes, design changes, the validator's verdict.

use super::*;
use crate::engine::state::FixStatus;
use crate::review::{
    ChangesSummary, Comparison, ComparisonRow, FileChange, ParamChange, ParamValue, Snapshot, Verdict,
};

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
    // A fix changes the files it was made in (the code as reviewed).
    let files_modified = reviewed
        .files
        .iter()
        .map(|(path, hash)| FileChange {
            path: path.clone(),
            before: Some("0".repeat(64)),
            after: Some(hash.clone()),
            lines: None,
        })
        .collect();
    Some(Box::new(FixEvidence {
        changes: ChangesSummary {
            files_modified,
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

const REVIEWED: &[(&str, &str)] = &[("model_3.py", "aaa")];

/// A halted run with fix #1 submitted by @bob (design changed or not) at HOUR + 600, made in
/// the code `REVIEWED`.
fn halted_with_fix(design_changed: bool) -> Sim {
    let mut sim = Sim::new(settings()).started(10).halted(HOUR);
    let a = sim.submit_fix(
        HOUR + 600,
        translator(),
        "use fit() not fit_transform()",
        evidence(design_changed, code(REVIEWED)),
    );
    assert!(refused(&a).is_none(), "{a:?}");
    sim
}

/// Run 1, with approvals that last an hour, halted at HOUR; a design-changing fix submitted at
/// HOUR + 60 and approved at HOUR + 120 (with what the approval answered).
fn approved_for_an_hour() -> (Sim, Vec<Action>) {
    let mut s = settings();
    s.approval_ttl = Some(Duration::from_secs(3600));
    let mut sim = Sim::new(s).started(10).halted(HOUR);
    sim.submit_fix(
        HOUR + 60,
        translator(),
        "x",
        evidence(true, code(&[("m.py", "a")])),
    );
    let a = sim.validate(HOUR + 120, validator(), true, None, &[("m.py", "a")]);
    (sim, a)
}

#[test]
fn a_design_change_posts_the_gate_to_the_validator_with_buttons() {
    let mut sim = Sim::new(settings()).started(10).halted(HOUR);
    let a = sim.submit_fix(
        HOUR + 600,
        translator(),
        "fewer draws",
        evidence(true, code(REVIEWED)),
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
    let a = sim.restart_with_code(HOUR + 700, director(), REVIEWED);
    let r = refused(&a).expect("refused");
    assert!(r.contains("until @time_validator approves"), "{r}");
    assert!(!a.contains(&Action::Kill));
    assert_phase!(sim, Phase::Halted { incident: 1 });
    // Nor can the unattended policy.
    let mut s = settings();
    s.unattended = true;
    s.on_error = OnError::Restart { limit: 3 };
    let mut sim = Sim::new(s).started(10);
    sim.incident(HOUR, 1, key_error(1));
    sim.at(HOUR + 1, exited(1));
    // (the policy restarted once; a design-changing fix now blocks the next restart)
    sim.at(HOUR + 2, spawned(11));
    sim.submit_fix(HOUR + 3, translator(), "x", evidence(true, code(&[])));
    let a = sim.at(HOUR + 4, exited(1));
    assert!(!a.iter().any(|x| matches!(x, Action::Spawn { .. })));
    assert!(matches!(posts(&a).last().unwrap().body, Body::Failed { .. }));
}

#[test]
fn approval_lets_the_director_resume() {
    let mut sim = halted_with_fix(true);
    let a = sim.validate(HOUR + 800, validator(), true, None, REVIEWED);
    assert!(refused(&a).is_none(), "{a:?}");
    assert!(a.iter().any(|x| matches!(x, Action::Resolve { key: MessageKey::Gate(1), note, .. } if note.starts_with("Approved by @vera"))));
    assert!(posts(&a).iter().any(
        |m| matches!(m.body, Body::ValidationDecided { approved: true, .. })
            && m.to == vec![Persona::Director]
    ));
    let a = sim.restart_with_code(HOUR + 900, director(), REVIEWED);
    assert!(refused(&a).is_none(), "{a:?}");
    assert!(a.contains(&Action::Kill));
}

#[test]
fn approval_is_void_when_the_code_changes_after_review() {
    let mut sim = halted_with_fix(true);
    sim.validate(HOUR + 800, validator(), true, None, REVIEWED);
    let a = sim.restart_with_code(HOUR + 900, director(), &[("model_3.py", "bbb")]);
    let r = refused(&a).expect("refused");
    assert!(r.contains("changed after fix #1 was approved"), "{r}");
    // Validating code that changed after submission is refused too.
    let mut sim = halted_with_fix(true);
    let a = sim.validate(HOUR + 800, validator(), true, None, &[("model_3.py", "ccc")]);
    assert!(refused(&a)
        .unwrap()
        .contains("changed after fix #1 was submitted"));
}

#[test]
fn self_approval_is_refused_whatever_roles_the_submitter_holds() {
    let mut sim = halted_with_fix(true);
    let bob_with_all_roles = Actor::user("u2", "@bob", Persona::ALL.to_vec());
    let a = sim.validate(HOUR + 800, bob_with_all_roles, true, None, REVIEWED);
    assert!(refused(&a).unwrap().contains("four eyes"));
    // And someone without the validator role cannot decide at all.
    let a = sim.validate(HOUR + 801, director(), true, None, REVIEWED);
    assert!(refused(&a).unwrap().contains("time_validator role"));
}

#[test]
fn rejection_blocks_until_a_new_fix_is_submitted() {
    let mut sim = halted_with_fix(true);
    let a = sim.validate(
        HOUR + 800,
        validator(),
        false,
        Some("draws below the design's 2000"),
        REVIEWED,
    );
    let p = posts(&a);
    assert_eq!(p[0].to, vec![Persona::CodeTranslator]);
    assert!(
        matches!(&p[0].body, Body::ValidationDecided { approved: false, reason: Some(r), .. } if r.contains("2000"))
    );
    let r = refused(&sim.restart_with_code(HOUR + 900, director(), REVIEWED)).unwrap();
    assert!(
        r.contains("rejected by @vera") && r.contains("full rework"),
        "{r}"
    );
    // A new fix that keeps the design: a simple bug fix, the director may resume.
    let redone = &[("model_3.py", "ddd")];
    let a = sim.submit_fix(HOUR + 1000, translator(), "redo", evidence(false, code(redone)));
    assert!(replies(&a)[0].text.contains("simple bug fix"));
    let a = sim.restart_with_code(HOUR + 1100, director(), redone);
    assert!(refused(&a).is_none(), "{a:?}");
}

#[test]
fn a_simple_bug_fix_needs_no_validation() {
    let mut sim = halted_with_fix(false);
    let a = sim.restart_with_code(HOUR + 700, director(), &[("model_3.py", "zzz")]);
    assert!(refused(&a).is_none(), "{a:?}");
}

#[test]
fn an_expired_approval_requires_a_new_review() {
    let (mut sim, a) = approved_for_an_hour();
    assert!(matches!(
        posts(&a)[0].body,
        Body::ValidationDecided { expires: Some(_), .. }
    ));
    let r = refused(&sim.restart_with_code(3 * HOUR, director(), &[("m.py", "a")])).unwrap();
    assert!(r.contains("expired"), "{r}");
    // Within the hour it would have been fine.
    let (mut sim, _) = approved_for_an_hour();
    assert!(refused(&sim.restart_with_code(HOUR + 1800, director(), &[("m.py", "a")])).is_none());
}

#[test]
fn approve_button_twice_says_who_decided_and_old_fix_buttons_are_refused() {
    let mut sim = halted_with_fix(true);
    let click = |d| decision_command(d, Some((RunId(1), DecisionPoint::Fix(1))));
    let a = sim.with_code(HOUR + 800, validator(), click(Decision::Approve), REVIEWED);
    assert!(refused(&a).is_none(), "{a:?}");
    let other = Actor::user("u8", "@val2", vec![Persona::TimeValidator]);
    let r = refused(&sim.with_code(HOUR + 801, other.clone(), click(Decision::Reject), REVIEWED)).unwrap();
    assert!(r.starts_with("already decided: Approved by @vera"), "{r}");
    // A second fix supersedes the first; its buttons no longer count.
    let mut sim = halted_with_fix(true);
    let v2 = &[("model_3.py", "eee")];
    sim.submit_fix(HOUR + 900, translator(), "v2", evidence(true, code(v2)));
    let r = refused(&sim.with_code(HOUR + 901, other, click(Decision::Approve), v2)).unwrap();
    assert!(r.contains("superseded"), "{r}");
}

#[test]
fn fix_submissions_and_verdicts_are_audited_with_hashes() {
    let mut sim = halted_with_fix(true);
    let a = sim.validate(HOUR + 800, validator(), true, None, REVIEWED);
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

#[test]
fn a_fix_that_changes_nothing_is_refused_and_asks_whether_it_was_saved() {
    let mut sim = halted_with_fix(true);
    let mut unchanged = evidence(false, code(REVIEWED)).unwrap();
    unchanged.changes.files_modified.clear();
    let a = sim.submit_fix(HOUR + 700, translator(), "try again", Some(unchanged));
    let r = refused(&a).expect("a fix that changes nothing is refused");
    assert!(
        r.contains("nothing changed") && r.contains("since run 1 started"),
        "{r}"
    );
    assert!(r.contains("was the fix saved?"), "{r}");
    assert!(!r.contains("simple bug fix"), "{r}");
    // Nothing is posted, and the fix that awaits validation is still the one to decide.
    assert!(posts(&a).is_empty(), "{a:?}");
    assert!(!a.iter().any(|x| matches!(x, Action::Resolve { .. })), "{a:?}");
    let run = sim.m.run().unwrap();
    assert_eq!(run.fixes.len(), 1);
    assert_eq!(run.fixes[0].status, FixStatus::AwaitingValidation);
    let a = sim.cmd(
        HOUR + 800,
        validator(),
        Command::Validate {
            approve: true,
            reason: None,
        },
    );
    assert!(refused(&a).is_none(), "{a:?}");
}

#[test]
fn the_completion_report_names_the_fix_that_resolved_an_error() {
    let mut sim = halted_with_fix(false);
    let a = sim.restart_with_code(HOUR + 700, director(), REVIEWED);
    assert!(refused(&a).is_none(), "{a:?}");
    // The audit records the same resolution when the restart is decided.
    assert!(
        a.iter().any(
            |x| matches!(x, Action::Record(Record::IncidentResolved { resolution, .. })
            if resolution == "fixed by fix #1 'use fit() not fit_transform()' and restarted")
        ),
        "{a:?}"
    );
    sim.at(HOUR + 710, exited(-1));
    sim.at(HOUR + 720, spawned(11));
    let a = sim.at(2 * HOUR, exited(0));
    let Body::Completed { errors, .. } = &posts(&a)[0].body else {
        panic!("{a:?}")
    };
    let r = errors[0].resolution.as_ref().unwrap();
    assert_eq!(
        r.what,
        "fixed by fix #1 'use fit() not fit_transform()' and restarted"
    );
    assert_eq!(r.by.as_deref(), Some("@dana"));
}

/// A cluster's failure is resubmitted by the policy, but not past the gate: a fix awaiting
/// validation does not start by that side door.
#[test]
fn the_gate_holds_the_infrastructure_resubmit_too() {
    use crate::model::SchedulerEnd;
    let mut sim = halted_with_fix(true);
    let a = sim.at(
        HOUR + 700,
        Event::Exited {
            outcome: ExitOutcome::Scheduler(SchedulerEnd::NodeFailure),
            outputs: vec![],
        },
    );
    assert!(!a.iter().any(|x| matches!(x, Action::Spawn { .. })), "{a:?}");
    assert_eq!(sim.m.run().unwrap().resubmits, 0);
    assert_phase!(sim, Phase::Halted { incident: 1 });
    // Without a fix pending, the same end is resubmitted.
    let mut sim = Sim::new(settings()).started(10);
    let a = sim.at(
        HOUR,
        Event::Exited {
            outcome: ExitOutcome::Scheduler(SchedulerEnd::NodeFailure),
            outputs: vec![],
        },
    );
    assert!(a.contains(&respawn(2)));
}

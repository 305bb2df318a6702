//! The clock rules: status updates, the timeout warning, the next deadline; progress, stalls and the early overrun warning.

use super::*;
use crate::model::ProcessId;

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
            assert_eq!(*pid, ProcessId::Local(10));
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
    assert_phase!(sim, Phase::TimeoutWarned { warning: 1 });
}

#[test]
fn continue_after_timeout_sets_a_new_horizon() {
    let mut sim = Sim::new(settings()).started(10);
    sim.at(24 * HOUR, Event::Tick);
    assert_phase!(sim, Phase::TimeoutWarned { warning: 1 });
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
    assert_phase!(sim, Phase::Running { stall: None });
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
    let a = sim.click(
        24 * HOUR + 5,
        director(),
        Decision::Restart,
        DecisionPoint::Timeout(1),
    );
    assert!(a.contains(&Action::Kill));
    assert_phase!(sim, Phase::Restarting { .. });
    let a = sim.at(24 * HOUR + 8, signalled(15));
    assert!(a.contains(&respawn(2)));
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
    assert_phase!(sim, Phase::TimeoutWarned { warning: 1 });
}

#[test]
fn next_deadline_is_the_earlier_of_status_and_timeout() {
    let mut s = settings();
    s.max = Some(Duration::from_secs(20 * 60));
    let sim = Sim::new(s).started(10);
    assert_eq!(sim.m.next_deadline(), Some(t0() + chrono::Duration::minutes(20)));
}

// ---- progress, stalls and the early overrun warning --------------------------------------

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
            assert_eq!(*pid, ProcessId::Local(4242));
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
    assert_eq!(s.m.run().unwrap().phase.open(), None);
    let a = s.at(60 * MIN, stalled(40 * MIN));
    assert_eq!(stall_key(&a), Some(2));
}

#[test]
fn continue_on_a_stall_keeps_watching_without_asking_again_in_the_same_episode() {
    let mut s = Sim::new(settings()).started(7);
    s.at(20 * MIN, stalled(5 * MIN));
    let a = s.click(21 * MIN, director(), Decision::Continue, DecisionPoint::Stall(1));
    assert_eq!(refused(&a), None);
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Resolve {
            key: MessageKey::Stall(1),
            ..
        }
    )));
    assert_phase!(s, Phase::Running { stall: None });
    assert!(s.at(25 * MIN, stalled(5 * MIN)).is_empty());
    // A second click on the same button is told who decided.
    let a = s.click(26 * MIN, director(), Decision::Kill, DecisionPoint::Stall(1));
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
    assert_eq!((&run.phase, run.stall), (&Phase::Running { stall: None }, None));
}

#[test]
fn no_stall_question_while_another_decision_is_pending_or_the_run_is_not_running() {
    let mut s = Sim::new(settings()).started(7);
    s.incident(10 * MIN, 1, key_error(12));
    assert_phase!(s, Phase::Halted { incident: 1 });
    assert!(s.at(20 * MIN, stalled(5 * MIN)).is_empty());
    let mut s = Sim::new(settings());
    s.cmd(0, director(), Command::Start);
    assert!(s.at(20 * MIN, stalled(0)).is_empty(), "not spawned yet");
}

#[test]
fn an_error_supersedes_an_open_stall_question() {
    let mut s = Sim::new(settings()).started(7);
    s.at(20 * MIN, stalled(5 * MIN));
    let a = s.incident(21 * MIN, 1, key_error(40));
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Resolve { key: MessageKey::Stall(1), note, .. } if note.contains("superseded")
    )));
    assert_eq!(s.m.run().unwrap().phase.open(), Some(DecisionPoint::Incident(1)));
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
    assert_phase!(s, Phase::TimeoutWarned { warning: 1 });
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
        reason: String::new(),
    };
    assert!(posts(&s.incident(1, 9, nan)).is_empty());
    let a = s.at(2, spawned(11));
    let keys: Vec<MessageKey> = posts(&a).iter().map(|m| m.key).collect();
    assert_eq!(keys, [MessageKey::Started, MessageKey::Incident(1)]);
    assert_phase!(s, Phase::Halted { incident: 1 });
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
fn the_status_answer_states_its_counts_before_the_last_log_line() {
    let mut s = Sim::new(settings()).started(7);
    let line = format!("epoch 3 {}", "█".repeat(10_000));
    s.at(
        MIN,
        Event::LogActivity {
            last_line: line.clone(),
            line_no: 42,
        },
    );
    s.incident(2 * MIN, 1, key_error(40));
    let a = s.cmd(3 * MIN, director(), Command::Status);
    let text = &replies(&a)[0].text;
    let counts = text.find("1 incident(s), 1 fatal").expect(text);
    let last = text.find("last log line 42").expect(text);
    assert!(counts < last, "{text}");
    assert!(text.ends_with(&line));
}

#[test]
fn after_a_restart_the_status_update_shows_the_runs_elapsed_and_the_attempts() {
    let mut sim = Sim::new(settings()).started(10).halted(4 * HOUR);
    sim.decide(4 * HOUR + 60, director(), Decision::Restart);
    sim.at(4 * HOUR + 120, exited(-1));
    sim.at(4 * HOUR + 5 * MIN, spawned(11));
    // The next status update is one interval after the new process started.
    let a = sim.at(4 * HOUR + 35 * MIN, Event::Tick);
    let Body::StatusUpdate {
        elapsed,
        attempt,
        progress,
        ..
    } = &posts(&a)[0].body
    else {
        panic!("{a:?}")
    };
    assert_eq!(*elapsed, Duration::from_secs((4 * HOUR + 35 * MIN) as u64));
    let attempt = attempt.expect("the attempt is shown after a restart");
    assert_eq!(attempt.attempt, 2);
    assert_eq!(attempt.running_for, Duration::from_secs(30 * 60));
    // The percent of the expected 12h counts the whole run, as the elapsed does.
    let p = progress.percent.unwrap();
    assert!(
        (p - (4.0 * 60.0 + 35.0) / (12.0 * 60.0) * 100.0).abs() < 0.01,
        "{p}"
    );
}

#[test]
fn the_first_attempt_shows_no_attempt_time() {
    let mut sim = Sim::new(settings()).started(10);
    let a = sim.at(30 * MIN, Event::Tick);
    assert!(matches!(
        &posts(&a)[0].body,
        Body::StatusUpdate { attempt: None, elapsed, .. } if *elapsed == Duration::from_secs(30 * 60)
    ));
}

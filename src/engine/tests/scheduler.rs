//! A job a scheduler holds: the queue stops its clocks, the timeout warning comes ahead of the
//! scheduler's time limit with "extend", a scheduler's end is judged by the scheduler, the
//! cluster's failures are resubmitted by the policy, an unreachable controller is told once.

use super::*;
use crate::model::{OnInfrastructure, ProcessId, SchedulerEnd};

const JOB: u64 = 4242;

fn slurm_spawned() -> Event {
    Event::Spawned {
        pid: ProcessId::Slurm { slurm_job: JOB },
        checkpoint: None,
        previous_log: None,
    }
}

fn queued(reason: &str) -> Event {
    Event::Queued {
        reason: reason.into(),
    }
}

/// Started by the scheduler, which ends it `limit` seconds after `t0`.
fn started(limit: Option<i64>) -> Event {
    Event::Started {
        limit_at: limit.map(at),
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

fn scheduler_end(end: SchedulerEnd) -> Event {
    Event::Exited {
        outcome: ExitOutcome::Scheduler(end),
        outputs: vec![],
    }
}

impl Sim {
    /// Start a run submitted to a scheduler as Slurm job `JOB`.
    fn submitted(mut self) -> Self {
        self.cmd(0, director(), Command::Start);
        self.at(0, slurm_spawned());
        self
    }
    fn tick_minutes(&mut self, from: i64, to: i64) -> Vec<(i64, Message)> {
        (from..=to)
            .flat_map(|m| {
                posts(&self.at(m * MIN, Event::Tick))
                    .into_iter()
                    .map(|p| (m, p.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

fn status_reply(sim: &mut Sim, secs: i64) -> String {
    let a = sim.cmd(secs, translator(), Command::Status);
    replies(&a)[0].text.clone()
}

fn has_key(actions: &[Action], key: MessageKey) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Resolve { key: k, .. } if *k == key))
}

fn limit_warnings(posted: &[(i64, Message)]) -> Vec<i64> {
    posted
        .iter()
        .filter(|(_, m)| matches!(m.body, Body::LimitWarning { .. }))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn queued_attempt_clocks_stand_still_and_status_says_how_long_and_why() {
    let mut sim = Sim::new(settings()).submitted();
    sim.at(0, queued("Priority"));
    assert!(status_reply(&mut sim, 14 * MIN).contains("waiting in queue for 14m: Priority"));
    // A whole day in the queue: status updates say so, and no timeout warning (max 24h) comes.
    let posted = sim.tick_minutes(1, 25 * 60);
    assert!(!posted.is_empty());
    for (minute, m) in &posted {
        match &m.body {
            Body::Queued {
                reason,
                waiting_for,
                pid,
                ..
            } => {
                assert_eq!(reason, "Priority");
                assert_eq!(*waiting_for, Duration::from_secs((*minute * MIN) as u64));
                assert_eq!(*pid, ProcessId::Slurm { slurm_job: JOB });
            }
            other => panic!("minute {minute}: {other:?}"),
        }
    }
    // A stall of a job that is not running is no question.
    let a = sim.at(
        25 * HOUR,
        Event::Stalled {
            since: t0(),
            kind: StallKind::NoOutput,
            last_line: None,
        },
    );
    assert!(posts(&a).is_empty());
    assert_phase!(sim, Phase::Running { stall: None });

    let a = sim.at(25 * HOUR, started(None));
    match &posts(&a)[0].body {
        Body::SchedulerStarted { waited, limit_at, .. } => {
            assert_eq!(*waited, Duration::from_secs((25 * HOUR) as u64));
            assert_eq!(*limit_at, None);
        }
        other => panic!("{other:?}"),
    }
    // The clocks run from the start: elapsed counts running time, the maximum is 24h of it.
    let posted = sim.tick_minutes(25 * 60 + 1, 25 * 60 + 30);
    match &posted.last().unwrap().1.body {
        Body::StatusUpdate { elapsed, .. } => assert_eq!(*elapsed, Duration::from_secs(30 * 60)),
        other => panic!("{other:?}"),
    }
    assert!(!status_reply(&mut sim, 25 * HOUR + 31 * MIN).contains("queue"));
    let posted = sim.tick_minutes(25 * 60 + 31, 49 * 60);
    let timeouts: Vec<i64> = posted
        .iter()
        .filter(|(_, m)| matches!(m.body, Body::TimeoutWarning { .. }))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(timeouts, vec![49 * 60]);
}

#[test]
fn the_start_message_says_submitted_and_is_edited_with_the_queue_reason() {
    let mut sim = Sim::new(settings());
    sim.cmd(0, director(), Command::Start);
    let a = sim.at(0, slurm_spawned());
    match &posts(&a)[0].body {
        Body::TrainingStarted { pid, queued, .. } => {
            assert_eq!(*pid, ProcessId::Slurm { slurm_job: JOB });
            assert_eq!(*queued, None);
        }
        other => panic!("{other:?}"),
    }
    let edited = |a: &[Action]| -> Vec<Option<String>> {
        a.iter()
            .filter_map(|x| match x {
                Action::Update(Message {
                    key: MessageKey::Started,
                    body: Body::TrainingStarted { queued, .. },
                    ..
                }) => Some(queued.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        edited(&sim.at(5, queued("Priority"))),
        vec![Some("Priority".into())]
    );
    assert!(
        edited(&sim.at(65, queued("Priority"))).is_empty(),
        "same reason: no edit"
    );
    assert_eq!(
        edited(&sim.at(125, queued("Resources"))),
        vec![Some("Resources".into())]
    );
    // The wait counts from the first word of the queue, whatever the reason became.
    assert!(status_reply(&mut sim, 10 * MIN + 5).contains("waiting in queue for 10m: Resources"));
}

#[test]
fn a_local_process_is_untouched_by_the_scheduler_rules() {
    let mut sim = Sim::new(settings()).started(10);
    let posted = sim.tick_minutes(1, 24 * 60);
    assert!(posted
        .iter()
        .all(|(_, m)| matches!(m.body, Body::StatusUpdate { .. } | Body::TimeoutWarning { .. })));
    let a = sim.decide(24 * HOUR + 1, director(), Decision::Extend);
    assert!(refused(&a)
        .unwrap()
        .contains("not running under a scheduler time limit"));
    assert!(!a.iter().any(|x| matches!(x, Action::ExtendLimit { .. })));
}

#[test]
fn the_timeout_warning_comes_ahead_of_the_scheduler_limit_once_with_extend() {
    let mut sim = Sim::new(settings()).submitted();
    sim.at(0, started(Some(4 * HOUR)));
    let posted = sim.tick_minutes(1, 5 * 60);
    assert_eq!(
        limit_warnings(&posted),
        vec![4 * 60 - 10],
        "10 minutes ahead, once"
    );
    let (_, m) = posted
        .iter()
        .find(|(_, m)| matches!(m.body, Body::LimitWarning { .. }))
        .unwrap();
    match &m.body {
        Body::LimitWarning {
            left,
            limit_at,
            extend_by,
            ..
        } => {
            assert_eq!(*left, Duration::from_secs(10 * 60));
            assert_eq!(*limit_at, at(4 * HOUR));
            assert_eq!(*extend_by, Duration::from_secs(3600));
        }
        other => panic!("{other:?}"),
    }
    let labels: Vec<_> = m.buttons.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Continue monitoring",
            "Investigate",
            "Terminate and restart",
            "Extend"
        ]
    );
    assert_eq!(m.to, vec![Persona::Director]);
    assert_phase!(sim, Phase::TimeoutWarned { warning: 1 });
}

#[test]
fn the_warning_margin_is_configurable_and_capped_at_half_the_limit() {
    let mut s = settings();
    s.scheduler.warn_before = Duration::from_secs(30 * 60);
    let mut sim = Sim::new(s.clone()).submitted();
    sim.at(0, started(Some(2 * HOUR)));
    assert_eq!(limit_warnings(&sim.tick_minutes(1, 120)), vec![90]);
    // A 40-minute limit: half of it (20 minutes) ahead, not 30.
    let mut sim = Sim::new(s).submitted();
    sim.at(0, started(Some(40 * MIN)));
    assert_eq!(limit_warnings(&sim.tick_minutes(1, 40)), vec![20]);
}

#[test]
fn extend_asks_the_scheduler_and_a_new_warning_follows_the_new_limit() {
    let mut sim = Sim::new(settings()).submitted();
    sim.at(0, started(Some(4 * HOUR)));
    sim.tick_minutes(1, 4 * 60 - 10);
    // Not the validator's, nor anyone's but the director's.
    let a = sim.click(
        4 * HOUR - 9 * MIN,
        translator(),
        Decision::Extend,
        DecisionPoint::Timeout(1),
    );
    assert!(refused(&a).unwrap().contains("director"));
    let a = sim.click(
        4 * HOUR - 9 * MIN,
        director(),
        Decision::Extend,
        DecisionPoint::Timeout(1),
    );
    assert!(refused(&a).is_none(), "{a:?}");
    assert!(a.contains(&Action::ExtendLimit {
        by: Duration::from_secs(3600)
    }));
    assert!(a.iter().any(
        |x| matches!(x, Action::Resolve { key: MessageKey::Timeout(1), note, .. }
        if note.starts_with("More time asked of the scheduler by @dana"))
    ));
    assert_phase!(sim, Phase::Running { stall: None });
    // Asked once: a second ask waits for the answer.
    let a = sim.decide(4 * HOUR - 8 * MIN, director(), Decision::Extend);
    assert!(refused(&a).unwrap().contains("already asked"));

    let a = sim.at(
        4 * HOUR - 8 * MIN,
        Event::LimitExtended {
            limit_at: at(5 * HOUR),
        },
    );
    match &posts(&a)[0].body {
        Body::LimitExtended { by, limit_at } => {
            assert_eq!(by, "@dana");
            assert_eq!(*limit_at, at(5 * HOUR));
        }
        other => panic!("{other:?}"),
    }
    let posted = sim.tick_minutes(4 * 60 - 7, 6 * 60);
    assert_eq!(
        limit_warnings(&posted),
        vec![5 * 60 - 10],
        "a new warning at the new margin"
    );
    assert_phase!(sim, Phase::TimeoutWarned { warning: 2 });
}

#[test]
fn a_failed_extension_is_told_to_the_director() {
    let mut sim = Sim::new(settings()).submitted();
    sim.at(0, started(Some(4 * HOUR)));
    let a = sim.decide(HOUR, director(), Decision::Extend);
    assert!(a.iter().any(|x| matches!(x, Action::ExtendLimit { .. })));
    let a = sim.at(
        HOUR + 1,
        Event::ExtendFailed {
            error: "Access/permission denied".into(),
        },
    );
    let m = posts(&a)[0];
    match &m.body {
        Body::ExtendFailed { by, error, limit_at } => {
            assert_eq!(by, "@dana");
            assert_eq!(error, "Access/permission denied");
            assert_eq!(*limit_at, Some(at(4 * HOUR)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.to, vec![Persona::Director]);
    // The limit stands: its warning still comes.
    assert_eq!(limit_warnings(&sim.tick_minutes(61, 4 * 60)), vec![4 * 60 - 10]);
}

#[test]
fn continue_on_the_limit_warning_leaves_the_maximum_alone() {
    let mut sim = Sim::new(settings()).submitted();
    sim.at(0, started(Some(4 * HOUR)));
    sim.tick_minutes(1, 4 * 60 - 10);
    let a = sim.click(
        4 * HOUR - 9 * MIN,
        director(),
        Decision::Continue,
        DecisionPoint::Timeout(1),
    );
    assert!(replies(&a)[0]
        .text
        .contains("the scheduler ends it at its time limit, 12:00 UTC"));
    assert_phase!(sim, Phase::Running { stall: None });
    assert_eq!(sim.m.run().unwrap().horizon, Some(at(24 * HOUR)));
}

#[test]
fn a_scheduler_end_is_reported_by_the_scheduler_not_by_the_logs_traceback() {
    let mut sim = Sim::new(settings()).submitted();
    sim.at(0, started(Some(4 * HOUR)));
    // The SIGTERM's traceback is seen live and halts the run...
    let mut stopped = key_error(300);
    stopped.text = "KeyboardInterrupt".into();
    sim.incident(4 * HOUR, 1, stopped.clone());
    assert_phase!(sim, Phase::Halted { incident: 1 });
    // ...then the detector, told the scheduler's end, judges it a consequence and states
    // the end itself (what `Detector::finish` does), before the exit arrives.
    stopped.severity = Severity::Warning;
    let a = sim.incident_updated(4 * HOUR + 1, 1, stopped);
    assert!(has_key(&a, MessageKey::Incident(1)));
    assert_phase!(sim, Phase::Running { stall: None });
    let verdict = exit_incident(ExitOutcome::Scheduler(SchedulerEnd::TimeLimit));
    let a = sim.incident(4 * HOUR + 1, 2, verdict.clone());
    match &posts(&a)[0].body {
        Body::ErrorDetected { incident, seq, .. } => {
            assert_eq!(*seq, 2);
            assert_eq!(incident.category, Category::Resource);
            assert!(
                incident.text.contains("time limit (TIMEOUT)"),
                "{}",
                incident.text
            );
        }
        other => panic!("{other:?}"),
    }
    let a = sim.at(4 * HOUR + 2, scheduler_end(SchedulerEnd::TimeLimit));
    assert!(
        !a.iter().any(|x| matches!(x, Action::Spawn { .. })),
        "a time limit is not resubmitted"
    );
    let updated = a.iter().find_map(|x| match x {
        Action::Update(m) => Some(m),
        _ => None,
    });
    match updated.map(|m| &m.body) {
        Some(Body::ErrorDetected { exit, seq: 2, .. }) => {
            assert_eq!(*exit, Some(ExitOutcome::Scheduler(SchedulerEnd::TimeLimit)))
        }
        other => panic!("{other:?}"),
    }
    assert_phase!(sim, Phase::Halted { incident: 2 });
}

#[test]
fn an_infrastructure_end_is_resubmitted_by_itself_without_counting_the_restart_limit() {
    let mut s = settings();
    s.on_error = OnError::Restart { limit: 1 };
    s.unattended = true;
    let mut sim = Sim::new(s).submitted();
    let mut t = 0;
    for n in 1..=3u32 {
        t += HOUR;
        // The detector states the node's failure just before the exit: it waits for the exit.
        let verdict = exit_incident(ExitOutcome::Scheduler(SchedulerEnd::NodeFailure));
        let a = sim.incident(t, 100 + u64::from(n), verdict);
        assert!(posts(&a).is_empty(), "{a:?}");
        let a = sim.at(t, scheduler_end(SchedulerEnd::NodeFailure));
        assert!(a.contains(&respawn(n + 1)), "{a:?}");
        let p = posts(&a);
        assert_eq!(p.len(), 1, "{p:?}");
        match &p[0].body {
            Body::Resubmitted {
                why,
                requeued,
                n: k,
                limit,
            } => {
                assert!(
                    why.contains("NODE_FAIL") && why.contains("not the job's code"),
                    "{why}"
                );
                assert!(!requeued);
                assert_eq!((*k, *limit), (n, 3));
            }
            other => panic!("{other:?}"),
        }
        let a = sim.at(t + 1, slurm_spawned());
        match &posts(&a)[0].body {
            Body::Restarting { decided_by, .. } => assert_eq!(decided_by, "on_infrastructure policy"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sim.m.run().unwrap().auto_restarts, 0);
    // The fourth: past the limit, the usual report, addressed to the director; the
    // unattended on_error policy (restart, limit 1, unused) then decides as for any error.
    let a = sim.at(t + HOUR, scheduler_end(SchedulerEnd::Preempted));
    let report = posts(&a)
        .into_iter()
        .find(|m| matches!(m.body, Body::ErrorDetected { .. }))
        .expect("an error report");
    match &report.body {
        Body::ErrorDetected { incident, .. } => {
            assert_eq!(incident.category, Category::Infrastructure);
            assert!(
                incident.text.contains("the cluster's failure"),
                "{}",
                incident.text
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.to, vec![Persona::Director]);
    assert!(a.contains(&respawn(5)), "the on_error policy restarts it");
    assert_eq!(sim.m.run().unwrap().auto_restarts, 1);
    // Each end is an error of the run, resolved by the resubmit.
    let errors = super::super::incidents::summaries(sim.m.run().unwrap());
    let resubmitted = errors
        .iter()
        .filter(|e| {
            e.resolution
                .as_ref()
                .is_some_and(|r| r.what.contains("resubmitted by on_infrastructure = resubmit"))
        })
        .count();
    assert_eq!(resubmitted, 3);
}

#[test]
fn a_bug_is_never_resubmitted() {
    for outcome in [
        ExitOutcome::Code(1),
        ExitOutcome::Signal(11),
        ExitOutcome::Scheduler(SchedulerEnd::OutOfMemory),
        ExitOutcome::Scheduler(SchedulerEnd::TimeLimit),
        ExitOutcome::Scheduler(SchedulerEnd::Cancelled { uid: Some(1000) }),
    ] {
        let mut sim = Sim::new(settings()).submitted();
        let a = sim.at(
            HOUR,
            Event::Exited {
                outcome,
                outputs: vec![],
            },
        );
        assert!(
            !a.iter().any(|x| matches!(x, Action::Spawn { .. })),
            "{outcome:?}"
        );
        assert!(
            posts(&a)
                .iter()
                .any(|m| matches!(m.body, Body::ErrorDetected { .. })),
            "{outcome:?}"
        );
    }
}

#[test]
fn on_infrastructure_ask_reports_the_clusters_failure_for_a_decision() {
    let mut s = settings();
    s.scheduler.on_infrastructure = OnInfrastructure::Ask;
    let mut sim = Sim::new(s).submitted();
    let verdict = exit_incident(ExitOutcome::Scheduler(SchedulerEnd::NodeFailure));
    assert!(posts(&sim.incident(HOUR, 7, verdict)).is_empty());
    let a = sim.at(HOUR, scheduler_end(SchedulerEnd::NodeFailure));
    assert!(!a.iter().any(|x| matches!(x, Action::Spawn { .. })));
    let p = posts(&a);
    assert_eq!(
        p.len(),
        1,
        "one report: the detector's verdict, now with its exit"
    );
    match &p[0].body {
        Body::ErrorDetected { incident, exit, .. } => {
            assert_eq!(incident.category, Category::Infrastructure);
            assert_eq!(*exit, Some(ExitOutcome::Scheduler(SchedulerEnd::NodeFailure)));
        }
        other => panic!("{other:?}"),
    }
    assert_phase!(sim, Phase::Halted { incident: 1 });
    let a = sim.decide(HOUR + 60, director(), Decision::Restart);
    assert!(a.contains(&respawn(2)));
}

#[test]
fn a_requeue_counts_the_next_attempt_and_waits_in_the_queue_without_a_new_submission() {
    let mut sim = Sim::new(settings()).submitted();
    sim.at(0, started(Some(10 * HOUR)));
    let a = sim.at(
        HOUR,
        Event::Requeued {
            reason: "node n2 failed".into(),
        },
    );
    assert!(
        !a.iter().any(|x| matches!(x, Action::Spawn { .. })),
        "the scheduler starts it again"
    );
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Record(Record::AttemptEnded { attempt: 1, .. }))));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Record(Record::AttemptStarted { attempt: 2, .. }))));
    match &posts(&a)[0].body {
        Body::Resubmitted { why, requeued, n, .. } => {
            assert!(*requeued);
            assert!(
                why.contains("REQUEUED") && why.contains("node n2 failed"),
                "{why}"
            );
            assert_eq!(*n, 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(status_reply(&mut sim, HOUR + 5 * MIN).contains("waiting in queue for 5m: node n2 failed"));
    // The old limit went with the old attempt: no warning for it.
    assert!(limit_warnings(&sim.tick_minutes(61, 10 * 60)).is_empty());
    let a = sim.at(10 * HOUR, started(Some(20 * HOUR)));
    match &posts(&a)[0].body {
        Body::SchedulerStarted { attempt, waited, .. } => {
            assert_eq!(*attempt, 2);
            assert_eq!(*waited, Duration::from_secs(9 * 3600));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_requeue_past_the_limit_is_reported_and_a_kill_still_reaches_the_queued_job() {
    let mut s = settings();
    s.scheduler.on_infrastructure = OnInfrastructure::Resubmit { limit: 1 };
    let mut sim = Sim::new(s).submitted();
    let requeued = || Event::Requeued {
        reason: "preempted".into(),
    };
    assert!(posts(&sim.at(HOUR, requeued()))
        .iter()
        .all(|m| matches!(m.body, Body::Resubmitted { .. })));
    sim.at(2 * HOUR, started(None));
    let a = sim.at(3 * HOUR, requeued());
    match &posts(&a)[0].body {
        Body::ErrorDetected { incident, .. } => {
            assert_eq!(incident.category, Category::Infrastructure);
            assert!(incident.text.contains("preempted"), "{}", incident.text);
        }
        other => panic!("{other:?}"),
    }
    assert_phase!(sim, Phase::Halted { incident: 2 });
    let a = sim.decide(3 * HOUR + 60, director(), Decision::Kill);
    assert!(a.contains(&Action::Kill), "the queued job is cancelled");
}

#[test]
fn an_unreachable_scheduler_is_told_once_per_episode_and_nothing_else_changes() {
    let mut sim = Sim::new(settings()).submitted();
    sim.at(0, started(None));
    let down = |sim: &mut Sim, secs| {
        sim.at(
            secs,
            Event::SchedulerUnreachable {
                error: "Unable to contact slurm controller".into(),
            },
        )
    };
    let a = down(&mut sim, 60);
    match &posts(&a)[..] {
        [m] => {
            assert!(matches!(
                &m.body,
                Body::Scheduler {
                    notice: SchedulerNotice::Unreachable { error }
                } if error.contains("slurm controller")
            ));
            assert!(m.to.is_empty(), "not the protocol's: nobody is mentioned");
        }
        other => panic!("{other:?}"),
    }
    for secs in [120, 600, 1200] {
        assert!(posts(&down(&mut sim, secs)).is_empty());
    }
    let a = sim.at(1260, Event::SchedulerAnswering);
    assert!(matches!(
        &posts(&a)[0].body,
        Body::Scheduler {
            notice: SchedulerNotice::Answering { after }
        } if *after == Duration::from_secs(1200)
    ));
    assert!(posts(&sim.at(1300, Event::SchedulerAnswering)).is_empty());
    assert_eq!(posts(&down(&mut sim, 2000)).len(), 1, "a new episode");
    assert_phase!(sim, Phase::Running { stall: None });
}

#[test]
fn the_limit_warning_supersedes_an_unanswered_maximum_warning() {
    let mut s = settings();
    s.max = Some(Duration::from_secs(2 * 3600));
    let mut sim = Sim::new(s).submitted();
    sim.at(0, started(Some(3 * HOUR)));
    let posted = sim.tick_minutes(1, 120);
    assert!(posted
        .iter()
        .any(|(t, m)| *t == 120 && matches!(m.body, Body::TimeoutWarning { .. })));
    assert_phase!(sim, Phase::TimeoutWarned { warning: 1 });
    let a = sim.at(3 * HOUR - 10 * MIN, Event::Tick);
    assert!(a.iter().any(
        |x| matches!(x, Action::Resolve { key: MessageKey::Timeout(1), note, .. }
        if note.contains("scheduler's time limit"))
    ));
    assert!(posts(&a)
        .iter()
        .any(|m| matches!(m.body, Body::LimitWarning { .. }) && m.key == MessageKey::Timeout(2)));
    assert_phase!(sim, Phase::TimeoutWarned { warning: 2 });
}

#[test]
fn a_limit_already_passed_is_not_warned_about_nor_due_again() {
    let mut s = settings();
    s.status_interval = Duration::from_secs(10 * 3600);
    let mut sim = Sim::new(s).submitted();
    sim.at(0, started(Some(HOUR)));
    assert_eq!(sim.m.next_deadline(), Some(at(HOUR - 10 * MIN)));
    // trainwatch was down across the limit: nothing to warn about, and no deadline left
    // behind that would wake it again and again.
    let a = sim.at(HOUR + 60, Event::Tick);
    assert!(!posts(&a)
        .iter()
        .any(|m| matches!(m.body, Body::LimitWarning { .. })));
    assert!(sim.m.next_deadline().unwrap() > at(HOUR + 60));
}

#[test]
fn a_state_stored_before_schedulers_still_loads_and_one_queued_round_trips() {
    let mut sim = Sim::new(settings()).submitted();
    sim.at(0, queued("Priority"));
    let json = serde_json::to_string(&sim.m.state).unwrap();
    assert_eq!(JobState::from_stored(&json).unwrap(), sim.m.state);
    let mut old = serde_json::to_value(&sim.m.state).unwrap();
    let run = old["run"].as_object_mut().unwrap();
    for k in [
        "queue",
        "queued_for",
        "limit_at",
        "limit_warned",
        "extending",
        "resubmits",
        "scheduler_down",
        "previous_log",
    ] {
        assert!(run.remove(k).is_some(), "{k}");
    }
    let back = JobState::from_stored(&old.to_string()).unwrap().run.unwrap();
    assert_eq!((back.queue, back.resubmits, back.limit_at), (None, 0, None));
}

#[test]
fn a_start_heard_again_by_a_re_adopting_supervisor_is_not_told_twice() {
    let mut sim = Sim::new(settings()).submitted();
    sim.at(0, queued("Priority"));
    let a = sim.at(10 * MIN, started(Some(10 * MIN + 2 * HOUR)));
    assert_eq!(posts(&a).len(), 1, "the start is told");
    // The supervisor restarts and its poll finds the job running: the same start.
    let json = serde_json::to_string(&sim.m.state).unwrap();
    let mut sim = Sim {
        m: JobMachine::restore(settings(), serde_json::from_str(&json).unwrap()),
    };
    let a = sim.at(30 * MIN, started(Some(10 * MIN + 2 * HOUR)));
    assert!(posts(&a).is_empty(), "{a:?}");
    // The warning before the limit is still due where it was.
    let posted = sim.tick_minutes(31, 2 * 60 + 10);
    assert_eq!(limit_warnings(&posted), [2 * 60]);
}

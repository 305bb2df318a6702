use std::io::Write;

use super::*;
use crate::watch::follower::FollowState;

/// Keys handed out by one "supervisor": a detector with three incidents and two health
/// signals, then the counter as the store would save it.
fn one_supervisor(saved: u64, used: &[u64], keys: &mut Vec<u64>) -> u64 {
    let mut ids = IncidentKeys::restore(saved, used.iter().copied());
    ids.new_detector();
    for index in 0..3 {
        keys.push(ids.of_detector(index));
        // Asking again for the same incident gives its key, not a new one.
        assert_eq!(ids.of_detector(index), *keys.last().unwrap());
    }
    keys.push(ids.fresh());
    // A second attempt within the same supervisor: a new detector, counting from 0 again.
    ids.new_detector();
    keys.push(ids.of_detector(0));
    keys.push(ids.fresh());
    ids.next()
}

fn all_distinct(keys: &[u64]) -> bool {
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.len() == keys.len()
}

#[test]
fn incident_keys_stay_distinct_across_three_supervisors_in_a_row() {
    let mut keys = Vec::new();
    let mut saved = 0;
    for _ in 0..3 {
        // Saved and restored through the store's JSON, as a restart does.
        let state = PipelineState {
            follow: FollowState::default(),
            next_incident_key: saved,
        };
        let json = serde_json::to_value(&state).unwrap();
        let restored: PipelineState = serde_json::from_value(json).unwrap();
        // Only the saved counter: no help from the keys the engine holds.
        saved = one_supervisor(restored.next_incident_key, &[], &mut keys);
    }
    assert_eq!(keys.len(), 3 * 6);
    assert!(all_distinct(&keys), "{keys:?}");
}

#[test]
fn a_counter_lost_or_never_saved_starts_past_the_keys_the_engine_holds() {
    // An older store: no counter, but the run under way holds keys (some from the old
    // top-bit scheme) and an exit incident of the engine's own.
    let used = [0, 1, (1 << 32) | 2, (1 << 63) | 4, u64::MAX - 2];
    let mut keys = used.to_vec();
    let next = one_supervisor(0, &used, &mut keys);
    assert!(all_distinct(&keys), "{keys:?}");
    assert!(
        next < u64::MAX - u64::from(u32::MAX),
        "never reaches the engine's exit keys"
    );
    // A saved counter ahead of the engine's keys is kept.
    assert_eq!(IncidentKeys::restore(100, [3, 7]).next(), 100);
    assert_eq!(IncidentKeys::restore(0, [3, 7, u64::MAX]).next(), 8);
}

#[test]
fn a_store_holding_the_bare_follow_state_reads_as_counter_zero() {
    let follow = FollowState {
        offset: 1234,
        line_no: 88,
        ..FollowState::default()
    };
    let legacy = serde_json::to_value(&follow).unwrap();
    let state: PipelineState = serde_json::from_value(legacy).unwrap();
    assert_eq!(state.follow, follow);
    assert_eq!(state.next_incident_key, 0);
    // And the new form keeps the follow fields where they were.
    let v = serde_json::to_value(PipelineState {
        follow,
        next_incident_key: 9,
    })
    .unwrap();
    assert_eq!(v["offset"], 1234);
    assert_eq!(v["next_incident_key"], 9);
}

fn config(log: PathBuf) -> PipelineConfig {
    PipelineConfig {
        log,
        detect: DetectConfig::default(),
        metrics: MetricsConfig::default(),
        stall_timeout: None,
        redact: crate::redact::Redactor::default(),
    }
}

/// (key, text) of every new incident in `events`.
fn new_incidents(events: &[Event]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Incident { key, incident } => Some((*key, incident.text.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn three_pipelines_in_a_row_report_each_incident_once_under_its_own_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("train.log");
    let now = Utc::now();
    let mut saved = PipelineState::default();
    let mut seen = Vec::new();
    for n in 0..3 {
        // A new supervisor: restored from what the last one saved.
        let json = serde_json::to_string(&saved).unwrap();
        let mut p = Pipeline::new(config(log.clone()), serde_json::from_str(&json).unwrap(), []);
        if n == 0 {
            p.new_run();
            p.new_attempt(now);
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        writeln!(f, "step {n} ok").unwrap();
        writeln!(
            f,
            "/srv/fit.py:{}: ConvergenceWarning: lbfgs failed to converge after {} iteration(s)",
            10 + n,
            100 * (n + 1)
        )
        .unwrap();
        writeln!(f, "step {n} done").unwrap();
        drop(f);
        let mut events = p.read(now).events;
        events.extend(p.idle());
        let found = new_incidents(&events);
        assert_eq!(found.len(), 1, "supervisor {n}: {found:?}");
        assert!(
            found[0].1.contains(&format!("{} iteration", 100 * (n + 1))),
            "{found:?}"
        );
        seen.extend(found);
        saved = p.state();
    }
    let keys: Vec<u64> = seen.iter().map(|(k, _)| *k).collect();
    assert!(all_distinct(&keys), "{seen:?}");
}

/// The status update's progress says "slow, not hung" when the job's steps advance at a
/// fraction of its own usual pace, and nothing while the pace holds; a stall check meanwhile
/// finds no stall. Time is data: each read is stamped with the simulated clock.
#[test]
fn progress_tells_a_slow_job_from_a_steady_one_by_its_own_pace() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("train.log");
    std::fs::write(&log, "").unwrap();
    let t0 = Utc::now();
    let mut cfg = config(log.clone());
    cfg.stall_timeout = Some(StallAfter::Fixed(Duration::from_secs(600)));
    let mut p = Pipeline::new(cfg, PipelineState::default(), []);
    p.new_run();
    p.new_attempt(t0);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut step = 0;
    let mut run = |p: &mut Pipeline, from_s: i64, to_s: i64, every_s: i64| {
        let mut t = from_s;
        while t < to_s {
            step += 1;
            writeln!(f, "step={step}/100000 loss=0.5").unwrap();
            p.read(t0 + chrono::Duration::seconds(t));
            t += every_s;
        }
    };
    let slowdown = |p: &Pipeline, at_s: i64| {
        let now = t0 + chrono::Duration::seconds(at_s);
        match p.progress(now, Duration::from_secs(at_s as u64), None, None) {
            Event::Progress { progress, .. } => progress.slowdown,
            other => panic!("{other:?}"),
        }
    };
    // 30 minutes at one step every 10 s: steady.
    run(&mut p, 0, 1800, 10);
    assert_eq!(slowdown(&p, 1800), None);
    // Then 20 minutes at one step a minute: six times slower, still advancing.
    run(&mut p, 1800, 3000, 60);
    let slow = slowdown(&p, 3000).expect("slow");
    assert!(slow.rate_per_sec < slow.usual_per_sec / 2.0, "{slow:?}");
    assert!(matches!(
        p.stall_check(t0 + chrono::Duration::seconds(3000)),
        Some(Event::StallEnded)
    ));
    // Silent for longer than the stall timeout: that is a stall, not slowness.
    match p.stall_check(t0 + chrono::Duration::seconds(3000 + 3600)) {
        Some(Event::Stalled { .. }) => {}
        other => panic!("expected a stall, got {other:?}"),
    }
}

/// A job whose only output is a progress bar redrawn with `\r` (no newline for a long
/// time) is talking, not silent: no stall while the bar moves; a stall once it stops.
#[test]
fn a_progress_bar_redrawn_without_newline_is_not_a_silent_job() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("train.log");
    std::fs::write(&log, "loading\n").unwrap();
    let t0 = Utc::now();
    let mut cfg = config(log.clone());
    cfg.stall_timeout = Some(StallAfter::Fixed(Duration::from_secs(60)));
    let mut p = Pipeline::new(cfg, PipelineState::default(), []);
    p.new_run();
    p.new_attempt(t0);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    p.read(at(0));
    for i in 1..=10 {
        write!(f, "\r{:3}%|{}", i * 10, "#".repeat(i)).unwrap();
        p.read(at(i as i64 * 30));
        assert!(
            matches!(p.stall_check(at(i as i64 * 30 + 20)), Some(Event::StallEnded)),
            "redraw {i}"
        );
    }
    // The bar stops moving: silence, measured from its last redraw.
    assert!(matches!(p.read(at(330)).events.as_slice(), []));
    match p.stall_check(at(300 + 61)) {
        Some(Event::Stalled { since, .. }) => assert_eq!(since, at(300)),
        other => panic!("expected a stall, got {other:?}"),
    }
}

/// A wrapped job's stall limit is learnt from its own output cadence: a job that prints every
/// 20 s is called hung after 10 minutes of silence (not the 1 h fallback), and the status
/// update says so — not hung while it talks, "looks hung" once it has been silent past that.
#[test]
fn a_stall_limit_learnt_from_the_cadence_and_the_status_update_says_hung_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("train.log");
    std::fs::write(&log, "").unwrap();
    let t0 = Utc::now();
    let mut cfg = config(log.clone());
    let hour = Duration::from_secs(3600);
    cfg.stall_timeout = Some(StallAfter::Cadence { until_known: hour });
    let mut p = Pipeline::new(cfg, PipelineState::default(), []);
    p.new_run();
    p.new_attempt(t0);
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let progress = |p: &Pipeline, s: i64| match p.progress(at(s), Duration::from_secs(s as u64), None, None) {
        Event::Progress { progress, .. } => progress,
        other => panic!("{other:?}"),
    };
    // Five minutes in: too early to trust a cadence, the fallback holds.
    for k in 1..=15 {
        writeln!(f, "epoch 1 batch {k} loss=0.{k}").unwrap();
        p.read(at(k * 20));
    }
    let early = progress(&p, 300).stall_watch.expect("watched");
    assert_eq!((early.after, early.learnt), (hour, false));
    for k in 16..=60 {
        writeln!(f, "epoch 1 batch {k} loss=0.{k}").unwrap();
        p.read(at(k * 20));
    }
    let learnt = progress(&p, 1200);
    let watch = learnt.stall_watch.expect("watched");
    assert_eq!((watch.after, watch.learnt), (Duration::from_secs(600), true));
    assert_eq!(learnt.hung, None);
    assert!(matches!(p.stall_check(at(1200 + 599)), Some(Event::StallEnded)));
    // Silent 11 minutes: hung by its own measure, long before the 1 h fallback.
    match p.stall_check(at(1200 + 660)) {
        Some(Event::Stalled { since, .. }) => assert_eq!(since, at(1200)),
        other => panic!("expected a stall, got {other:?}"),
    }
    let hung = progress(&p, 1200 + 660).hung.expect("hung");
    assert_eq!(hung.quiet, Duration::from_secs(660));
}

/// The lines of a read, pushed through the [`Batch`] and line by line: the same incidents
/// under the same line numbers, also when numbering restarts (a rotated log) and when the
/// batch fills up mid-read; the newest line shown is the last one with something to show.
#[test]
fn the_batch_gives_the_detector_what_line_by_line_gives() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs");
    let chained = std::fs::read_to_string(fixtures.join("impl_chained.log")).unwrap();
    let oom = std::fs::read_to_string(fixtures.join("res_memoryerror.log")).unwrap();
    // Numbered lines: a filler long enough to fill the batch, a chained traceback, then a
    // rotated log (numbering from 1 again) ending with another error and a blank line.
    let mut lines: Vec<(u64, String)> = Vec::new();
    let filler = format!(
        "step {} loss=0.5\r{}",
        "x".repeat(200),
        " 50%|#####     | 5/10 [00:01<00:01, 5.0it/s]"
    );
    for _ in 0..(BATCH_BYTES / filler.len() + 10) {
        lines.push((lines.len() as u64 + 1, filler.clone()));
    }
    for l in chained.lines() {
        lines.push((lines.len() as u64 + 1, l.to_owned()));
    }
    for (i, l) in oom.lines().enumerate() {
        lines.push((i as u64 + 1, l.to_owned()));
    }
    lines.push((oom.lines().count() as u64 + 1, "   ".to_owned()));

    let cfg = DetectConfig::default();
    let (mut by_line, mut one_by_one) = (Detector::new(cfg.clone()), Vec::new());
    for (no, text) in &lines {
        coalesce(&mut one_by_one, by_line.push_line(*no, text));
    }
    let (mut batched, mut batch, mut findings) = (Detector::new(cfg), Batch::default(), Vec::new());
    batch.start();
    for (no, text) in &lines {
        batch.push(*no, text, &mut batched, &mut findings);
    }
    batch.flush(&mut batched, &mut findings);

    // A region folds an incident's updates into its first finding of the region (the
    // detector's "one finding per incident" rule, over the region): the same incidents are
    // announced in the same order and each ends as line by line leaves it.
    let news = |f: &[Finding]| -> Vec<usize> {
        f.iter()
            .filter(|f| matches!(f, Finding::New { .. }))
            .map(|f| f.index())
            .collect()
    };
    let last = |f: &[Finding], i: usize| -> Incident {
        f.iter()
            .rev()
            .find(|f| f.index() == i)
            .expect("announced")
            .incident()
            .clone()
    };
    assert_eq!(news(&findings), [0, 1], "both errors are found: {findings:?}");
    assert_eq!(news(&findings), news(&one_by_one));
    for i in 0..2 {
        assert_eq!(last(&findings, i), last(&one_by_one, i));
        assert_eq!(last(&findings, i).line, by_line.incidents()[i].line);
    }
    assert_eq!(batched.incidents(), by_line.incidents());
    let (last_no, last_text) = lines.iter().rev().find(|(_, t)| !t.trim().is_empty()).unwrap();
    assert_eq!(
        batch.shown,
        Some((*last_no, display_segment(last_text).to_owned()))
    );
}

#[test]
fn the_batch_shows_a_redrawn_line_as_its_last_redraw() {
    let mut det = Detector::new(DetectConfig::default());
    let (mut batch, mut findings) = (Batch::default(), Vec::new());
    batch.start();
    batch.push(7, " 10%|#   | 1/10\r 20%|##  | 2/10\r", &mut det, &mut findings);
    batch.push(8, "", &mut det, &mut findings);
    batch.flush(&mut det, &mut findings);
    assert_eq!(batch.shown, Some((7, " 20%|##  | 2/10".to_owned())));
}

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
            metrics: None,
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
        metrics: None,
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
    p.metrics_sync();
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
    p.metrics_sync();
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
    p.metrics_sync();
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

/// A backlog read through the pipeline — big windows, lines crossing
/// the windows' edges, an over-long line, CRLF lines, invalid UTF-8, numbering continued
/// over several reads — gives the detector and the metrics what the lines give one by one
/// (as the follower renders them): the same incidents, health signals, metrics and series;
/// and the newest line shown is the last one with something to show.
#[test]
fn a_read_gives_the_detector_and_the_metrics_what_line_by_line_gives() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs");
    let chained = std::fs::read(fixtures.join("impl_chained.log")).unwrap();
    let oom = std::fs::read(fixtures.join("res_memoryerror.log")).unwrap();
    let mut log = Vec::new();
    let mut k = 0u64;
    let mut filler = |log: &mut Vec<u8>, bytes: usize| {
        let goal = log.len() + bytes;
        while log.len() < goal {
            k += 1;
            let line: Vec<u8> = match k % 7 {
                0 => {
                    format!("Epoch 1: {k}%|#| {k}/9000 [00:01<00:09, 5.{k}it/s, loss=0.{k}]\r\n").into_bytes()
                }
                1 => format!("{{'loss': {}.5, 'epoch': 0.{k}}}\n", k % 13).into_bytes(),
                2 => format!(
                    "step={k} loss={}\r \x1b[A 3{k}/9000 [00:0{}<00:01, 9it/s]\n",
                    9000 / k,
                    k % 10
                )
                .into_bytes(),
                3 => b"bad byte \xff\xfe here: loss=0.25\n".to_vec(),
                4 => b"   \n".to_vec(),
                _ => format!("/p/x.py:{k}: UserWarning: noise\n  warnings.warn(\n").into_bytes(),
            };
            log.extend_from_slice(&line);
        }
    };
    filler(&mut log, (3 << 20) + 777);
    log.extend_from_slice(b"loss=nan at a bad step\n");
    let mut long = b"INFO config dump {'loss': 7.5, ".to_vec();
    long.resize(
        crate::watch::follower::HEAD_KEEP + crate::watch::follower::TAIL_KEEP + 5000,
        b'x',
    );
    long.extend_from_slice(b" RuntimeError: at the tail\n");
    log.extend_from_slice(&long);
    filler(&mut log, 1 << 20);
    log.extend_from_slice(&chained);
    filler(&mut log, 300 << 10);
    log.extend_from_slice(&oom);
    log.extend_from_slice(b"   \n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.log");
    std::fs::write(&path, &log).unwrap();

    let now = Utc::now();
    let mut cfg = config(path.clone());
    cfg.metrics.chart = vec!["loss".into(), "epoch".into()];
    let mut p = Pipeline::new(cfg.clone(), PipelineState::default(), []);
    p.follower = Follower::with_options(
        path.clone(),
        FollowState::default(),
        crate::watch::follower::FollowOptions {
            // Several reads, each ending mid-line.
            read_budget: (1 << 20) + 12345,
            ..Default::default()
        },
    );
    // Each next window read ahead on the scanning thread, as the live reader's is.
    p.follower
        .set_read_ahead(std::sync::Arc::new(scanner::OnScanThread));
    p.metrics_sync();
    p.new_attempt(now);
    let (mut events, mut reads) = (Vec::new(), 0);
    loop {
        let r = p.read(now);
        events.extend(r.events);
        reads += 1;
        if !r.more {
            break;
        }
    }
    assert!(reads > 3, "{reads}");

    let mut by_line = Detector::new(cfg.detect.clone());
    let mut filter = MetricLineFilter::new(&cfg.metrics);
    let mut tracker = MetricsTracker::new(cfg.metrics.clone());
    let mut signals = Vec::new();
    let mut last_shown = None;
    let mut f = Follower::new(path, FollowState::default());
    while f
        .read_available(|l| {
            by_line.push_line(l.no, &l.text);
            if filter.wants(&l.text) {
                signals.extend(tracker.push_line(&l.text, now).into_iter().map(|s| (l.no, s)));
            }
            let shown = display_segment(&l.text);
            if !shown.trim().is_empty() {
                last_shown = Some((l.no, shown.to_owned()));
            }
        })
        .unwrap()
        .more
    {}

    assert_eq!(p.detector.incidents(), by_line.incidents());
    assert!(by_line.incidents().len() >= 2, "{:?}", by_line.incidents());
    let fast = p.metrics.tracker();
    // Debug form: a NaN is equal to itself there.
    assert_eq!(
        format!("{:?}", fast.snapshot()),
        format!("{:?}", tracker.snapshot())
    );
    for name in ["loss", "epoch"] {
        assert_eq!(
            format!("{:?}", fast.series(name)),
            format!("{:?}", tracker.series(name))
        );
    }
    assert!(tracker.series("loss").unwrap().raw_len() > 10_000);
    // Each non-finite loss is reported at its line (as the detector's incident when it
    // reported that line too).
    let reported: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Incident { incident, .. } => Some(incident.line),
            _ => None,
        })
        .collect();
    let want: Vec<u64> = signals
        .iter()
        .filter(|(_, s)| matches!(s, HealthSignal::LossNonFinite { .. }))
        .map(|(no, _)| *no)
        .collect();
    assert!(!want.is_empty());
    assert!(
        want.iter().all(|no| reported.contains(no)),
        "{want:?} in {reported:?}"
    );
    let activity = events.iter().rev().find_map(|e| match e {
        Event::LogActivity { last_line, line_no } => Some((*line_no, last_line.clone())),
        _ => None,
    });
    assert_eq!(activity, last_shown);
}

#[test]
fn a_redrawn_line_shows_as_its_last_redraw() {
    let region = b" 10%|#   | 1/10\r 20%|##  | 2/10\r\n\n";
    assert_eq!(
        newest_shown(7, 2, region),
        Some((7, " 20%|##  | 2/10".to_owned()))
    );
    assert_eq!(newest_shown(7, 2, b"\r\n  \n"), None);
    assert_eq!(
        newest_shown(3, 1, b"a \xff\r\n"),
        Some((3, "a \u{FFFD}".to_owned()))
    );
}

/// The metrics tracker reads behind the detector, on its own thread; what is saved is its
/// position after the last findings it handed over. A supervisor that stopped with the
/// tracker behind (the reader at the end, the tracker at the start) leaves that stretch to
/// the next one, which reads it without waiting for the log to grow: a non-finite loss there
/// is reported once — by the next supervisor when nobody had, not again when it was filed.
#[test]
fn a_restart_with_the_tracker_behind_reports_a_non_finite_loss_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("train.log");
    let mut text = String::new();
    for k in 0..20_000 {
        text.push_str(&format!("step {k}: loss=0.{k}\n"));
    }
    text.push_str("step 20000: loss=nan\n");
    for k in 0..100 {
        text.push_str(&format!("step {k}: done\n"));
    }
    std::fs::write(&log, &text).unwrap();
    let nan_line = 20_001;
    let now = Utc::now();
    let on_line = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Incident { incident, .. } if incident.line == nan_line))
            .count()
    };

    // The first supervisor reads everything, its tracker too.
    let mut p1 = Pipeline::new(config(log.clone()), PipelineState::default(), []);
    p1.metrics_sync();
    p1.new_run();
    p1.new_attempt(now);
    let first = p1.read(now).events;
    assert_eq!(on_line(&first), 1, "{first:?}");
    let at_end = p1.state();
    assert_eq!(at_end.metrics.as_ref(), Some(&at_end.follow));
    drop(p1);

    // Saved with the tracker still at the start.
    let behind = PipelineState {
        metrics: Some(FollowState::default()),
        ..at_end.clone()
    };
    let json = serde_json::to_string(&behind).unwrap();
    let restored: PipelineState = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, behind);
    // Nobody had filed it: the next supervisor's tracker does.
    let mut p2 = Pipeline::new(config(log.clone()), restored.clone(), []);
    p2.metrics.settle();
    let second = p2.read(now).events;
    assert_eq!(on_line(&second), 1, "{second:?}");
    assert_eq!(p2.state().metrics.as_ref(), Some(&at_end.follow));
    // It was filed (the engine holds it): not again.
    let mut p3 = Pipeline::new(config(log), restored, [0]);
    p3.restore_filed([nan_line]);
    p3.metrics.settle();
    let third = p3.read(now).events;
    assert_eq!(on_line(&third), 0, "{third:?}");
}

/// A window large enough that its scan is shared with the scanning thread gives the
/// detector's findings, incidents and newest shown line of the one-thread path: every
/// fixture log of the corpus placed so that region boundaries fall within it, in a window
/// with a line the follower rendered on its own.
#[test]
fn a_window_scanned_on_two_threads_gives_what_one_thread_gives() {
    let mut filler = Vec::new();
    let mut k = 0;
    while filler.len() < scanner::REGION + 333 {
        k += 1;
        filler.extend_from_slice(format!("step {k} loss=0.{k} lr 1e-4 tokens/s 4000\n").as_bytes());
    }
    let mut logs = 0;
    crate::watch::detect::for_each_fixture(|log| {
        logs += 1;
        let mut window = filler[..filler.len() - (log.len() / 2).min(filler.len() / 2)].to_vec();
        let at = window.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        window.truncate(at);
        window.extend_from_slice(log);
        if !window.ends_with(b"\n") {
            window.push(b'\n');
        }
        window.extend_from_slice(&filler);
        let first_run = window.len();
        window.extend_from_slice(&filler);
        window.extend_from_slice(log);
        if !window.ends_with(b"\n") {
            window.push(b'\n');
        }
        let buf: ReadBuf = std::sync::Arc::new(window);
        let run1 = &buf[..first_run];
        let run2 = &buf[first_run..];
        let n1 = crate::watch::follower::lines(1, run1).count() as u64;
        let text = "RuntimeError: a line the follower rendered";
        let chunks = [
            Chunk::Lines {
                first: 1,
                bytes: run1,
            },
            Chunk::Line(crate::watch::follower::LineRef {
                no: n1 + 1,
                text,
                cut: false,
            }),
            Chunk::Lines {
                first: n1 + 2,
                bytes: run2,
            },
        ];
        let mut two = Detector::new(DetectConfig::default());
        let mut two_out = Vec::new();
        let shown = detect(&mut two, &chunks, &buf, &mut Vec::new(), &mut two_out);
        let mut one = Detector::new(DetectConfig::default());
        let mut one_out = Vec::new();
        one.push_region(1, run1, &mut one_out);
        one.push_region(n1 + 1, format!("{text}\n").as_bytes(), &mut one_out);
        let n2 = one.push_region(n1 + 2, run2, &mut one_out);
        assert_eq!(two_out, one_out);
        assert_eq!(two.incidents(), one.incidents());
        assert_eq!(shown, newest_shown(n1 + 2, n2, run2));
    });
    assert!(logs > 100, "{logs} fixture logs");
}

#[test]
fn a_run_is_cut_into_regions_of_whole_lines() {
    let mut run = Vec::new();
    let mut k = 0;
    while run.len() < 3 * scanner::REGION + 1000 {
        k += 1;
        run.extend_from_slice(format!("line {k}\n").as_bytes());
    }
    let regions: Vec<&[u8]> = cut(&run).collect();
    assert_eq!(regions.len(), 4);
    assert_eq!(regions.concat(), run);
    for r in &regions {
        assert!(r.ends_with(b"\n"));
        assert!(r.len() <= scanner::REGION + 16);
    }
    assert_eq!(cut(b"").count(), 0);
    assert_eq!(cut(b"a\n").collect::<Vec<_>>(), vec![b"a\n"]);
}

/// The trackers give way to a reader working through a backlog, but only a round at a
/// time: with a reader behind for the whole test, a tracker still reads a backlog of several
/// rounds to its end.
#[test]
fn a_tracker_still_reads_its_backlog_while_a_reader_stays_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.log");
    let mut log = Vec::new();
    let mut k = 0;
    while log.len() < 9 << 20 {
        k += 1;
        log.extend_from_slice(format!("step {k} loss=0.{k} lr 1e-4\n").as_bytes());
    }
    std::fs::write(&path, &log).unwrap();
    let behind = worker::reader_behind();
    let w = MetricsWorker::start(path.clone(), FollowState::default(), &config(path).metrics);
    w.poke(Utc::now());
    w.settle();
    let batches = w.take_all();
    assert!(batches.len() >= 3, "{} rounds", batches.len());
    assert_eq!(batches.last().unwrap().state.offset, log.len() as u64);
    assert!(batches.iter().all(|b| b.fed));
    drop(behind);
}

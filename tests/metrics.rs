//! Metric extraction on real training logs (see tests/fixtures/metrics/), progress/ETA maths
//! and stall detection, with time passed in as data.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use trainwatch::model::{Category, Severity};
use trainwatch::watch::metrics::{HealthSignal, MetricsConfig, MetricsSnapshot, MetricsTracker};
use trainwatch::watch::progress::{
    progress, projected_overrun, Pace, ProgressBasis, Slowdown, StallDetector, StallKind,
};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/metrics/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    String::from_utf8(bytes).expect("fixture is UTF-8")
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn at(secs: f64) -> DateTime<Utc> {
    t0() + chrono::Duration::milliseconds((secs * 1000.0) as i64)
}

fn feed_all(tracker: &mut MetricsTracker, log: &str) -> Vec<HealthSignal> {
    log.lines()
        .enumerate()
        .flat_map(|(i, l)| tracker.push_line(l, at(i as f64)))
        .collect()
}

const MIN: u64 = 60;

#[test]
fn tqdm_log_gives_step_total_rate_and_postfix_loss() {
    let log = fixture("tqdm_bar.log");
    // The whole bar is one "line" of '\r' redraws, as a log follower would hand it over.
    let mut tracker = MetricsTracker::new(MetricsConfig::default());
    let signals = feed_all(&mut tracker, &log);
    assert!(signals.is_empty(), "{signals:?}");
    let snap = tracker.snapshot();
    assert_eq!(snap.step, Some(200));
    assert_eq!(snap.total, Some(200));
    // All redraws arrived at once, so the bar's own rate (≈450 it/s) is the one reported.
    let rate = snap.rate_per_sec.expect("rate");
    assert!((300.0..600.0).contains(&rate), "rate {rate}");
    assert_eq!(snap.latest.get("loss"), Some(&0.1213));
    let loss = tracker.series("loss").expect("loss is charted by default");
    // The postfix shows the loss from step 10 on (191 redraws) and tqdm redraws once more
    // when the bar closes.
    assert_eq!(loss.raw_len(), 192);
    assert_eq!(loss.points().first(), Some(&(10.0, 1.743)));
}

#[test]
fn tqdm_redraws_fed_one_by_one_track_the_bar_and_measure_the_rate() {
    let log = fixture("tqdm_bar.log");
    let mut tracker = MetricsTracker::new(MetricsConfig::default());
    let mut seen_57 = false;
    // One redraw every half second: the measured rate must come out at 2 steps/s.
    for (i, seg) in log.split('\r').enumerate() {
        tracker.push_line(seg, at(i as f64 * 0.5));
        if seg.contains("| 57/200 [") {
            let snap = tracker.snapshot();
            assert_eq!((snap.step, snap.total), (Some(57), Some(200)));
            let p = progress(&snap, Duration::from_secs(30), None);
            assert_eq!(p.basis, Some(ProgressBasis::Steps));
            assert!((p.percent.unwrap() - 28.5).abs() < 1e-9);
            let eta = p.eta.unwrap().as_secs_f64();
            assert!((eta - 143.0 / 2.0).abs() < 1.0, "eta {eta}");
            seen_57 = true;
        }
    }
    assert!(seen_57);
    let rate = tracker.snapshot().rate_per_sec.unwrap();
    assert!((rate - 2.0).abs() < 0.05, "rate {rate}");
}

#[test]
fn hf_trainer_dicts_and_json_lines_give_series_latest_and_a_nan_signal() {
    let log = fixture("hf_trainer_style.log");
    let cfg = MetricsConfig {
        chart: vec!["loss".into(), "val_loss".into()],
        ..MetricsConfig::default()
    };
    let mut tracker = MetricsTracker::new(cfg);
    let signals = feed_all(&mut tracker, &log);

    assert_eq!(signals.len(), 1, "{signals:?}");
    match &signals[0] {
        HealthSignal::LossNonFinite { key, line, value } => {
            assert_eq!(key, "loss");
            assert_eq!(value, "nan");
            assert!(line.starts_with("{'loss': nan"), "{line}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let incident = signals[0].to_incident(45);
    assert_eq!(incident.category, Category::Convergence);
    assert_eq!(incident.severity, Severity::Fatal);
    assert_eq!(incident.line, 45);

    let loss = tracker.series("loss").unwrap();
    assert_eq!(loss.raw_len(), 41);
    assert_eq!(loss.nonfinite(), 1);
    let ys: Vec<f64> = loss
        .points()
        .iter()
        .map(|p| p.1)
        .filter(|y| y.is_finite())
        .collect();
    assert_eq!(ys.len(), 40);
    assert_eq!(ys[0], 0.6684);
    assert!(ys.windows(2).all(|w| w[1] < w[0]), "loss falls over the run");
    assert!(loss.points().last().unwrap().1.is_nan(), "the NaN shows as a gap");
    let xs: Vec<f64> = loss.points().iter().take(40).map(|p| p.0).collect();
    let expected: Vec<f64> = (1..=40).map(|i| f64::from(i) * 10.0).collect();
    assert_eq!(
        xs, expected,
        "records between bar redraws are placed at the bar's step"
    );

    let val = tracker.series("val_loss").unwrap();
    let steps: Vec<f64> = val.points().iter().map(|p| p.0).collect();
    assert_eq!(steps, [100.0, 200.0, 300.0, 400.0], "JSON lines carry their step");

    let snap = tracker.snapshot();
    assert_eq!((snap.step, snap.total), (Some(400), Some(400)));
    assert_eq!(snap.latest.get("learning_rate"), Some(&0.0));
    assert_eq!(snap.latest.get("train_loss"), Some(&0.2512));
    assert_eq!(snap.latest.get("val_acc"), Some(&0.9318));
    assert!(snap.convergence.is_none());
}

#[test]
fn pymc_log_gives_chains_draws_divergences_rhat_and_ess() {
    let log = fixture("pymc_sample.log");
    let mut tracker = MetricsTracker::new(MetricsConfig::default());
    feed_all(&mut tracker, &log);
    let conv = tracker.snapshot().convergence.expect("convergence facts");
    assert_eq!(conv.chains, Some(2));
    assert_eq!(conv.draws, Some(150));
    assert_eq!(conv.tune, Some(50));
    assert_eq!(conv.samples(), Some(300));
    assert_eq!(conv.divergences, Some(5));
    assert_eq!(conv.max_rhat, Some(1.071));
    assert_eq!(conv.min_ess, Some(20.476));
    assert_eq!(
        conv.summary(),
        "2 chains × 150 draws = 300 samples; max R-hat 1.071; min ESS 20; 5 divergences"
    );
}

#[test]
fn lightning_bar_postfix_and_key_value_lines() {
    let mut tracker = MetricsTracker::new(MetricsConfig::default());
    tracker.push_line(
        "Epoch 1:  45%|████▌     | 45/100 [00:01<00:02, 25.00it/s, v_num=0, train_loss=0.693]",
        at(0.0),
    );
    tracker.push_line("2026-01-01 10:00:05 INFO step: 7 loss: 1.25 acc=0.5", at(1.0));
    let snap = tracker.snapshot();
    assert_eq!(snap.latest.get("train_loss"), Some(&0.693));
    assert_eq!(snap.latest.get("loss"), Some(&1.25));
    assert_eq!(snap.latest.get("acc"), Some(&0.5));
    assert_eq!(snap.step, Some(7), "the latest step source wins");
    assert!(!snap.latest.contains_key("Epoch"));
}

#[test]
fn a_bar_without_total_still_gives_the_step() {
    let mut tracker = MetricsTracker::new(MetricsConfig::default());
    tracker.push_line("570it [00:10, 55.10it/s]\r1140it [00:20, 57.00it/s]", at(0.0));
    let snap = tracker.snapshot();
    assert_eq!((snap.step, snap.total), (Some(1140), None));
    assert_eq!(snap.rate_per_sec, Some(57.0));
    let p = progress(&snap, Duration::from_secs(20), Some(Duration::from_secs(80)));
    assert_eq!((p.basis, p.percent), (Some(ProgressBasis::Time), Some(25.0)));
}

#[test]
fn slow_bars_in_seconds_per_iteration_give_a_rate_below_one() {
    let mut tracker = MetricsTracker::new(MetricsConfig::default());
    tracker.push_line(" 3%|▎         | 3/100 [00:12<06:28, 4.00s/it]", at(0.0));
    let snap = tracker.snapshot();
    assert_eq!(snap.rate_per_sec, Some(0.25));
}

#[test]
fn loss_nan_and_inf_signal_once_until_finite_again() {
    let mut tracker = MetricsTracker::new(MetricsConfig::default());
    let mut signals = Vec::new();
    for (i, line) in [
        "loss=0.5",
        "loss=nan",
        "loss=nan",
        "loss=0.4",
        "loss=inf",
        "val_loss: -inf",
    ]
    .iter()
    .enumerate()
    {
        signals.extend(tracker.push_line(line, at(i as f64)));
    }
    let got: Vec<(String, String)> = signals
        .iter()
        .map(|s| match s {
            HealthSignal::LossNonFinite { key, value, .. } => (key.clone(), value.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("loss".to_owned(), "nan".to_owned()),
            ("loss".to_owned(), "inf".to_owned()),
            ("val_loss".to_owned(), "-inf".to_owned()),
        ]
    );
    // A metric that merely is NaN (not a loss) raises nothing.
    assert!(tracker.push_line("grad_norm=nan", at(9.0)).is_empty());
}

#[test]
fn a_best_so_far_loss_still_at_infinity_is_no_signal() {
    let mut tracker = MetricsTracker::new(MetricsConfig::default());
    assert!(tracker
        .push_line("early stopping: best_val_loss=inf patience 0/3", at(0.0))
        .is_empty());
    // A NaN best is no start value.
    assert_eq!(tracker.push_line("best_val_loss=nan", at(1.0)).len(), 1);
}

fn divergence_signals(factor: f64, losses: &[f64]) -> Vec<HealthSignal> {
    let cfg = MetricsConfig {
        diverge_factor: factor,
        ..MetricsConfig::default()
    };
    let mut tracker = MetricsTracker::new(cfg);
    losses
        .iter()
        .enumerate()
        .flat_map(|(i, l)| tracker.push_line(&format!("step={i} loss={l}"), at(i as f64)))
        .collect()
}

#[test]
fn loss_diverging_past_the_factor_warns_once_per_episode() {
    let losses = [1.0, 0.5, 0.4, 1.3, 1.5, 0.6, 1.25];
    let signals = divergence_signals(3.0, &losses);
    assert_eq!(
        signals,
        [
            HealthSignal::LossDiverging {
                key: "loss".into(),
                value: 1.3,
                running_min: 0.4
            },
            HealthSignal::LossDiverging {
                key: "loss".into(),
                value: 1.25,
                running_min: 0.4
            },
        ]
    );
    assert_eq!(signals[0].severity(), Severity::Warning);
    assert!(signals[0].describe().contains("diverging"));
    assert!(divergence_signals(5.0, &losses).is_empty());
}

#[test]
fn configured_step_total_and_extra_regexes() {
    let mut cfg = MetricsConfig {
        step_key: Some("it".into()),
        total_key: Some("max_it".into()),
        chart: vec!["acc".into()],
        ..MetricsConfig::default()
    };
    // The config checked the regex (one capture group: the value).
    cfg.extra.push((
        "acc".into(),
        regex::Regex::new(r"accuracy (\d+(?:\.\d+)?)%").unwrap(),
    ));

    let mut tracker = MetricsTracker::new(cfg);
    tracker.push_line("it=10 max_it=500 eval accuracy 71.5% ", at(0.0));
    // A tqdm bar does not override the configured step key.
    tracker.push_line(" 50%|█████     | 5/10 [00:01<00:01, 5.0it/s]", at(1.0));
    tracker.push_line("it=20 accuracy 74% loss=0.1", at(2.0));
    let snap = tracker.snapshot();
    assert_eq!((snap.step, snap.total), (Some(20), Some(500)));
    assert_eq!(snap.latest.get("acc"), Some(&74.0));
    let acc: Vec<(f64, f64)> = tracker.series("acc").unwrap().points();
    assert_eq!(acc, [(10.0, 71.5), (20.0, 74.0)]);
    assert!(
        tracker.series("loss").is_none(),
        "only configured metrics are charted"
    );
}

#[test]
fn hostile_input_neither_panics_nor_grows_memory() {
    let mut tracker = MetricsTracker::new(MetricsConfig::default());
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for i in 0..2_000u64 {
        let mut bytes = Vec::new();
        for _ in 0..(seed % 200) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let alphabet = b"{}[]()'\":=,|/%\r\x1b 0123456789.eEnaifloss_k";
            bytes.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
        }
        let line = String::from_utf8_lossy(&bytes).into_owned();
        tracker.push_line(&line, at(i as f64));
        tracker.push_line(&format!("metric_{i}={i}"), at(i as f64));
    }
    tracker.push_line(&"loss=1 ".repeat(200_000), at(5000.0));
    tracker.push_line(&"{'a': ".repeat(50_000), at(5001.0));
    tracker.push_line("\u{1b}[", at(5002.0));
    let snap = tracker.snapshot();
    assert!(snap.latest.len() <= 256, "{} keys kept", snap.latest.len());
}

fn snap(step: Option<u64>, total: Option<u64>, rate: Option<f64>) -> MetricsSnapshot {
    MetricsSnapshot {
        step,
        total,
        rate_per_sec: rate,
        ..MetricsSnapshot::default()
    }
}

#[test]
fn progress_from_steps_with_and_without_a_rate() {
    let p = progress(
        &snap(Some(250), Some(1000), Some(5.0)),
        Duration::from_secs(50),
        None,
    );
    assert_eq!(p.percent, Some(25.0));
    assert_eq!(p.eta, Some(Duration::from_secs(150)));

    // No rate yet: the pace so far (250 steps in 100 s) is extrapolated.
    let p = progress(&snap(Some(250), Some(1000), None), Duration::from_secs(100), None);
    assert_eq!(p.eta, Some(Duration::from_secs(300)));

    let p = progress(
        &snap(Some(1000), Some(1000), None),
        Duration::from_secs(100),
        None,
    );
    assert_eq!((p.percent, p.eta), (Some(100.0), Some(Duration::ZERO)));
}

#[test]
fn progress_from_time_when_the_log_has_no_total() {
    let expected = Some(Duration::from_secs(120 * MIN));
    let p = progress(
        &snap(Some(42), None, None),
        Duration::from_secs(30 * MIN),
        expected,
    );
    assert_eq!(p.basis, Some(ProgressBasis::Time));
    assert_eq!(p.percent, Some(25.0));
    assert_eq!(p.eta, Some(Duration::from_secs(90 * MIN)));

    let late = progress(&snap(None, None, None), Duration::from_secs(150 * MIN), expected);
    assert_eq!((late.percent, late.eta), (Some(100.0), None));

    let unknown = progress(&snap(None, None, None), Duration::from_secs(60), None);
    assert_eq!((unknown.percent, unknown.basis), (None, None));
}

#[test]
fn projected_overrun_warns_ahead_of_the_timeout() {
    // One hour in, a quarter done at a steady 1000 steps/h: three more hours to go.
    let p = progress(
        &snap(Some(1000), Some(4000), Some(1000.0 / 3600.0)),
        Duration::from_secs(60 * MIN),
        None,
    );
    let elapsed = Duration::from_secs(60 * MIN);
    let over = projected_overrun(&p, elapsed, Some(Duration::from_secs(210 * MIN))).unwrap();
    assert!((over.as_secs_f64() - 30.0 * 60.0).abs() < 1.0, "{over:?}");
    assert_eq!(
        projected_overrun(&p, elapsed, Some(Duration::from_secs(300 * MIN))),
        None
    );
    assert_eq!(projected_overrun(&p, elapsed, None), None);
}

/// Lines and steps every `every` seconds from `from` to `to` (exclusive), counting on from `step`.
fn run_steps(d: &mut StallDetector, from: u64, to: u64, every: u64, step: &mut u64) {
    let mut t = from;
    while t < to {
        *step += 1;
        d.line_seen(at(t as f64), &format!("step {step}"));
        d.step_seen(at(t as f64), *step);
        t += every;
    }
}

#[test]
fn silence_past_the_stall_timeout_is_a_no_output_stall() {
    let mut d = StallDetector::new(Duration::from_secs(10 * MIN), t0());
    let mut step = 0;
    run_steps(&mut d, 0, 5 * MIN, 30, &mut step);
    let last = at((5 * MIN - 30) as f64);
    assert_eq!(d.check(at((10 * MIN) as f64), true), None);
    let stall = d.check(at((16 * MIN) as f64), true).expect("stall");
    assert_eq!(stall.kind, StallKind::NoOutput);
    assert_eq!(stall.since, last);
    assert_eq!(stall.last_line.as_deref(), Some("step 10"));
    assert_eq!(
        d.check(at((16 * MIN) as f64), false),
        None,
        "a dead process is no stall"
    );

    // Nothing at all since the start is a stall too.
    let fresh = StallDetector::new(Duration::from_secs(10 * MIN), t0());
    assert_eq!(fresh.check(at((11 * MIN) as f64), true).unwrap().since, t0());
}

#[test]
fn lines_without_step_advance_is_a_no_progress_stall() {
    let mut d = StallDetector::new(Duration::from_secs(10 * MIN), t0());
    let mut step = 0;
    run_steps(&mut d, 0, 5 * MIN, 30, &mut step);
    for t in (5 * MIN..20 * MIN).step_by(30) {
        d.line_seen(at(t as f64), "WARNING: retrying data loader");
        d.step_seen(at(t as f64), step);
    }
    let stall = d.check(at((20 * MIN) as f64), true).expect("stall");
    assert_eq!(stall.kind, StallKind::NoProgress);
    assert_eq!(stall.since, at((5 * MIN - 30) as f64));
}

#[test]
fn a_slowdown_is_slow_not_stalled() {
    let mut d = StallDetector::new(Duration::from_secs(10 * MIN), t0());
    let mut step = 0;
    run_steps(&mut d, 0, 30 * MIN, 10, &mut step);
    assert!(matches!(d.pace(at((30 * MIN) as f64), true), Pace::Steady { .. }));
    // Six times slower for 20 minutes: still moving.
    run_steps(&mut d, 30 * MIN, 50 * MIN, 60, &mut step);
    let now = at((50 * MIN) as f64);
    assert_eq!(d.check(now, true), None);
    match d.pace(now, true) {
        Pace::Slow(Slowdown {
            rate_per_sec,
            usual_per_sec,
        }) => {
            assert!((rate_per_sec - 1.0 / 60.0).abs() < 0.005, "{rate_per_sec}");
            assert!(usual_per_sec > 0.05, "{usual_per_sec}");
        }
        other => panic!("expected slow, got {other:?}"),
    }
}

#[test]
fn steps_longer_than_the_stall_timeout_are_not_hung() {
    let mut d = StallDetector::new(Duration::from_secs(10 * MIN), t0());
    let mut step = 0;
    // One step (and one line) every 20 minutes: 4 steps.
    run_steps(&mut d, 0, 80 * MIN, 20 * MIN, &mut step);
    let last = 60 * MIN;
    assert_eq!(d.check(at((last + 30 * MIN) as f64), true), None);
    let stall = d.check(at((last + 61 * MIN) as f64), true).expect("3 usual gaps");
    assert_eq!(stall.kind, StallKind::NoOutput);
}

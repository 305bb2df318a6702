//! Criterion micro-benchmarks of the hot paths every log byte goes through: line splitting
//! in the follower, detector matching (line by line as the live watcher may, and the bulk
//! path triage takes), and metric parsing. The end-to-end figures (latency, throughput
//! against grep/ripgrep, memory, idle cost) come from `bench/run.sh`.

use std::hint::black_box;
use std::io::{Cursor, Write};

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trainwatch::watch::detect::{DetectConfig, Detector, RegionScan};
use trainwatch::watch::follower::{FollowState, Follower};
use trainwatch::watch::metrics::{MetricsConfig, MetricsTracker};
use trainwatch::watch::triage::analyse_reader;

/// A training log of about `bytes`: metric lines, `\r` progress bars, dict records,
/// warnings and lines that mention errors without being errors; deterministic.
fn training_log(bytes: usize) -> Vec<u8> {
    const WARN: &str = "/opt/conda/lib/python3.11/site-packages/torch/utils/data/dataloader.py:558: UserWarning: This DataLoader will create 16 worker processes in total.";
    const TRAP: &str =
        "eval | MeanSquaredError=0.02315 MeanAbsoluteError=0.1104 | Failed: 0 | no RuntimeError";
    let mut out = Vec::with_capacity(bytes + 512);
    let mut step = 0u64;
    while out.len() < bytes {
        step += 1;
        let r = step.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54;
        let _ = match r % 20 {
            0..=10 => writeln!(
                out,
                "2026-11-28 03:{:02}:{:02},{:03} INFO train.py:212 - step {step}/500000 | loss {:.4} | lr 3.00e-04 | grad_norm {:.4} | tokens/s {}",
                (step / 60) % 60,
                step % 60,
                r % 1000,
                4.0 / (1.0 + step as f64 / 2000.0),
                0.5 + (r % 100) as f64 / 100.0,
                40_000 + r * 7
            ),
            11..=13 => {
                for i in 0..8 {
                    let _ = write!(
                        out,
                        "Epoch 3:  {}%|████      | {}/1000 [00:12<00:15, 36.1it/s, loss=0.43]\r",
                        40 + i,
                        400 + i * 10
                    );
                }
                writeln!(out)
            }
            14..=15 => writeln!(
                out,
                "{{'loss': {:.4}, 'learning_rate': 2e-05, 'epoch': {:.2}}}",
                0.3 + (r % 50) as f64 / 100.0,
                step as f64 / 5000.0
            ),
            16 => writeln!(out, "{WARN}"),
            17 => writeln!(out, "{TRAP}"),
            _ => writeln!(
                out,
                "2026-11-28 03:00:00,000 INFO trainer.py:88 - Saving checkpoint to output/models/step_{step}.pt"
            ),
        };
    }
    out
}

fn lines(log: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(log).lines().map(str::to_owned).collect()
}

fn follower(c: &mut Criterion) {
    let log = training_log(32 << 20);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("train.log");
    std::fs::write(&path, &log).expect("write log");
    let mut g = c.benchmark_group("follower");
    g.throughput(Throughput::Bytes(log.len() as u64));
    g.sample_size(10);
    g.bench_function("read_available_with 32 MiB", |b| {
        b.iter(|| {
            let mut f = Follower::new(path.clone(), FollowState::default());
            let mut n = 0u64;
            loop {
                let st = f.read_available_with(|l| n += l.text.len() as u64).expect("read");
                if !st.more {
                    break;
                }
            }
            black_box(n)
        })
    });
    // What the live pipeline takes: whole lines as raw regions, nothing decoded.
    g.bench_function("read_windows 32 MiB", |b| {
        b.iter(|| {
            let mut f = Follower::new(path.clone(), FollowState::default());
            let mut n = 0u64;
            loop {
                let st = f
                    .read_windows(|chunks| n += chunks.iter().map(|c| c.len() as u64).sum::<u64>())
                    .expect("read");
                if !st.more {
                    break;
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

fn detect(c: &mut Criterion) {
    let log = training_log(8 << 20);
    let text = lines(&log);
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Bytes(log.len() as u64));
    g.sample_size(10);
    g.bench_function("push_line, 8 MiB line by line", |b| {
        b.iter(|| {
            let mut d = Detector::new(DetectConfig::default());
            let mut found = 0usize;
            for (i, l) in text.iter().enumerate() {
                found += d.push_line(i as u64 + 1, l).len();
            }
            black_box(found)
        })
    });
    g.bench_function("analyse_reader (bulk prefilter), 8 MiB", |b| {
        b.iter(|| {
            let r = analyse_reader(Cursor::new(&log), DetectConfig::default(), None).expect("in-memory read");
            black_box(r)
        })
    });
    // Triage's two threads' shares of that work: the scan (a function of the bytes) and the
    // detector on scanned lines.
    g.bench_function("RegionScan::of (triage's scanning thread), 8 MiB", |b| {
        b.iter(|| black_box(RegionScan::of(&log)))
    });
    let scan = RegionScan::of(&log);
    g.bench_function("push_scanned (triage's detector thread), 8 MiB", |b| {
        b.iter(|| {
            let mut d = Detector::new(DetectConfig::default());
            let mut out = Vec::new();
            black_box(d.push_scanned(1, &log, &scan, &mut out))
        })
    });
    g.finish();
}

fn metrics(c: &mut Criterion) {
    let log = training_log(4 << 20);
    let text = lines(&log);
    let at = Utc::now();
    let mut g = c.benchmark_group("metrics");
    g.throughput(Throughput::Bytes(log.len() as u64));
    g.sample_size(10);
    g.bench_function("push_line, 4 MiB", |b| {
        b.iter(|| {
            let mut m = MetricsTracker::new(MetricsConfig::default());
            let mut signals = 0usize;
            for l in &text {
                signals += m.push_line(l, at).len();
            }
            black_box((signals, m.step()))
        })
    });
    g.finish();
}

criterion_group!(benches, follower, detect, metrics);
criterion_main!(benches);

//! The references trainwatch's detection latency is compared with, measured for real on the
//! same job (`inject`, writing ordinary lines at a rate and a fresh traceback per trigger):
//! - `poll`: the protocol's reference watcher — every `poll_secs` (60 s in the protocol) it
//!   re-reads the whole log (`readlines()`), checks the lines that are new since the last
//!   poll for the protocol's error substrings, and reports each hit. (The protocol's loop
//!   returns at its first hit; this one goes on, so that several injections can be timed in
//!   one bounded run.)
//! - `tail-grep`: `tail -F LOG | grep --line-buffered` with the same substrings.
//!
//! A report's latency is from the job's stamp just before it wrote the root cause's line to
//! the moment the watcher saw that line (the `KeyError` line carrying the injection's token).

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::gen::letters;
use crate::jobs::mkfifo;
use crate::orch::stats;
use crate::probe::mono_ns;

/// The protocol's `error_patterns`, matched as substrings as it does.
const PATTERNS: [&str; 10] = [
    "Error",
    "Exception",
    "Traceback",
    "Failed",
    "AttributeError",
    "KeyError",
    "ValueError",
    "TypeError",
    "RuntimeError",
    "MemoryError",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Watcher {
    Poll,
    TailGrep,
}

#[derive(Debug, clap::Args)]
pub struct RefLatencyArgs {
    #[arg(long, value_enum)]
    pub watcher: Watcher,
    /// A scratch folder (created; left for the caller to remove).
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub injections: u64,
    /// Time between injections.
    #[arg(long, default_value_t = 1000)]
    pub spacing_ms: u64,
    /// The reference watcher's poll interval (the protocol's is 60 s).
    #[arg(long, default_value_t = 60)]
    pub poll_secs: u64,
    /// The job's ordinary output rate.
    #[arg(long, value_parser = crate::jobs::parse_size, default_value = "1M")]
    pub rate: u64,
    /// Prefix of the printed keys (`LABEL_p50_ms=…`).
    #[arg(long)]
    pub label: String,
}

/// Sightings of the watched lines: (CLOCK_MONOTONIC ns, line).
type Seen = mpsc::Receiver<(u64, String)>;

pub fn latency(a: &RefLatencyArgs) -> io::Result<()> {
    fs::create_dir_all(&a.dir)?;
    let fifo = a.dir.join("trigger");
    let stamps = a.dir.join("stamps");
    let log = a.dir.join("job.log");
    for p in [&fifo, &stamps, &log] {
        let _ = fs::remove_file(p);
    }
    mkfifo(&fifo)?;
    let mut trig = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)?;
    let out = OpenOptions::new().create(true).append(true).open(&log)?;
    let me = std::env::current_exe()?;
    let mut job = Command::new(me)
        .args(["inject", "--rate", &a.rate.to_string(), "--max-secs", "3600"])
        .arg("--trigger")
        .arg(&fifo)
        .arg("--stamps")
        .arg(&stamps)
        .stdout(out)
        .stdin(Stdio::null())
        .spawn()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (seen, mut tail): (Seen, Option<std::process::Child>) = match a.watcher {
        Watcher::Poll => (poll_watcher(log.clone(), a.poll_secs, stop.clone()), None),
        Watcher::TailGrep => {
            let (rx, child) = tail_grep(&log)?;
            (rx, Some(child))
        }
    };
    // Let the job and the watcher settle.
    std::thread::sleep(Duration::from_millis(1000));
    for _ in 0..a.injections {
        trig.write_all(b"i")?;
        std::thread::sleep(Duration::from_millis(a.spacing_ms));
    }
    // Every report is due within one poll (plus the time to re-read the log).
    let deadline = mono_ns() + (a.poll_secs + 30) * 1_000_000_000;
    let tokens: Vec<String> = (0..a.injections).map(letters).collect();
    let mut first: Vec<Option<u64>> = vec![None; tokens.len()];
    while mono_ns() < deadline && first.iter().any(Option::is_none) {
        let Ok((t, line)) = seen.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if !line.contains("KeyError") {
            continue;
        }
        for (k, tok) in tokens.iter().enumerate() {
            if first[k].is_none() && line.contains(tok.as_str()) {
                first[k] = Some(t);
            }
        }
    }
    let _ = trig.write_all(b"q");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(c) = tail.as_mut() {
        // The pipeline runs in its own process group: end tail and grep together.
        unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
        let _ = c.wait();
    }
    let _ = job.kill();
    let _ = job.wait();
    let injected = read_stamps(&stamps)?;
    let mut lat = Vec::new();
    let mut missed = 0;
    for (k, t_in) in injected {
        match first.get(k as usize).copied().flatten() {
            Some(t_out) if t_out >= t_in => lat.push((t_out - t_in) as f64 / 1e6),
            _ => missed += 1,
        }
    }
    println!("{}_missed={missed}", a.label);
    stats(&a.label, lat);
    Ok(())
}

fn read_stamps(path: &Path) -> io::Result<Vec<(u64, u64)>> {
    Ok(fs::read_to_string(path)?
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect())
}

/// The protocol's watcher: sleep, re-read the whole log, report matching new lines.
fn poll_watcher(log: PathBuf, poll_secs: u64, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Seen {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut last_line_count = 0usize;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_secs(poll_secs));
            // `readlines()`: the whole file, every time.
            let Ok(bytes) = fs::read(&log) else { continue };
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let t = mono_ns();
            for line in &lines[last_line_count.min(lines.len())..] {
                if PATTERNS.iter().any(|p| line.contains(p)) && tx.send((t, line.to_string())).is_err() {
                    return;
                }
            }
            last_line_count = lines.len();
        }
    });
    rx
}

/// `tail -F LOG | grep --line-buffered -F -e …`, its output lines stamped as they arrive.
fn tail_grep(log: &Path) -> io::Result<(Seen, std::process::Child)> {
    let mut script = String::from("tail -n 0 -F \"$0\" | grep --line-buffered -F");
    for p in PATTERNS {
        script.push_str(&format!(" -e '{p}'"));
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(log)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()?;
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send((mono_ns(), line)).is_err() {
                break;
            }
        }
    });
    Ok((rx, child))
}

//! The measurements that drive the real `trainwatch` binary: each starts it the way a user
//! would (`trainwatch run`), feeds it a job from [`crate::jobs`], reads what it prints with
//! a CLOCK_MONOTONIC stamp per line, samples its RSS and CPU time from `/proc`, and prints
//! `key=value` lines that `bench/run.sh` turns into the table.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::gen::letters;
use crate::jobs::mkfifo;
use crate::probe::{cpu_ns, cpu_ticks, mono_ns, percentile, status_kb};

/// A running `trainwatch` with its output read line by line, each line stamped on arrival.
pub struct Tw {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub lines: Receiver<(u64, String)>,
    /// Every line seen so far (for counts and for the record).
    pub transcript: Vec<(u64, String)>,
}

impl Tw {
    pub fn start(bin: &Path, args: &[String], dir: &Path) -> io::Result<Tw> {
        let stderr = File::create(dir.join("trainwatch.stderr"))?;
        // The child runs in `dir`: a relative path to the binary must not change meaning.
        let bin = fs::canonicalize(bin)?;
        let mut child = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .env_remove("TRAINWATCH_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let t = mono_ns();
                        if tx.send((t, line.trim_end().to_string())).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Tw {
            child,
            stdin,
            lines: rx,
            transcript: Vec::new(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line, waiting at most `timeout`; `None` on timeout or end of output.
    pub fn next_line(&mut self, timeout: Duration) -> Option<(u64, String)> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => {
                self.transcript.push(l.clone());
                Some(l)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Wait for a line containing `needle`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Option<(u64, String)> {
        let deadline = mono_ns() + timeout.as_nanos() as u64;
        while mono_ns() < deadline {
            let left = Duration::from_nanos(deadline.saturating_sub(mono_ns()));
            match self.next_line(left) {
                Some(l) if l.1.contains(needle) => return Some(l),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }

    pub fn send(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{line}");
            let _ = s.flush();
        }
    }

    /// Wait for the process to end by itself, sampling peak RSS; SIGTERM then SIGKILL after
    /// `timeout`. Returns (exit code, peak RSS KiB).
    pub fn finish(&mut self, timeout: Duration, peak: &mut u64) -> Option<i32> {
        let deadline = mono_ns() + timeout.as_nanos() as u64;
        let pid = self.pid();
        loop {
            if let Some(h) = status_kb(pid, "VmHWM") {
                *peak = (*peak).max(h);
            }
            while let Ok(l) = self.lines.try_recv() {
                self.transcript.push(l);
            }
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    while let Some(l) = self.next_line(Duration::from_millis(200)) {
                        drop(l);
                    }
                    return st.code();
                }
                Ok(None) => {}
                Err(_) => return None,
            }
            if mono_ns() > deadline {
                self.stop();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then SIGKILL if it lingers.
    pub fn stop(&mut self) {
        let pid = self.pid() as i32;
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..40 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn count(&self, needle: &str) -> usize {
        self.transcript.iter().filter(|(_, l)| l.contains(needle)).count()
    }

    pub fn save_transcript(&self, path: &Path) {
        if let Ok(mut f) = File::create(path) {
            for (t, l) in &self.transcript {
                let _ = writeln!(f, "{t} {l}");
            }
        }
    }
}

/// The PIDs printed in "Training started with PID: N" lines (the jobs, for cleanup).
fn job_pids(tw: &Tw) -> Vec<i32> {
    tw.transcript
        .iter()
        .filter_map(|(_, l)| l.split("with PID: ").nth(1))
        .filter_map(|p| p.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Make sure no job we started outlives the measurement (trainwatch, by design, leaves
/// its jobs running when it stops).
fn kill_jobs(tw: &Tw) {
    for pid in job_pids(tw) {
        if pid > 1 {
            // SAFETY: a PID this run started (through trainwatch); the job is its own
            // process-group leader, so the group goes with it.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

fn self_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("twbench"))
}

fn run_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "run".into(),
        "--color".into(),
        "never".into(),
        "--store".into(),
        dir.join("state.db").display().to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

pub(crate) fn stats(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    println!("{name}_n={}", v.len());
    println!("{name}_p50_ms={:.3}", percentile(&v, 50.0));
    println!("{name}_p99_ms={:.3}", percentile(&v, 99.0));
    println!("{name}_max_ms={:.3}", v.last().copied().unwrap_or(f64::NAN));
}

#[cfg(test)]
mod tests {
    use super::occurrences;

    #[test]
    fn reads_the_count_of_a_report_or_an_update() {
        assert_eq!(occurrences("  Occurrences: 42"), Some(42));
        assert_eq!(
            occurrences("  ↳ job error #1 update: 100000 occurrences, traceback 1 lines"),
            Some(100000)
        );
        assert_eq!(occurrences("  Error: no count here"), None);
    }
}

#[derive(Debug, clap::Args)]
pub struct LatencyArgs {
    /// The trainwatch executable.
    #[arg(long)]
    pub trainwatch: PathBuf,
    /// A scratch folder (created; left for the caller to remove).
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 200)]
    pub injections: u64,
    /// The job's ordinary output rate.
    #[arg(long, value_parser = crate::jobs::parse_size, default_value = "1M")]
    pub rate: u64,
}

/// Detection latency to the console: inject an error, stamp its write, stamp the ERROR
/// DETECTED report on trainwatch's stdout, type `/decide JOB continue`, repeat.
pub fn latency(a: &LatencyArgs) -> io::Result<()> {
    fs::create_dir_all(&a.dir)?;
    let fifo = a.dir.join("trigger");
    let stamps = a.dir.join("stamps");
    let _ = fs::remove_file(&fifo);
    let _ = fs::remove_file(&stamps);
    mkfifo(&fifo)?;
    // Read-write and non-blocking: opening never waits for the job, and writes never block.
    let mut trig = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)?;
    let me = s(&self_exe());
    let rate = a.rate.to_string();
    let log = s(&a.dir.join("job.log"));
    let mut tw = Tw::start(
        &a.trainwatch,
        &run_args(
            &a.dir,
            &[
                "--attended",
                "--log",
                &log,
                "--",
                &me,
                "inject",
                "--rate",
                &rate,
                "--trigger",
                &s(&fifo),
                "--stamps",
                &s(&stamps),
            ],
        ),
        &a.dir,
    )?;
    if tw.wait_for("Training started", Duration::from_secs(30)).is_none() {
        tw.stop();
        println!("latency_error=trainwatch did not report the job's start within 30 s");
        return Ok(());
    }
    // Let the job settle into its steady 1 MB/s.
    std::thread::sleep(Duration::from_millis(1000));
    let mut reports: Vec<Option<u64>> = Vec::new();
    let mut job: Option<String> = None;
    for k in 0..a.injections {
        trig.write_all(b"i")?;
        let token = letters(k);
        let deadline = mono_ns() + 10_000_000_000;
        let mut title_at: Option<u64> = None;
        let mut got = None;
        while mono_ns() < deadline {
            let Some((t, line)) = tw.next_line(Duration::from_millis(100)) else {
                if tw.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                continue;
            };
            if line.contains("ERROR DETECTED") {
                title_at = Some(t);
                if job.is_none() {
                    job = line
                        .split("— ")
                        .nth(1)
                        .and_then(|r| r.split(" (run").next())
                        .map(|j| j.trim().to_string());
                }
            } else if line.contains(" (run ") {
                title_at = None;
            } else if line.contains(&token) {
                if let Some(t) = title_at {
                    got = Some(t);
                    break;
                }
            }
        }
        reports.push(got);
        if let Some(j) = &job {
            tw.send(&format!("/decide {j} continue"));
        }
        // A pause of varying length, so injections do not beat in time with the job's writes.
        std::thread::sleep(Duration::from_millis(30 + (k * 7) % 23));
    }
    let _ = trig.write_all(b"q");
    let mut peak = 0;
    tw.finish(Duration::from_secs(20), &mut peak);
    kill_jobs(&tw);
    tw.save_transcript(&a.dir.join("transcript"));
    let injected: Vec<(u64, u64)> = fs::read_to_string(&stamps)?
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect();
    let mut lat = Vec::new();
    let mut missed = 0;
    for (k, t_in) in injected {
        match reports.get(k as usize).copied().flatten() {
            Some(t_out) if t_out >= t_in => lat.push((t_out - t_in) as f64 / 1e6),
            _ => missed += 1,
        }
    }
    println!("latency_console_missed={missed}");
    println!("latency_rss_peak_kb={peak}");
    stats("latency_console", lat);
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct FollowArgs {
    #[arg(long)]
    pub trainwatch: PathBuf,
    #[arg(long)]
    pub dir: PathBuf,
    /// How large the log grows.
    #[arg(long, value_parser = crate::jobs::parse_size, default_value = "10G")]
    pub size: u64,
    /// The writer's rate (default: as fast as it can).
    #[arg(long, value_parser = crate::jobs::parse_size)]
    pub rate: Option<u64>,
}

/// Peak RSS while following one log that grows to `size`; the log ends with a fatal
/// traceback, whose report shows trainwatch kept up to the end.
pub fn follow(a: &FollowArgs) -> io::Result<()> {
    fs::create_dir_all(&a.dir)?;
    let log = a.dir.join("big.log");
    let stamps = a.dir.join("stamps");
    let me = s(&self_exe());
    let size = a.size.to_string();
    let mut job: Vec<String> = vec![
        me,
        "gen-log".into(),
        "--size".into(),
        size,
        "--fatal-at-end".into(),
        // The run crashes on that traceback, as a run that ends with one does.
        "--exit-code".into(),
        "1".into(),
        "--stamps".into(),
        s(&stamps),
    ];
    if let Some(r) = a.rate {
        job.push("--rate".into());
        job.push(r.to_string());
    }
    let mut args = run_args(&a.dir, &["--unattended", "--log", &s(&log), "--"]);
    args.extend(job);
    let t0 = mono_ns();
    let mut tw = Tw::start(&a.trainwatch, &args, &a.dir)?;
    let pid = tw.pid();
    let marks: Vec<u64> = [1u64, 2, 5, 10, 20, 50]
        .iter()
        .map(|g| g << 30)
        .filter(|&m| m <= a.size)
        .collect();
    let mut next_mark = 0;
    let mut peak = 0;
    let mut report_at = None;
    let deadline = t0 + 20 * 60 * 1_000_000_000;
    loop {
        while let Ok(l) = tw.lines.try_recv() {
            if report_at.is_none() && (l.1.contains("'feature_final'") || l.1.contains("ERROR DETECTED")) {
                report_at = Some(l.0);
            }
            tw.transcript.push(l);
        }
        if let Some(h) = status_kb(pid, "VmHWM") {
            peak = peak.max(h);
        }
        let len = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        while next_mark < marks.len() && len >= marks[next_mark] {
            let rss = status_kb(pid, "VmRSS").unwrap_or(0);
            println!("follow_rss_at_{}g_kb={rss}", marks[next_mark] >> 30);
            next_mark += 1;
        }
        if let Ok(Some(_)) = tw.child.try_wait() {
            break;
        }
        if mono_ns() > deadline {
            tw.stop();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    while let Some(l) = tw.next_line(Duration::from_millis(200)) {
        if report_at.is_none() && (l.1.contains("'feature_final'") || l.1.contains("ERROR DETECTED")) {
            report_at = Some(l.0);
        }
    }
    kill_jobs(&tw);
    tw.save_transcript(&a.dir.join("transcript"));
    let len = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let _ = fs::remove_file(&log);
    println!("follow_log_bytes={len}");
    println!("follow_rss_peak_kb={peak}");
    println!("follow_wall_s={:.1}", (mono_ns() - t0) as f64 / 1e9);
    let fatal_at = fs::read_to_string(&stamps)
        .ok()
        .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok());
    // The first report after the final crash was written (a caught traceback earlier in
    // the log may have been reported before it).
    let report_at = fatal_at.and_then(|w| {
        tw.transcript
            .iter()
            .find(|(t, l)| *t >= w && (l.contains("ERROR DETECTED") || l.contains("'feature_final'")))
            .map(|(t, _)| *t)
    });
    match (fatal_at, report_at) {
        (Some(w), Some(r)) if r >= w => {
            println!("follow_final_report_lag_ms={:.1}", (r - w) as f64 / 1e6)
        }
        _ => println!("follow_final_report_lag_ms=none"),
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct CatchupArgs {
    #[arg(long)]
    pub trainwatch: PathBuf,
    #[arg(long)]
    pub dir: PathBuf,
    /// A finished log that ends with a fatal traceback (`gen-log --fatal-at-end`): the job
    /// prints it at once, as fast as `cat` can, so trainwatch has all of it as a backlog.
    #[arg(long)]
    pub log: PathBuf,
    /// Runs; the fastest counts, as for the other throughput figures.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
}

/// Live catch-up: `trainwatch run` follows a job that prints a whole log at full speed and
/// then fails; the time from trainwatch's start to its report of the traceback at the end
/// of the log is how long it took to read the backlog the way it follows any job.
pub fn catchup(a: &CatchupArgs) -> io::Result<()> {
    let bytes = fs::metadata(&a.log)?.len();
    let src = fs::canonicalize(&a.log)?;
    let mut best: Option<f64> = None;
    for k in 0..a.repeat.max(1) {
        let dir = a.dir.join(format!("run{k}"));
        fs::create_dir_all(&dir)?;
        let log = dir.join("job.log");
        let mut args = run_args(&dir, &["--unattended", "--log", &s(&log), "--"]);
        args.extend(["sh", "-c", "cat \"$1\"; exit 1", "catchup", &s(&src)].map(String::from));
        let t0 = mono_ns();
        let mut tw = Tw::start(&a.trainwatch, &args, &dir)?;
        let mut report_at = None;
        let deadline = t0 + 20 * 60 * 1_000_000_000;
        while report_at.is_none() && mono_ns() < deadline {
            match tw.next_line(Duration::from_millis(200)) {
                Some((t, l)) if l.contains("ERROR DETECTED") => report_at = Some(t),
                Some(_) => {}
                None if matches!(tw.child.try_wait(), Ok(Some(_))) => break,
                None => {}
            }
        }
        let _ = tw.child.wait();
        tw.save_transcript(&dir.join("transcript"));
        let _ = fs::remove_file(&log);
        if let Some(t) = report_at {
            let secs = (t - t0) as f64 / 1e9;
            best = Some(best.map_or(secs, |b: f64| b.min(secs)));
        }
    }
    println!("catchup_bytes={bytes}");
    match best {
        Some(secs) => {
            println!("catchup_s={secs:.3}");
            println!("catchup_mb_s={:.0}", bytes as f64 / 1e6 / secs);
        }
        None => println!("catchup_error=no ERROR DETECTED report for the traceback at the end"),
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct ManyArgs {
    #[arg(long)]
    pub trainwatch: PathBuf,
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 50)]
    pub jobs: u32,
    /// Each job's output rate (0: a quiet job that writes nothing).
    #[arg(long, value_parser = crate::jobs::parse_size, default_value = "50K")]
    pub rate: u64,
    /// How long the jobs run.
    #[arg(long, default_value_t = 30.0)]
    pub secs: f64,
    /// Measure CPU time over this window (after the start-up settles), for the idle figure.
    #[arg(long)]
    pub cpu_window: Option<f64>,
    /// Prefix of the printed keys.
    #[arg(long, default_value = "many")]
    pub label: String,
}

/// Several jobs under one trainwatch, from a generated config: peak RSS while they write
/// (`--rate`), or CPU time while they are quiet (`--rate 0 --cpu-window S`).
pub fn many(a: &ManyArgs) -> io::Result<()> {
    fs::create_dir_all(&a.dir)?;
    let me = s(&self_exe());
    let mut cfg = String::new();
    cfg.push_str(&format!("[store]\npath = {:?}\n\n", s(&a.dir.join("state.db"))));
    for j in 0..a.jobs {
        let argv: Vec<String> = if a.rate == 0 {
            vec!["sleep".into(), format!("{}", a.secs.ceil() as u64)]
        } else {
            vec![
                me.clone(),
                "gen-log".into(),
                "--rate".into(),
                a.rate.to_string(),
                "--secs".into(),
                a.secs.to_string(),
                "--seed".into(),
                (j + 10).to_string(),
            ]
        };
        cfg.push_str(&format!(
            "[jobs.job{j:02}]\nargv = {argv:?}\nlog = {:?}\nexpected = \"1h\"\nmax = \"2h\"\n\n",
            s(&a.dir.join(format!("job{j:02}.log")))
        ));
    }
    let cfg_path = a.dir.join("jobs.toml");
    fs::write(&cfg_path, cfg)?;
    let args = vec![
        "run".to_string(),
        "--color".into(),
        "never".into(),
        "--unattended".into(),
        "--config".into(),
        s(&cfg_path),
    ];
    let t0 = mono_ns();
    let mut tw = Tw::start(&a.trainwatch, &args, &a.dir)?;
    let pid = tw.pid();
    let mut started = 0;
    let mut peak = 0;
    let mut cpu0: Option<(u64, u64, u64)> = None;
    let mut cpu_result: Option<(f64, f64)> = None;
    let deadline = t0 + ((a.secs + 120.0) * 1e9) as u64;
    loop {
        while let Ok(l) = tw.lines.try_recv() {
            if l.1.contains("Training started with PID") {
                started += 1;
            }
            tw.transcript.push(l);
        }
        if let Some(h) = status_kb(pid, "VmHWM") {
            peak = peak.max(h);
        }
        if let Some(w) = a.cpu_window {
            let now = mono_ns();
            match cpu0 {
                // Start-up done: every job reported, plus two seconds to settle.
                None if started >= a.jobs as usize => {
                    std::thread::sleep(Duration::from_secs(2));
                    cpu0 = Some((mono_ns(), cpu_ns(pid).unwrap_or(0), cpu_ticks(pid).unwrap_or(0)));
                }
                Some((t, c, k)) if cpu_result.is_none() && (now - t) as f64 / 1e9 >= w => {
                    let secs = (now - t) as f64 / 1e9;
                    let c1 = cpu_ns(pid).unwrap_or(0);
                    let k1 = cpu_ticks(pid).unwrap_or(0);
                    println!("{}_cpu_window_s={secs:.1}", a.label);
                    println!("{}_cpu_ticks={}", a.label, k1.saturating_sub(k));
                    cpu_result = Some((secs, c1.saturating_sub(c) as f64 / 1e9));
                }
                _ => {}
            }
        }
        if let Ok(Some(_)) = tw.child.try_wait() {
            break;
        }
        if mono_ns() > deadline {
            tw.stop();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    while tw.next_line(Duration::from_millis(200)).is_some() {}
    kill_jobs(&tw);
    tw.save_transcript(&a.dir.join("transcript"));
    println!("{}_jobs_started={started}", a.label);
    println!("{}_rss_peak_kb={peak}", a.label);
    println!("{}_errors_reported={}", a.label, tw.count("ERROR DETECTED"));
    if let Some((secs, cpu)) = cpu_result {
        println!("{}_cpu_s={cpu:.6}", a.label);
        println!("{}_cpu_s_per_hour={:.3}", a.label, cpu / secs * 3600.0);
        println!("{}_cpu_pct_core={:.5}", a.label, cpu / secs * 100.0);
    } else if a.cpu_window.is_some() {
        println!(
            "{}_cpu_error=window not reached ({started} of {} jobs started)",
            a.label, a.jobs
        );
    }
    for f in fs::read_dir(&a.dir)?.flatten() {
        if f.path().extension().is_some_and(|e| e == "log") {
            let _ = fs::remove_file(f.path());
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct BurstRunArgs {
    #[arg(long)]
    pub trainwatch: PathBuf,
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    pub lines: u64,
}

/// A job prints `lines` error lines within a second: how many reports, with what count,
/// at what memory.
pub fn burst_run(a: &BurstRunArgs) -> io::Result<()> {
    fs::create_dir_all(&a.dir)?;
    let me = s(&self_exe());
    let stamps = a.dir.join("stamps");
    let log = a.dir.join("burst.log");
    let lines = a.lines.to_string();
    let args = run_args(
        &a.dir,
        &[
            "--unattended",
            "--log",
            &s(&log),
            "--",
            &me,
            "burst",
            "--lines",
            &lines,
            "--stamps",
            &s(&stamps),
        ],
    );
    let mut tw = Tw::start(&a.trainwatch, &args, &a.dir)?;
    let mut peak = 0;
    let code = tw.finish(Duration::from_secs(120), &mut peak);
    kill_jobs(&tw);
    tw.save_transcript(&a.dir.join("transcript"));
    let st = fs::read_to_string(&stamps).unwrap_or_default();
    let t: Vec<u64> = st
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    if t.len() == 2 {
        println!("burst_write_ms={:.1}", (t[1] - t[0]) as f64 / 1e6);
    }
    println!("burst_lines={}", a.lines);
    println!("burst_error_reports={}", tw.count("ERROR DETECTED"));
    println!("burst_warning_reports={}", tw.count("WARNING"));
    println!("burst_messages={}", tw.count(" (run "));
    let occ = tw.transcript.iter().filter_map(|(_, l)| occurrences(l)).max();
    println!(
        "burst_occurrences={}",
        occ.map_or("none".to_string(), |o| o.to_string())
    );
    println!("burst_rss_peak_kb={peak}");
    println!(
        "burst_exit={}",
        code.map_or("none".to_string(), |c| c.to_string())
    );
    let _ = fs::remove_file(&log);
    Ok(())
}

/// The count a report shows: `Occurrences: N`, or `N occurrences` in an update line.
fn occurrences(line: &str) -> Option<u64> {
    if let Some(rest) = line.split("Occurrences: ").nth(1) {
        return rest.trim().parse().ok();
    }
    let before = line.split(" occurrences").next()?;
    if before.len() == line.len() {
        return None;
    }
    before.rsplit([' ', ',', ':']).next()?.parse().ok()
}

#[derive(Debug, clap::Args)]
pub struct MeasureArgs {
    /// Prefix of the printed keys.
    #[arg(long)]
    pub label: String,
    /// Run this many times, report the fastest (page cache warm after the first).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Bytes processed, to print MB/s.
    #[arg(long)]
    pub bytes: Option<u64>,
    /// The command and its arguments; its standard output is read and discarded.
    #[arg(last = true, required = true)]
    pub cmd: Vec<String>,
}

/// Run a command: wall time, user and system CPU, peak RSS (from `wait4`).
pub fn measure(a: &MeasureArgs) -> io::Result<()> {
    let mut best: Option<(f64, f64, f64, i64, i32)> = None;
    for _ in 0..a.repeat.max(1) {
        let t0 = mono_ns();
        // Output to a pipe we drain, not /dev/null: GNU grep notices /dev/null and stops at
        // the first match, which would time nothing.
        let mut child = Command::new(&a.cmd[0])
            .args(&a.cmd[1..])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut out = child.stdout.take().expect("piped stdout");
        let drain = std::thread::spawn(move || io::copy(&mut out, &mut io::sink()));
        let mut status = 0;
        // SAFETY: rusage is plain data, filled by wait4 for our own child.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let wall = (mono_ns() - t0) as f64 / 1e9;
        let _ = drain.join();
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        let run = (wall, tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss, code);
        if best.is_none_or(|b| run.0 < b.0) {
            best = Some(run);
        }
    }
    let (wall, user, sys, rss, code) = best.expect("at least one run");
    let l = &a.label;
    println!("{l}_wall_s={wall:.3}");
    println!("{l}_user_s={user:.3}");
    println!("{l}_sys_s={sys:.3}");
    println!("{l}_rss_peak_kb={rss}");
    println!("{l}_exit={code}");
    if let Some(b) = a.bytes {
        println!("{l}_mb_s={:.0}", b as f64 / 1e6 / wall);
    }
    Ok(())
}

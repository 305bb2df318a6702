//! End to end in the terminal: `trainwatch run` supervising real processes — the demo's
//! whole protocol unattended, the wrap mode, and re-adoption after trainwatch is SIGKILLed.
//! Waits are bounded (liveness limits, never timing assertions).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{lines_of, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Run trainwatch to completion (bounded), returning (status, stdout, stderr).
fn run_to_end(args: &[&str], cwd: &Path, limit: Duration) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "trainwatch did not finish within {limit:?}; stdout so far:\n{}",
                t_out.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code().unwrap_or(-1),
        t_out.join().unwrap(),
        t_err.join().unwrap(),
    )
}

fn demo_config(dir: &Path, fail_at: u32, policy: &str) -> PathBuf {
    let cfg = dir.join("tw.toml");
    write(
        &cfg,
        &format!(
            r#"
[store]
path = "state/state.db"

[jobs.m1]
argv = ["{BIN}", "demo-train", "--name", "m1", "--steps", "30", "--step-ms", "30", "--fail-at", "{fail_at}"]
expected = "1s"
max = "10m"
status_interval = "300ms"
checkpoint = "output/implementation/checkpoints/model_{{name}}_step*.ckpt"
resume_argv = ["{BIN}", "demo-train", "--name", "m1", "--steps", "30", "--step-ms", "30", "--resume", "{{checkpoint}}"]
{policy}
kill_grace = "2s"
"#
        ),
    );
    cfg
}

#[test]
fn the_demo_protocol_runs_unattended_start_error_restart_complete() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo_config(dir.path(), 12, "on_error = \"restart\"\nrestart_limit = 2");
    let (code, out, err) = run_to_end(
        &["run", "--config", cfg.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let order = [
        "Training started",
        "ERROR DETECTED",
        "CUDA out of memory",
        "Error Type: resource",
        "Restarting training",
        "Resumed from checkpoint",
        "Training Complete",
        "Ready for Phase 5.5 validation",
    ];
    let mut at = 0;
    for needle in order {
        let pos = out[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing (in order) in:\n{out}"));
        at += pos;
    }
    assert!(out.contains("Status Update"), "no status update in:\n{out}");
    // The error report names the line of the exception, not the traceback header.
    let log =
        std::fs::read_to_string(dir.path().join("output/implementation/logs/training_m1_full.log")).unwrap();
    let err_line = log.lines().position(|l| l.contains("OutOfMemoryError")).unwrap() + 1;
    assert!(
        out.contains(&format!("Line: {err_line}")),
        "line {err_line} not reported in:\n{out}"
    );
    // Restart appended to the same log: the first attempt's traceback and the resumed run are both there.
    assert!(log.contains("Traceback (most recent call last):") && log.contains("Loading checkpoint"));
    // The completion report lists the error and how it was resolved, and the output files with sizes.
    let report = &out[out.find("Training Complete").unwrap()..];
    assert!(report.contains("restarted by on_error policy"), "{report}");
    assert!(report.contains("results_m1.csv ("), "{report}");
    assert!(!report.contains("MISSING"), "{report}");

    // The store remembers it all.
    let (code, status, _) = run_to_end(
        &["status", "--config", cfg.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(20),
    );
    assert_eq!(code, 0);
    assert!(status.contains("m1 run 1: completed"), "{status}");
    assert!(status.contains("attempt 2: PID "), "{status}");
    assert!(status.contains("resource"), "{status}");
}

#[test]
fn unattended_wait_policy_reports_the_failure_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo_config(dir.path(), 5, "on_error = \"wait\"");
    let (code, out, _) = run_to_end(
        &["run", "--config", cfg.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(60),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("ERROR DETECTED") && out.contains("Training Failed"),
        "{out}"
    );
    assert!(!out.contains("Restarting training"), "{out}");
}

#[test]
fn wrap_mode_needs_no_config() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_to_end(
        &[
            "run",
            "--store",
            "s/state.db",
            "--",
            "sh",
            "-c",
            "echo step 1; echo 'KeyError: missing'; exit 3",
        ],
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("Training started"), "{out}");
    assert!(out.contains("ERROR DETECTED"), "{out}");
    assert!(out.contains("Training Failed"), "{out}");
    assert!(
        dir.path().join("trainwatch-sh.log").exists() || out.contains(".log"),
        "{out}"
    );

    let (code, out, _) = run_to_end(
        &["run", "--store", "s/state.db", "--", "true"],
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Training Complete"), "{out}");
}

#[test]
fn usage_errors_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run_to_end(&["run"], dir.path(), Duration::from_secs(10));
    assert_eq!(code, 2);
    assert!(err.contains("--config") && err.contains("--"), "{err}");
    let cfg = demo_config(dir.path(), 0, "");
    let (code, _, err) = run_to_end(
        &["run", "--config", cfg.to_str().unwrap(), "nope"],
        dir.path(),
        Duration::from_secs(10),
    );
    assert_eq!(code, 2);
    assert!(err.contains("no job \"nope\""), "{err}");
}

fn alive(pid: i32) -> bool {
    // Signal 0 probes for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn trainwatch_killed_mid_run_readopts_the_job_and_reports_completion_once() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("go");
    let cfg = dir.path().join("tw.toml");
    // The job waits for a marker file, so the test decides when it ends.
    write(
        &cfg,
        &format!(
            r#"
[store]
path = "state/state.db"
[jobs.long]
argv = ["sh", "-c", "echo started; while [ ! -e '{}' ]; do sleep 0.05; done; echo done; mkdir -p output/results output/implementation/models; echo x > output/results/results_long.csv; echo y > output/implementation/models/model_long_full.pkl"]
status_interval = "1h"
"#,
            marker.display()
        ),
    );
    let mut first = Command::new(BIN)
        .args(["run", "--unattended", "--config", cfg.to_str().unwrap()])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut first);
    let mut seen = Vec::new();
    wait_for(
        &rx,
        "Training started with PID",
        Duration::from_secs(20),
        &mut seen,
    );
    let pid: i32 = seen
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    // trainwatch dies without any chance to clean up.
    first.kill().unwrap();
    first.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(pid), "the job must survive its supervisor");

    let mut second = Command::new(BIN)
        .args(["run", "--unattended", "--config", cfg.to_str().unwrap()])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx2 = lines_of(&mut second);
    let mut seen2 = Vec::new();
    wait_for(&rx2, "re-adopted", Duration::from_secs(20), &mut seen2);
    write(&marker, "");
    wait_for(&rx2, "Training Complete", Duration::from_secs(20), &mut seen2);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "second trainwatch did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(l) = rx2.recv_timeout(Duration::from_millis(200)) {
        seen2.push(l);
    }
    assert_eq!(status.code(), Some(0), "{}", seen2.join("\n"));
    let all: Vec<&String> = seen.iter().chain(seen2.iter()).collect();
    assert_eq!(all.iter().filter(|l| l.contains("Training Complete")).count(), 1);
    assert_eq!(
        all.iter()
            .filter(|l| l.contains("Training started with PID"))
            .count(),
        1,
        "no second start"
    );
    assert!(!alive(pid));

    // A third start is a fresh run (run 2), not a re-adoption.
    let (code, out, _) = run_to_end(
        &["status", "--config", cfg.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(10),
    );
    assert_eq!(code, 0);
    assert!(out.contains("long run 1: completed"), "{out}");
}

/// Wait (bounded) for a child to exit; its exit code.
fn exit_code_within(child: &mut std::process::Child, limit: Duration, what: &str) -> i32 {
    support::exit_within(child, limit, what).code().unwrap_or(-1)
}

fn spawn_run(cfg: &Path, cwd: &Path) -> std::process::Child {
    Command::new(BIN)
        .args(["run", "--unattended", "--config", cfg.to_str().unwrap()])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stderr_of(child: &mut std::process::Child) -> String {
    let mut s = String::new();
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn one_supervisor_per_store_the_second_refuses_naming_the_holder_and_a_killed_holder_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("go");
    let starts = dir.path().join("starts");
    let cfg = dir.path().join("tw.toml");
    // Every start of the job leaves a line in `starts`; the job ends when the test says so.
    write(
        &cfg,
        &format!(
            r#"
[store]
path = "state/state.db"
[jobs.once]
argv = ["sh", "-c", "echo x >> '{}'; echo started; while [ ! -e '{}' ]; do sleep 0.05; done; echo done"]
status_interval = "1h"
"#,
            starts.display(),
            marker.display()
        ),
    );
    // Two supervisors started together on one config.
    let mut a = spawn_run(&cfg, dir.path());
    let mut b = spawn_run(&cfg, dir.path());
    // Exactly one refuses, at once (it never waits for the other's job).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut holder, mut refused) = loop {
        if a.try_wait().unwrap().is_some() {
            break (b, a);
        }
        if b.try_wait().unwrap().is_some() {
            break (a, b);
        }
        assert!(Instant::now() < deadline, "neither supervisor refused");
        std::thread::sleep(Duration::from_millis(50));
    };
    let code = exit_code_within(&mut refused, Duration::from_secs(5), "the refused supervisor");
    let err = stderr_of(&mut refused);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("PID {} on host", holder.id())), "{err}");
    assert!(err.contains("already supervised by another trainwatch"), "{err}");

    let rx = lines_of(&mut holder);
    let mut seen = Vec::new();
    wait_for(
        &rx,
        "Training started with PID",
        Duration::from_secs(20),
        &mut seen,
    );
    // The holder dies without any chance to clean up: the kernel releases its lock.
    holder.kill().unwrap();
    holder.wait().unwrap();

    let mut next = spawn_run(&cfg, dir.path());
    let rx2 = lines_of(&mut next);
    let mut seen2 = Vec::new();
    wait_for(&rx2, "re-adopted", Duration::from_secs(20), &mut seen2);
    // While it supervises, another one is still refused, naming the new holder.
    let (code, _, err) = run_to_end(
        &["run", "--unattended", "--config", cfg.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(20),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("PID {} on host", next.id())), "{err}");
    // Read-only commands take no lock.
    let (code, out, err) = run_to_end(
        &["status", "--config", cfg.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(10),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("once run 1"), "{out}");

    write(&marker, "");
    wait_for(&rx2, "Training Complete", Duration::from_secs(20), &mut seen2);
    let code = exit_code_within(&mut next, Duration::from_secs(20), "the re-adopting supervisor");
    assert_eq!(code, 0, "{}", seen2.join("\n"));
    assert_eq!(
        std::fs::read_to_string(&starts).unwrap().lines().count(),
        1,
        "the job was spawned exactly once"
    );
}

#[test]
fn check_config_and_run_refuse_a_config_without_jobs_alike() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tw.toml");
    write(&cfg, "[store]\npath = \"state/state.db\"\n");
    let (code, _, check_err) = run_to_end(
        &["check-config", cfg.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(10),
    );
    assert_eq!(code, 2, "{check_err}");
    assert!(check_err.contains("declares no jobs"), "{check_err}");
    let (code, _, run_err) = run_to_end(
        &["run", "--unattended", "--config", cfg.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(10),
    );
    assert_eq!(code, 2, "{run_err}");
    assert!(run_err.contains("declares no jobs"), "{run_err}");
}

#[test]
fn check_config_and_run_refuse_a_store_path_that_is_a_folder_alike() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let cfg = dir.path().join("tw.toml");
    write(&cfg, "[store]\npath = \"state\"\n[jobs.j]\nargv = [\"true\"]\n");
    let (code, _, check_err) = run_to_end(
        &["check-config", cfg.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(10),
    );
    assert_eq!(code, 2, "{check_err}");
    assert!(check_err.contains("is a folder"), "{check_err}");
    let (code, _, run_err) = run_to_end(
        &["run", "--unattended", "--config", cfg.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(10),
    );
    assert_eq!(code, 2, "{run_err}");
    assert!(run_err.contains("is a folder"), "{run_err}");
}

#[test]
fn serve_refuses_a_store_that_a_run_already_supervises() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("go");
    let cfg = dir.path().join("tw.toml");
    // Proxies on a closed local port: should serve ever get past the lock, it reaches no one.
    write(
        &cfg,
        &format!(
            r#"
[store]
path = "state/state.db"
[jobs.w]
argv = ["sh", "-c", "echo started; while [ ! -e '{}' ]; do sleep 0.05; done"]
status_interval = "1h"
[discord]
token_env = "TRAINWATCH_TEST_TOKEN"
channel = "666666666666666666"
proxy_url = "http://127.0.0.1:9"
https_proxy = "http://127.0.0.1:9"
"#,
            marker.display()
        ),
    );
    let mut run = spawn_run(&cfg, dir.path());
    let rx = lines_of(&mut run);
    let mut seen = Vec::new();
    wait_for(
        &rx,
        "Training started with PID",
        Duration::from_secs(20),
        &mut seen,
    );

    let mut serve = Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env("TRAINWATCH_TEST_TOKEN", "not-a-real-token")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = exit_code_within(&mut serve, Duration::from_secs(20), "trainwatch serve");
    let err = stderr_of(&mut serve);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("PID {} on host", run.id())), "{err}");

    write(&marker, "");
    wait_for(&rx, "Training Complete", Duration::from_secs(20), &mut seen);
    let code = exit_code_within(&mut run, Duration::from_secs(20), "trainwatch run");
    assert_eq!(code, 0, "{}", seen.join("\n"));
}

/// Issue 11, class 1: incidents survive any number of supervisor crashes. A job prints a
/// distinct warning, then waits for the test; trainwatch is SIGKILLed and restarted three
/// times, each time after the job printed the next warning (some while no supervisor ran).
/// Every warning must be reported exactly once and stored exactly once.
#[test]
fn incidents_found_across_three_supervisor_crashes_are_each_reported_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tw.toml");
    write(
        &cfg,
        r#"
[store]
path = "state/state.db"
[jobs.fit]
argv = ["sh", "-c", "echo started; for i in 1 2 3 4; do echo \"/srv/fit.py:$i: ConvergenceWarning: lbfgs failed to converge after ${i}00 iteration(s)\"; echo \"step $i\"; while [ ! -e go$i ]; do sleep 0.05; done; done; echo done; mkdir -p output/results output/implementation/models; echo x > output/results/results_fit.csv; echo y > output/implementation/models/model_fit_full.pkl"]
status_interval = "1h"
"#,
    );
    let start = || {
        let mut child = Command::new(BIN)
            .args(["run", "--unattended", "--config", cfg.to_str().unwrap()])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let rx = lines_of(&mut child);
        (child, rx)
    };
    let warning = |i: u32| format!("lbfgs failed to converge after {i}00 iteration");
    let mut all = Vec::new();
    for i in 1..=3u32 {
        let (mut sup, rx) = start();
        let mut seen = Vec::new();
        // Supervisor i sees warning i (the first one live, the others caught up on).
        wait_for(&rx, &warning(i), Duration::from_secs(30), &mut seen);
        // Let anything else it is about to print arrive, then kill it without warning.
        while let Ok(l) = rx.recv_timeout(Duration::from_millis(300)) {
            seen.push(l);
        }
        sup.kill().unwrap();
        sup.wait().unwrap();
        all.extend(seen);
        // The next warning is printed while no supervisor runs.
        write(&dir.path().join(format!("go{i}")), "");
    }
    let (mut last, rx) = start();
    let mut seen = Vec::new();
    wait_for(&rx, &warning(4), Duration::from_secs(30), &mut seen);
    write(&dir.path().join("go4"), "");
    wait_for(&rx, "Training Complete", Duration::from_secs(30), &mut seen);
    let status = support::exit_within(&mut last, Duration::from_secs(20), "the last trainwatch");
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
        seen.push(l);
    }
    all.extend(seen);
    assert_eq!(status.code(), Some(0), "{}", all.join("\n"));
    let transcript = all.join("\n");
    for i in 1..=4 {
        let reported = all
            .iter()
            .filter(|l| l.trim_start().starts_with("Warning: ") && l.contains(&warning(i)))
            .count();
        assert_eq!(
            reported, 1,
            "warning {i} reported {reported} times:\n{transcript}"
        );
    }
    assert_eq!(
        all.iter()
            .filter(|l| l.contains("Training started with PID"))
            .count(),
        1,
        "no second start:\n{transcript}"
    );

    // The store holds each warning once, as its own incident.
    let store = trainwatch::store::Store::open(&dir.path().join("state/state.db")).unwrap();
    let runs = store.runs(Some("fit"), 10).unwrap();
    assert_eq!(runs.len(), 1);
    let texts: Vec<&str> = runs[0].incidents.iter().map(|i| i.text.as_str()).collect();
    for i in 1..=4 {
        let stored = texts.iter().filter(|t| t.contains(&warning(i))).count();
        assert_eq!(stored, 1, "warning {i} stored {stored} times: {texts:?}");
    }
    assert_eq!(texts.len(), 4, "{texts:?}");
}

/// A director's `/kill` is a decision, not an incident: the Killed report lists no
/// "stopped from outside" error for the SIGTERM trainwatch itself sent.
#[test]
fn a_directors_kill_is_no_incident_in_the_killed_report() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tw.toml");
    write(
        &cfg,
        r#"
[store]
path = "state/state.db"
[jobs.k]
argv = ["sh", "-c", "echo started; while true; do sleep 0.05; done"]
status_interval = "1h"
kill_grace = "2s"
"#,
    );
    let (mut tw, rx) = support::spawn_trainwatch(
        dir.path(),
        &[
            "run",
            "--attended",
            "--color",
            "never",
            "--config",
            cfg.to_str().unwrap(),
        ],
        Stdio::piped(),
    );
    let mut seen = Vec::new();
    support::wait_for(
        &rx,
        "Training started with PID",
        Duration::from_secs(20),
        &mut seen,
    );
    let mut stdin = tw.stdin.take().unwrap();
    writeln!(stdin, "/kill k").unwrap();
    support::wait_for(&rx, "Training Killed", Duration::from_secs(20), &mut seen);
    drop(stdin);
    let status = tw.wait().unwrap();
    while let Ok(l) = rx.try_recv() {
        seen.push(l);
    }
    let out = seen.join("\n");
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(!out.contains("stopped from outside"), "{out}");
    assert!(!out.contains("ERROR DETECTED"), "{out}");
}

//! The local executor end to end: real jobs (small `sh` scripts) started through the real
//! shim binary, killed, told apart by how they ended, and re-adopted after their supervisor
//! is gone. Every wait has a generous liveness bound; no test asserts how fast anything is.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use trainwatch::exec::{adopt, resolve_resume, spawn, Adopted, ExecError, JobHandle, SpawnSpec};
use trainwatch::model::ExitOutcome;

/// Liveness bound for anything a test waits on.
const BOUND: Duration = Duration::from_secs(30);

async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(BOUND, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within the liveness bound"))
}

fn spec(dir: &Path, script: &str) -> SpawnSpec {
    let mut s = SpawnSpec::new(
        vec!["/bin/sh".into(), "-c".into(), script.into()],
        dir.to_path_buf(),
        dir.join("logs/job.log"),
        dir.join("state"),
    );
    s.shim_program = Some(PathBuf::from(env!("CARGO_BIN_EXE_trainwatch")));
    s
}

/// A job that waits (at most ~20 s) for the file `go` in its workdir, then exits 7.
const WAIT_FOR_GO: &str =
    "echo started; i=0; while [ ! -e go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; exit 7";

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

/// Poll (bounded) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

fn group_gone(pgid: u32) -> bool {
    kill(Pid::from_raw(-(pgid as i32)), None) == Err(Errno::ESRCH)
}

/// Members of process group `pgid` that have not ended (zombies excluded).
fn live_members(pgid: u32) -> usize {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter(|line| {
            let rest = &line[line.rfind(')').unwrap() + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            f[0] != "Z" && f[2] == pgid.to_string()
        })
        .count()
}

#[tokio::test]
async fn output_lands_in_the_log_append_appends_and_a_fresh_run_keeps_the_old_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/job.log");

    let h = spawn(&spec(dir.path(), "echo out; echo err >&2; exit 0"))
        .await
        .unwrap();
    assert_eq!(h.moved_log, None);
    assert_eq!(bounded("first job", h.wait()).await, ExitOutcome::Code(0));
    assert_eq!(read(&log), "out\nerr\n");

    let mut again = spec(dir.path(), "echo second");
    again.append = true;
    let h = spawn(&again).await.unwrap();
    assert_eq!(bounded("restart", h.wait()).await, ExitOutcome::Code(0));
    assert_eq!(read(&log), "out\nerr\nsecond\n");
    assert_eq!(h.moved_log, None);

    let h = spawn(&spec(dir.path(), "echo fresh")).await.unwrap();
    assert_eq!(bounded("fresh run", h.wait()).await, ExitOutcome::Code(0));
    assert_eq!(read(&log), "fresh\n");
    let moved = h.moved_log.clone().expect("the old log is moved aside");
    assert!(moved.to_string_lossy().ends_with(".prev"), "{moved:?}");
    assert_eq!(read(&moved), "out\nerr\nsecond\n");
}

#[tokio::test]
async fn env_and_workdir_come_from_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let mut s = spec(dir.path(), "echo \"$TW_TEST_VALUE\"; pwd");
    s.workdir = work.clone();
    s.env = vec![("TW_TEST_VALUE".into(), "from spec; not $expanded".into())];
    let h = spawn(&s).await.unwrap();
    assert_eq!(bounded("job", h.wait()).await, ExitOutcome::Code(0));
    let out = read(&dir.path().join("logs/job.log"));
    let canon = fs::canonicalize(&work).unwrap();
    assert_eq!(out, format!("from spec; not $expanded\n{}\n", canon.display()));
}

#[tokio::test]
async fn kill_takes_down_every_worker_of_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let h = spawn(&spec(dir.path(), "sleep 300 & sleep 300 & wait"))
        .await
        .unwrap();
    // The shell and its two workers, all in the job's group.
    until("workers started", || live_members(h.pid) == 3).await;
    assert!(h.is_running());

    // A second job cannot be started from the same state folder while this one runs.
    match spawn(&spec(dir.path(), "true")).await {
        Err(ExecError::AlreadyRunning { pid }) => assert_eq!(pid, h.pid),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }

    bounded("kill", h.kill(Duration::from_secs(10))).await.unwrap();
    assert_eq!(live_members(h.pid), 0);
    // Zombies are reaped by the shim; then the group is empty.
    until("group reaped", || group_gone(h.pid)).await;
    assert_eq!(
        bounded("exit", h.wait()).await,
        ExitOutcome::Signal(Signal::SIGTERM as i32)
    );
    assert!(!h.is_running());
    // Killing again is harmless.
    bounded("second kill", h.kill(Duration::from_secs(1)))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_job_ignoring_sigterm_gets_sigkill_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/job.log");
    let h = spawn(&spec(dir.path(), "trap '' TERM; echo ready; sleep 300"))
        .await
        .unwrap();
    until("trap installed", || read(&log).contains("ready")).await;
    bounded("kill", h.kill(Duration::from_millis(300))).await.unwrap();
    assert_eq!(
        bounded("exit", h.wait()).await,
        ExitOutcome::Signal(Signal::SIGKILL as i32)
    );
    until("group reaped", || group_gone(h.pid)).await;
}

#[tokio::test]
async fn exit_codes_and_signals_are_told_apart() {
    let cases = [
        ("exit 3", ExitOutcome::Code(3)),
        ("kill -KILL $$", ExitOutcome::Signal(9)),
        ("kill -SEGV $$", ExitOutcome::Signal(11)),
        // A plain exit status of 137 is what the process said, not a signal.
        ("exit 137", ExitOutcome::Code(137)),
    ];
    for (script, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let h = spawn(&spec(dir.path(), script)).await.unwrap();
        assert_eq!(bounded(script, h.wait()).await, expected, "{script}");
        // The record outlives the handle.
        match adopt(&dir.path().join("state")).unwrap() {
            Some(Adopted::Ended(o)) => assert_eq!(o, expected, "{script}"),
            other => panic!("{script}: expected Ended, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_missing_program_or_workdir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "");
    s.argv = vec!["/nonexistent/train-model".into(), "--epochs".into()];
    match spawn(&s).await {
        Err(ExecError::Spawn(msg)) => {
            assert!(msg.contains("/nonexistent/train-model"), "{msg}");
            assert!(msg.contains("not found"), "{msg}");
        }
        other => panic!("expected a spawn error, got {other:?}"),
    }
    // Nothing is left that adopt would mistake for a job.
    assert!(adopt(&dir.path().join("state")).unwrap().is_none());

    let mut s = spec(dir.path(), "true");
    s.workdir = dir.path().join("no-such-dir");
    match spawn(&s).await {
        Err(ExecError::Spawn(msg)) => assert!(msg.contains("working directory"), "{msg}"),
        other => panic!("expected a spawn error, got {other:?}"),
    }

    let mut s = spec(dir.path(), "true");
    s.argv.clear();
    assert!(matches!(spawn(&s).await, Err(ExecError::InvalidSpec(_))));
}

#[tokio::test]
async fn a_forgotten_job_is_adopted_and_its_end_learned() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    assert!(adopt(&state).unwrap().is_none());

    let h = spawn(&spec(dir.path(), WAIT_FOR_GO)).await.unwrap();
    let pid = h.pid;
    drop(h);

    let h: JobHandle = match adopt(&state).unwrap() {
        Some(Adopted::Running(h)) => h,
        other => panic!("expected Running, got {other:?}"),
    };
    assert_eq!(h.pid, pid);
    assert!(h.is_running());
    fs::write(dir.path().join("go"), b"").unwrap();
    assert_eq!(bounded("adopted job", h.wait()).await, ExitOutcome::Code(7));
    let ended = h.ended_at().expect("the end time is recorded");
    assert!(ended >= h.started_at);
    match adopt(&state).unwrap() {
        Some(Adopted::Ended(o)) => assert_eq!(o, ExitOutcome::Code(7)),
        other => panic!("expected Ended, got {other:?}"),
    }
}

/// Set in the child copy of [`a_job_survives_its_supervisor_being_killed_and_is_adopted`]:
/// there the test plays the supervisor (spawns the job, reports its PID, waits to be killed).
const SUPERVISOR_ROLE: &str = "TRAINWATCH_EXEC_TEST_SUPERVISOR_DIR";

/// The supervisor that dies is this same test run again in a child process (a second process
/// that calls `spawn` as trainwatch does); the environment variable picks the child's role.
/// Either role asserts something: the child that the spawn succeeds, the parent the rest.
#[tokio::test]
async fn a_job_survives_its_supervisor_being_killed_and_is_adopted() {
    if let Ok(dir) = std::env::var(SUPERVISOR_ROLE) {
        let h = bounded("spawn", spawn(&spec(Path::new(&dir), WAIT_FOR_GO)))
            .await
            .unwrap();
        println!("SPAWNED {}", h.pid);
        // Wait to be killed. stdin is the parent's pipe: EOF means the parent is gone.
        let _ = std::io::stdin().read_line(&mut String::new());
        panic!("the supervisor copy is to be killed by its parent, not to end by itself");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut sup = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_job_survives_its_supervisor_being_killed_and_is_adopted",
            "--nocapture",
        ])
        .env(SUPERVISOR_ROLE, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = sup.stdout.take().unwrap();
    // Reading ends at EOF at the latest (the child ends when it cannot spawn).
    let pid: u32 = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("SPAWNED ")?.trim().parse().ok())
        .expect("the supervisor copy reports the job's PID");
    // The supervisor dies hard, as in a crash.
    sup.kill().unwrap();
    sup.wait().unwrap();

    let h = match adopt(&dir.path().join("state")).unwrap() {
        Some(Adopted::Running(h)) => h,
        other => panic!("expected Running, got {other:?}"),
    };
    assert_eq!(h.pid, pid);
    assert!(read(&dir.path().join("logs/job.log")).starts_with("started"));
    fs::write(dir.path().join("go"), b"").unwrap();
    assert_eq!(bounded("adopted job", h.wait()).await, ExitOutcome::Code(7));
}

#[tokio::test]
async fn a_job_whose_shim_died_ends_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let h = spawn(&spec(dir.path(), "sleep 300")).await.unwrap();
    kill(Pid::from_raw(h.shim_pid as i32), Signal::SIGKILL).unwrap();
    kill(Pid::from_raw(-(h.pid as i32)), Signal::SIGKILL).unwrap();
    assert_eq!(bounded("job end", h.wait()).await, ExitOutcome::Unknown);
    match adopt(&dir.path().join("state")).unwrap() {
        Some(Adopted::Ended(o)) => assert_eq!(o, ExitOutcome::Unknown),
        other => panic!("expected Ended(Unknown), got {other:?}"),
    }
}

#[tokio::test]
async fn sigterm_to_the_shim_stops_the_job_and_is_still_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let h = spawn(&spec(dir.path(), "sleep 300")).await.unwrap();
    kill(Pid::from_raw(h.shim_pid as i32), Signal::SIGTERM).unwrap();
    assert_eq!(
        bounded("job end", h.wait()).await,
        ExitOutcome::Signal(Signal::SIGTERM as i32)
    );
    until("group reaped", || group_gone(h.pid)).await;
}

#[test]
fn resume_picks_the_newest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let base = SystemTime::now() - Duration::from_secs(3600);
    // Names sort differently from ages, so the choice must come from mtimes.
    for (name, age_secs) in [("ckpt_9.pt", 300), ("ckpt_10.pt", 10), ("ckpt_2.pt", 100)] {
        let p = dir.path().join(name);
        fs::write(&p, b"weights").unwrap();
        let f = fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(base + Duration::from_secs(3600 - age_secs))
            .unwrap();
    }
    fs::create_dir(dir.path().join("dir_newest.pt")).unwrap();
    let pattern = format!("{}/*.pt", dir.path().display());
    let argv: Vec<String> = [
        "python",
        "train.py",
        "--resume",
        "{checkpoint}",
        "--log={checkpoint}.txt",
    ]
    .map(String::from)
    .to_vec();
    let (path, resolved) = resolve_resume(&pattern, &argv).unwrap().unwrap();
    let newest = dir.path().join("ckpt_10.pt");
    assert_eq!(path, newest);
    let n = newest.to_str().unwrap();
    assert_eq!(
        resolved,
        vec![
            "python".to_string(),
            "train.py".into(),
            "--resume".into(),
            n.into(),
            format!("--log={n}.txt"),
        ]
    );

    let none = format!("{}/*.ckpt", dir.path().display());
    assert_eq!(resolve_resume(&none, &argv).unwrap(), None);
}

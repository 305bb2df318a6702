//! Nobody escapes: processes of a job that leave its session and process group (`setsid`, a
//! double fork) are still reached by a kill, and a main process that exits while such a
//! worker runs is reported and the worker ended. Each case runs held by a cgroup (where this
//! machine lets the shim make one) and held by the shim as subreaper only. Real processes;
//! every spawned PID is checked gone at the end; every wait is bounded.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use trainwatch::exec::{spawn, Containment, JobHandle, SpawnSpec};
use trainwatch::model::ExitOutcome;

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");
/// Liveness bound for anything a test waits on.
const BOUND: Duration = Duration::from_secs(30);

async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(BOUND, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within the liveness bound"))
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

fn until_blocking(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < BOUND,
            "{what} did not happen within the liveness bound"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fields 3 (state) and 6 (session) of `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let line = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = line[line.rfind(')')? + 1..].split_whitespace().collect();
    Some((f[0].chars().next()?, f[3].parse().ok()?))
}

/// Running (a zombie has ended).
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

/// The PID a worker wrote to `file`, once it is there.
fn pid_in(file: &Path) -> Option<u32> {
    fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// A worker in a session of its own, started straight from the job (`setsid`), and one from
/// a double fork (its parent exits at once, so it is an orphan as well). Each writes its PID.
const ESCAPERS: &str = "setsid sh -c 'echo $$ > w1.pid; exec sleep 300' &
sh -c \"setsid sh -c 'echo \\$\\$ > w2.pid; exec sleep 300' &\"
echo ready";

fn spec(dir: &Path, script: &str, cgroup: bool) -> SpawnSpec {
    let mut s = SpawnSpec::new(
        vec!["/bin/sh".into(), "-c".into(), script.into()],
        dir.to_path_buf(),
        dir.join("job.log"),
        dir.join("state"),
    );
    s.shim_program = Some(PathBuf::from(BIN));
    s.kill_grace = Duration::from_secs(2);
    s.cgroup = cgroup;
    s
}

/// The workers' PIDs once both are running, each checked to have left the job's session.
async fn escaped_workers(dir: &Path, h: &JobHandle) -> Vec<u32> {
    let files = [dir.join("w1.pid"), dir.join("w2.pid")];
    until("workers started", || {
        files.iter().all(|f| pid_in(f).is_some_and(alive))
    })
    .await;
    let pids: Vec<u32> = files.iter().map(|f| pid_in(f).unwrap()).collect();
    for pid in &pids {
        let (_, session) = stat(*pid).unwrap();
        assert_ne!(
            session, h.pid,
            "worker {pid} is still in the job's session: it did not escape"
        );
    }
    pids
}

fn held_by(h: &JobHandle, cgroup: bool) {
    eprintln!("job held by: {}", h.containment);
    if !cgroup {
        assert_eq!(h.containment, Containment::Subreaper);
    }
}

async fn kill_reaches_workers_that_left_the_session(cgroup: bool) {
    let dir = tempfile::tempdir().unwrap();
    let h = spawn(&spec(dir.path(), &format!("{ESCAPERS}; sleep 300"), cgroup))
        .await
        .unwrap();
    held_by(&h, cgroup);
    let workers = escaped_workers(dir.path(), &h).await;

    bounded("kill", h.kill(Duration::from_secs(2))).await.unwrap();
    assert!(matches!(bounded("exit", h.wait()).await, ExitOutcome::Signal(_)));
    for pid in workers.iter().chain([&h.pid, &h.shim_pid]) {
        until(&format!("process {pid} gone"), || !alive(*pid)).await;
    }
}

#[tokio::test]
async fn kill_reaches_a_setsid_worker_and_a_double_fork_in_a_cgroup_where_possible() {
    kill_reaches_workers_that_left_the_session(true).await;
}

/// The portable way into the cgroup (moved between fork and exec, as where the kernel refuses
/// `clone3`): the same guarantees.
#[tokio::test]
async fn kill_reaches_workers_that_left_the_session_when_the_job_was_moved_into_its_cgroup() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), &format!("{ESCAPERS}; sleep 300"), true);
    s.move_into_cgroup = true;
    let h = spawn(&s).await.unwrap();
    held_by(&h, true);
    let workers = escaped_workers(dir.path(), &h).await;
    bounded("kill", h.kill(Duration::from_secs(2))).await.unwrap();
    assert!(matches!(bounded("exit", h.wait()).await, ExitOutcome::Signal(_)));
    for pid in workers.iter().chain([&h.pid, &h.shim_pid]) {
        until(&format!("process {pid} gone"), || !alive(*pid)).await;
    }
}

#[tokio::test]
async fn kill_reaches_a_setsid_worker_and_a_double_fork_held_by_the_subreaper() {
    kill_reaches_workers_that_left_the_session(false).await;
}

async fn exit_leaving_workers_is_recorded_and_they_are_ended(cgroup: bool) {
    let dir = tempfile::tempdir().unwrap();
    // The main process exits 0 without its workers once the test has seen them up and out
    // of its session (the `go` file): exiting as soon as they wrote their PIDs let the
    // shim end them before a loaded machine's poll saw them alive.
    let script = format!(
        "{ESCAPERS}; i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; exit 0"
    );
    let h = spawn(&spec(dir.path(), &script, cgroup)).await.unwrap();
    held_by(&h, cgroup);
    let workers = escaped_workers(dir.path(), &h).await;
    fs::write(dir.path().join("go"), "").unwrap();

    assert_eq!(bounded("exit", h.wait()).await, ExitOutcome::Code(0));
    let mut lingering = h.lingering();
    lingering.sort_unstable();
    let mut expected = workers.clone();
    expected.sort_unstable();
    assert_eq!(
        lingering, expected,
        "the exit record names the workers left running"
    );
    for pid in workers.iter().chain([&h.shim_pid]) {
        until(&format!("process {pid} gone"), || !alive(*pid)).await;
    }
}

#[tokio::test]
async fn exit_0_with_lingering_workers_is_recorded_and_they_are_ended_in_a_cgroup_where_possible() {
    exit_leaving_workers_is_recorded_and_they_are_ended(true).await;
}

#[tokio::test]
async fn exit_0_with_lingering_workers_is_recorded_and_they_are_ended_held_by_the_subreaper() {
    exit_leaving_workers_is_recorded_and_they_are_ended(false).await;
}

#[tokio::test]
async fn a_main_process_that_exits_alone_leaves_nothing_to_report() {
    let dir = tempfile::tempdir().unwrap();
    let h = spawn(&spec(dir.path(), "sleep 0.1 & wait; exit 0", true))
        .await
        .unwrap();
    assert_eq!(bounded("exit", h.wait()).await, ExitOutcome::Code(0));
    assert!(h.lingering().is_empty());
    until("shim gone", || !alive(h.shim_pid)).await;
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// The whole way through `trainwatch run`: a `/kill` typed at the console ends the escaped
/// workers too.
#[test]
fn a_directors_kill_through_run_ends_workers_that_left_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tw.toml");
    let script = format!("{ESCAPERS}; i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done");
    write(
        &cfg,
        &format!(
            "[store]\npath = \"state/state.db\"\n[jobs.k]\nargv = [\"sh\", \"-c\", {script:?}]\nstatus_interval = \"1h\"\nkill_grace = \"2s\"\n"
        ),
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
    support::wait_for(&rx, "Training started with PID", BOUND, &mut seen);
    let files = [dir.path().join("w1.pid"), dir.path().join("w2.pid")];
    until_blocking("workers started", || {
        files.iter().all(|f| pid_in(f).is_some_and(alive))
    });
    let workers: Vec<u32> = files.iter().map(|f| pid_in(f).unwrap()).collect();

    let mut stdin = tw.stdin.take().unwrap();
    writeln!(stdin, "/kill k").unwrap();
    support::wait_for(&rx, "Training Killed", BOUND, &mut seen);
    drop(stdin);
    support::exit_within(&mut tw, BOUND, "trainwatch run");
    for pid in &workers {
        until_blocking(&format!("worker {pid} gone"), || !alive(*pid));
    }
}

/// The whole way through `trainwatch run`: a job whose main process exits 0 while a worker
/// runs completes, and the report says that a process was left and ended.
#[test]
fn run_reports_a_worker_left_by_a_main_process_that_exited_0() {
    let dir = tempfile::tempdir().unwrap();
    let script = "setsid sh -c 'echo $$ > w1.pid; exec sleep 300' & i=0; while [ ! -s w1.pid ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; echo done; exit 0";
    let (mut tw, rx) = support::spawn_trainwatch(
        dir.path(),
        &[
            "run",
            "--color",
            "never",
            "--store",
            "s/state.db",
            "--",
            "sh",
            "-c",
            script,
        ],
        Stdio::null(),
    );
    let mut seen = Vec::new();
    support::wait_for(&rx, "Training Complete", BOUND, &mut seen);
    support::exit_within(&mut tw, BOUND, "trainwatch run");
    while let Ok(l) = rx.try_recv() {
        seen.push(l);
    }
    let out = seen.join("\n");
    let worker = pid_in(&dir.path().join("w1.pid")).expect("the worker wrote its PID");
    assert!(
        out.contains(&format!(
            "still running when its main process ended (PID {worker})"
        )),
        "{out}"
    );
    until_blocking("worker gone", || !alive(worker));
}

//! `trainwatch run` supervising real Slurm jobs, against the real daemons of `.ci/slurm up`:
//! submitted with sbatch, followed through the shared log, ended as Slurm says (completed,
//! failed, cancelled from chat or from outside, at the time limit), re-adopted by job id
//! after trainwatch is SIGKILLed (still running, or ended while it was down), and carried
//! through a controller that stops answering for a while. Without a cluster every test
//! prints why it is skipped (see `support::slurm`). Every job a test submits is cancelled
//! when the test ends, pass or fail.

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use support::slurm::{cluster, job_id_in, state_of, CancelByName};

/// Tests that stop a daemon of the shared cluster take it for themselves (write); the others
/// share it (read).
static CLUSTER: RwLock<()> = RwLock::new(());

const QUICK: Duration = Duration::from_secs(90);

fn config(dir: &Path, job: &str, argv: &str, slurm: &str) -> PathBuf {
    let path = dir.join("tw.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[store]
path = "state/state.db"
[jobs.{job}]
argv = {argv}
executor = "slurm"
log = "logs/train.log"
status_interval = "1h"
[jobs.{job}.slurm]
partition = "debug"
time_limit = "10m"
{slurm}
"#
        ),
    )
    .unwrap();
    path
}

fn start(dir: &Path, cfg: &Path, attended: bool) -> (Child, Receiver<String>) {
    let mode = if attended { "--attended" } else { "--unattended" };
    support::spawn_trainwatch(
        dir,
        &["run", mode, "--color", "never", "--config", cfg.to_str().unwrap()],
        if attended { Stdio::piped() } else { Stdio::null() },
    )
}

/// Every line until trainwatch exits (bounded), and its exit code.
fn to_the_end(
    mut child: Child,
    rx: Receiver<String>,
    mut seen: Vec<String>,
    limit: Duration,
) -> (i32, String) {
    let status = support::exit_within(&mut child, limit, "trainwatch run");
    // The reader thread ends with stdout: take everything it read.
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        seen.push(l);
    }
    (status.code().unwrap_or(-1), seen.join("\n"))
}

/// Wait for the line naming the Slurm job; its id.
fn submitted(rx: &Receiver<String>, seen: &mut Vec<String>) -> u64 {
    support::wait_for(rx, "Training submitted as Slurm job ", QUICK, seen);
    job_id_in(seen.last().unwrap()).expect("a job id")
}

fn wait_state(id: u64, want: &[&str], limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let s = state_of(id).unwrap_or_default();
        if want.contains(&s.as_str()) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {s:?}, not one of {want:?} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A job name of this test run only (Slurm keeps ended jobs, names and all, for an hour).
fn unique(base: &str) -> String {
    format!("{base}_{}", std::process::id())
}

fn sigkill(child: &mut Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[test]
fn a_slurm_job_is_supervised_from_submission_to_training_complete() {
    let _shared = CLUSTER.read().unwrap_or_else(|e| e.into_inner());
    let Some(_) = cluster("slurm job completes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = &unique("tw_run_ok");
    let _cancel = CancelByName(vec![job.to_string()]);
    let cfg = config(
        dir.path(),
        job,
        r#"["bash", "-c", "for i in 1 2 3; do echo \"step $i loss=0.$i\"; sleep 1; done; echo finished"]"#,
        "",
    );
    let (child, rx) = start(dir.path(), &cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    let (code, out) = to_the_end(child, rx, seen, QUICK);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Training Complete"), "{out}");
    assert!(out.contains("Status: SUCCESS"), "{out}");
    assert_eq!(state_of(id).as_deref(), Some("COMPLETED"));
    let log = std::fs::read_to_string(dir.path().join("logs/train.log")).unwrap();
    assert!(
        log.contains("step 3 loss=0.3") && log.contains("finished"),
        "{log}"
    );
    // Submitted through the script check-config shows.
    assert!(dir.path().join(format!("state/slurm/{job}.sbatch")).is_file());
}

#[test]
fn a_slurm_job_that_fails_is_reported_with_its_traceback_and_exit_code() {
    let _shared = CLUSTER.read().unwrap_or_else(|e| e.into_inner());
    let Some(_) = cluster("slurm job fails") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = &unique("tw_run_fail");
    let _cancel = CancelByName(vec![job.to_string()]);
    let cfg = config(
        dir.path(),
        job,
        r#"["bash", "-c", "echo 'epoch 1 loss=0.5'; printf 'Traceback (most recent call last):\n  File \"train.py\", line 9, in <module>\n    load(path)\nKeyError: '\\''features'\\''\n'; exit 3"]"#,
        "",
    );
    let (child, rx) = start(dir.path(), &cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    let (code, out) = to_the_end(child, rx, seen, QUICK);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ERROR DETECTED"), "{out}");
    assert!(out.contains("KeyError: 'features'"), "{out}");
    assert!(out.contains("Training Failed"), "{out}");
    assert!(out.contains("exit code 3"), "{out}");
    assert_eq!(state_of(id).as_deref(), Some("FAILED"));
}

#[test]
fn kill_from_chat_cancels_the_slurm_job() {
    let _shared = CLUSTER.read().unwrap_or_else(|e| e.into_inner());
    let Some(_) = cluster("kill from chat") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = &unique("tw_run_kill");
    let _cancel = CancelByName(vec![job.to_string()]);
    let cfg = config(dir.path(), job, r#"["bash", "-c", "echo up; sleep 300"]"#, "");
    let (mut child, rx) = start(dir.path(), &cfg, true);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    wait_state(id, &["RUNNING"], QUICK);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "/kill {job}").unwrap();
    support::wait_for(&rx, "Training Killed", QUICK, &mut seen);
    drop(stdin);
    let (code, out) = to_the_end(child, rx, seen, QUICK);
    assert_eq!(code, 1, "{out}");
    assert_eq!(wait_state(id, &["CANCELLED"], QUICK), "CANCELLED");
    assert!(
        !out.contains("ERROR DETECTED"),
        "our own cancel is no incident: {out}"
    );
}

#[test]
fn a_job_cancelled_outside_trainwatch_is_reported_as_stopped_from_outside() {
    let _shared = CLUSTER.read().unwrap_or_else(|e| e.into_inner());
    let Some(_) = cluster("scancel from outside") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = &unique("tw_run_scancel");
    let _cancel = CancelByName(vec![job.to_string()]);
    let cfg = config(dir.path(), job, r#"["bash", "-c", "echo up; sleep 300"]"#, "");
    let (child, rx) = start(dir.path(), &cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    wait_state(id, &["RUNNING"], QUICK);
    assert!(std::process::Command::new("scancel")
        .arg(id.to_string())
        .status()
        .unwrap()
        .success());
    let (code, out) = to_the_end(child, rx, seen, QUICK);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cancelled in the scheduler"), "{out}");
    assert!(out.contains("Training Failed"), "{out}");
}

#[test]
fn trainwatch_killed_mid_run_readopts_the_slurm_job_and_reports_its_end_once() {
    let _shared = CLUSTER.read().unwrap_or_else(|e| e.into_inner());
    let Some(_) = cluster("re-adopt a running slurm job") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = &unique("tw_run_readopt");
    let _cancel = CancelByName(vec![job.to_string()]);
    let cfg = config(
        dir.path(),
        job,
        r#"["bash", "-c", "for i in $(seq 1 8); do echo \"step $i\"; sleep 1; done"]"#,
        "",
    );
    let (mut first, rx) = start(dir.path(), &cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    wait_state(id, &["RUNNING"], QUICK);
    sigkill(&mut first);
    let before = seen.join("\n");
    let (second, rx) = start(dir.path(), &cfg, false);
    let (code, out) = to_the_end(second, rx, Vec::new(), QUICK);
    assert_eq!(code, 0, "{out}");
    assert_eq!(count(&out, "Training Complete"), 1, "{out}");
    assert_eq!(
        count(&format!("{before}\n{out}"), "Training submitted as"),
        1,
        "one run, submitted once: {before}\n{out}"
    );
    assert_eq!(state_of(id).as_deref(), Some("COMPLETED"));
    let submitted_jobs = std::process::Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%i", &format!("--name={job}")])
        .output()
        .unwrap();
    let ids = String::from_utf8_lossy(&submitted_jobs.stdout);
    assert_eq!(ids.split_whitespace().count(), 1, "submitted once: {ids}");
}

#[test]
fn a_slurm_job_that_ended_while_trainwatch_was_down_is_reported_once() {
    let _shared = CLUSTER.read().unwrap_or_else(|e| e.into_inner());
    let Some(_) = cluster("re-adopt an ended slurm job") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = &unique("tw_run_ended");
    let _cancel = CancelByName(vec![job.to_string()]);
    let cfg = config(
        dir.path(),
        job,
        r#"["bash", "-c", "echo working; sleep 2; echo 'RuntimeError: the loss is not finite' >&2; exit 4"]"#,
        "",
    );
    let (mut first, rx) = start(dir.path(), &cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    sigkill(&mut first);
    wait_state(id, &["FAILED"], QUICK);
    let (second, rx) = start(dir.path(), &cfg, false);
    let (code, out) = to_the_end(second, rx, Vec::new(), QUICK);
    assert_eq!(code, 1, "{out}");
    assert_eq!(count(&out, "Training Failed"), 1, "{out}");
    assert!(out.contains("exit code 4"), "{out}");
}

#[test]
fn a_slurm_job_at_its_time_limit_is_reported_as_ended_by_the_scheduler() {
    let _shared = CLUSTER.read().unwrap_or_else(|e| e.into_inner());
    let Some(_) = cluster("slurm time limit") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = &unique("tw_run_timeout");
    let _cancel = CancelByName(vec![job.to_string()]);
    let cfg = config(dir.path(), job, r#"["bash", "-c", "echo up; sleep 600"]"#, "");
    // The 10-minute limit of the other tests, cut to Slurm's shortest.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("time_limit = \"10m\"", "time_limit = \"1m\"");
    std::fs::write(&cfg, text).unwrap();
    let (child, rx) = start(dir.path(), &cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    // Slurm ends it between one and two minutes in (its timer runs once a minute or so).
    let (code, out) = to_the_end(child, rx, seen, Duration::from_secs(240));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("time limit"), "{out}");
    assert_eq!(state_of(id).as_deref(), Some("TIMEOUT"));
}

/// Pauses slurmctld (SIGSTOP) while held; continues it when dropped, pass or fail.
struct PausedController(i32);

impl PausedController {
    fn pause(conf: &Path) -> PausedController {
        let pidfile = conf.parent().unwrap().join("slurmctld.pid");
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP).unwrap();
        PausedController(pid)
    }
}

impl Drop for PausedController {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), nix::sys::signal::SIGCONT);
    }
}

#[test]
fn a_controller_that_stops_answering_for_a_while_does_not_end_the_watch() {
    let _alone = CLUSTER.write().unwrap_or_else(|e| e.into_inner());
    let Some(conf) = cluster("slurmctld not answering") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = &unique("tw_run_ctld");
    let _cancel = CancelByName(vec![job.to_string()]);
    let cfg = config(
        dir.path(),
        job,
        r#"["bash", "-c", "for i in $(seq 1 20); do echo \"step $i\"; sleep 1; done"]"#,
        "",
    );
    let (child, rx) = start(dir.path(), &cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    wait_state(id, &["RUNNING"], QUICK);
    {
        let _paused = PausedController::pause(&conf);
        // Longer than the clients' own wait for an answer (MessageTimeout, 10 s).
        std::thread::sleep(Duration::from_secs(15));
    }
    let (code, out) = to_the_end(child, rx, seen, Duration::from_secs(180));
    assert_eq!(code, 0, "{out}");
    assert_eq!(count(&out, "Training Complete"), 1, "{out}");
    let log = std::fs::read_to_string(dir.path().join("logs/train.log")).unwrap();
    assert!(log.contains("step 20"), "{log}");
}

#[test]
fn in_a_two_node_job_the_rank_that_raised_is_reported_while_the_other_still_waits() {
    let _shared = CLUSTER.read().unwrap_or_else(|e| e.into_inner());
    let Some(_) = cluster("gang failure") else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = &unique("tw_run_gang");
    let _cancel = CancelByName(vec![job.to_string()]);
    // Rank 1 raises; rank 0 would wait for it in a collective for five minutes.
    let cfg = config(
        dir.path(),
        job,
        r#"["bash", "-c", "echo \"step 1 on $SLURMD_NODENAME\"; if [ \"$SLURM_PROCID\" = 1 ]; then sleep 1; printf 'Traceback (most recent call last):\n  File \"train.py\", line 30, in <module>\n    schedule = config[\"lr_schedule\"]\nKeyError: '\\''lr_schedule'\\''\n'; exit 1; fi; sleep 300"]"#,
        "nodes = 2",
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "status_interval = \"1h\"",
        "status_interval = \"1h\"\non_error = \"kill\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let started = Instant::now();
    let (child, rx) = start(dir.path(), &cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    let (code, out) = to_the_end(child, rx, seen, QUICK);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the waiting rank did not hold the report up"
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ERROR DETECTED"), "{out}");
    assert!(
        out.contains("1: KeyError: 'lr_schedule'"),
        "rank 1's own line, labelled: {out}"
    );
    assert_eq!(
        count(&out, "ERROR DETECTED"),
        1,
        "one report, not one per rank: {out}"
    );
    assert_eq!(
        wait_state(id, &["CANCELLED"], QUICK),
        "CANCELLED",
        "the whole job was ended"
    );
}

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
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use support::slurm::{cluster, job_id_in, state_of, CancelByName};

/// Tests that stop a daemon of the shared cluster take it for themselves (write); the others
/// share it (read).
static CLUSTER: RwLock<()> = RwLock::new(());

const QUICK: Duration = Duration::from_secs(90);

/// Which hold a test takes on the cluster.
enum Hold {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

/// One test's part of the cluster: its folder, its job's name (of this test run only), the
/// cluster's slurm.conf; its jobs cancelled and its hold released when dropped, pass or fail.
struct Case {
    dir: tempfile::TempDir,
    job: String,
    conf: PathBuf,
    _cancel: CancelByName,
    _hold: Hold,
}

impl Case {
    /// A test that shares the cluster; None (the reason printed) without one.
    fn shared(test: &str, base: &str) -> Option<Case> {
        Case::new(
            test,
            base,
            Hold::Shared(CLUSTER.read().unwrap_or_else(|e| e.into_inner())),
        )
    }

    /// A test that stops a daemon of the cluster, which nobody else uses meanwhile.
    fn alone(test: &str, base: &str) -> Option<Case> {
        Case::new(
            test,
            base,
            Hold::Alone(CLUSTER.write().unwrap_or_else(|e| e.into_inner())),
        )
    }

    fn new(test: &str, base: &str, hold: Hold) -> Option<Case> {
        let conf = cluster(test)?;
        let job = unique(base);
        Some(Case {
            dir: tempfile::tempdir().unwrap(),
            _cancel: CancelByName(vec![job.clone()]),
            job,
            conf,
            _hold: hold,
        })
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The job's config: `argv` (TOML) under Slurm with a 10-minute limit, `slurm` added to
    /// its `[jobs.NAME.slurm]` table.
    fn config(&self, argv: &str, slurm: &str) -> PathBuf {
        let job = &self.job;
        let path = self.dir().join("tw.toml");
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

    fn start(&self, cfg: &Path, attended: bool) -> (Child, Receiver<String>) {
        let mode = if attended { "--attended" } else { "--unattended" };
        support::spawn_trainwatch(
            self.dir(),
            &["run", mode, "--color", "never", "--config", cfg.to_str().unwrap()],
            if attended { Stdio::piped() } else { Stdio::null() },
        )
    }
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
    let Some(case) = Case::shared("slurm job completes", "tw_run_ok") else {
        return;
    };
    let job = &case.job;
    let cfg = case.config(
        r#"["bash", "-c", "for i in 1 2 3; do echo \"step $i loss=0.$i\"; sleep 1; done; echo finished"]"#,
        "",
    );
    let (child, rx) = case.start(&cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    let (code, out) = to_the_end(child, rx, seen, QUICK);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Training Complete"), "{out}");
    assert!(out.contains("Status: SUCCESS"), "{out}");
    assert_eq!(state_of(id).as_deref(), Some("COMPLETED"));
    let log = std::fs::read_to_string(case.dir().join("logs/train.log")).unwrap();
    assert!(
        log.contains("step 3 loss=0.3") && log.contains("finished"),
        "{log}"
    );
    // Submitted through the script check-config shows.
    assert!(case.dir().join(format!("state/slurm/{job}.sbatch")).is_file());
}

#[test]
fn a_slurm_job_that_fails_is_reported_with_its_traceback_and_exit_code() {
    let Some(case) = Case::shared("slurm job fails", "tw_run_fail") else {
        return;
    };
    let cfg = case.config(r#"["bash", "-c", "echo 'epoch 1 loss=0.5'; printf 'Traceback (most recent call last):\n  File \"train.py\", line 9, in <module>\n    load(path)\nKeyError: '\\''features'\\''\n'; exit 3"]"#,
        "",
    );
    let (child, rx) = case.start(&cfg, false);
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
    let Some(case) = Case::shared("kill from chat", "tw_run_kill") else {
        return;
    };
    let job = &case.job;
    let cfg = case.config(r#"["bash", "-c", "echo up; sleep 300"]"#, "");
    let (mut child, rx) = case.start(&cfg, true);
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
    let Some(case) = Case::shared("scancel from outside", "tw_run_scancel") else {
        return;
    };
    let cfg = case.config(r#"["bash", "-c", "echo up; sleep 300"]"#, "");
    let (child, rx) = case.start(&cfg, false);
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
    let Some(case) = Case::shared("re-adopt a running slurm job", "tw_run_readopt") else {
        return;
    };
    let job = &case.job;
    let cfg = case.config(
        r#"["bash", "-c", "for i in $(seq 1 8); do echo \"step $i\"; sleep 1; done"]"#,
        "",
    );
    let (mut first, rx) = case.start(&cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    wait_state(id, &["RUNNING"], QUICK);
    sigkill(&mut first);
    let before = seen.join("\n");
    let (second, rx) = case.start(&cfg, false);
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
    let Some(case) = Case::shared("re-adopt an ended slurm job", "tw_run_ended") else {
        return;
    };
    let cfg = case.config(
        r#"["bash", "-c", "echo working; sleep 2; echo 'RuntimeError: the loss is not finite' >&2; exit 4"]"#,
        "",
    );
    let (mut first, rx) = case.start(&cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    sigkill(&mut first);
    wait_state(id, &["FAILED"], QUICK);
    let (second, rx) = case.start(&cfg, false);
    let (code, out) = to_the_end(second, rx, Vec::new(), QUICK);
    assert_eq!(code, 1, "{out}");
    assert_eq!(count(&out, "Training Failed"), 1, "{out}");
    assert!(out.contains("exit code 4"), "{out}");
}

#[test]
fn a_slurm_job_at_its_time_limit_is_reported_as_ended_by_the_scheduler() {
    let Some(case) = Case::shared("slurm time limit", "tw_run_timeout") else {
        return;
    };
    let cfg = case.config(r#"["bash", "-c", "echo up; sleep 600"]"#, "");
    // The 10-minute limit of the other tests, cut to Slurm's shortest.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("time_limit = \"10m\"", "time_limit = \"1m\"");
    std::fs::write(&cfg, text).unwrap();
    let (child, rx) = case.start(&cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    // Slurm ends it between one and two minutes in (its timer runs once a minute or so).
    let (code, out) = to_the_end(child, rx, seen, Duration::from_secs(240));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("time limit"), "{out}");
    assert_eq!(state_of(id).as_deref(), Some("TIMEOUT"));
    // The warning came first, while there was time to act (half of a 1-minute limit ahead:
    // the default 10 minutes is capped at half the limit).
    let warned = out
        .find("TIMEOUT WARNING")
        .unwrap_or_else(|| panic!("no warning: {out}"));
    let ended = out
        .find("Training Failed")
        .unwrap_or_else(|| panic!("no end: {out}"));
    assert!(warned < ended, "{out}");
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
    let Some(case) = Case::alone("slurmctld not answering", "tw_run_ctld") else {
        return;
    };
    let conf = case.conf.clone();
    let cfg = case.config(
        r#"["bash", "-c", "for i in $(seq 1 45); do echo \"step $i\"; sleep 1; done"]"#,
        "",
    );
    let (child, rx) = case.start(&cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    wait_state(id, &["RUNNING"], QUICK);
    // Its srun step running (srun itself asks the controller for the step; a pause before that
    // fails the step, which is another test's matter).
    log_shows(case.dir(), "step 2");
    {
        let _paused = PausedController::pause(&conf);
        // Longer than a client's own wait for an answer (twice MessageTimeout, 10 s, here).
        std::thread::sleep(Duration::from_secs(30));
    }
    let (code, out) = to_the_end(child, rx, seen, Duration::from_secs(180));
    assert_eq!(code, 0, "{out}");
    assert_eq!(count(&out, "Training Complete"), 1, "{out}");
    let log = std::fs::read_to_string(case.dir().join("logs/train.log")).unwrap();
    assert!(log.contains("step 45"), "{log}");
    // Told once each way, and nothing concluded about the job meanwhile.
    assert_eq!(count(&out, "Scheduler not answering"), 1, "{out}");
    assert_eq!(count(&out, "Scheduler answering again"), 1, "{out}");
    assert!(!out.contains("ERROR DETECTED"), "{out}");
}

#[test]
fn in_a_two_node_job_the_rank_that_raised_is_reported_while_the_other_still_waits() {
    let Some(case) = Case::shared("gang failure", "tw_run_gang") else {
        return;
    };
    // Rank 1 raises; rank 0 would wait for it in a collective for five minutes.
    let cfg = case.config(r#"["bash", "-c", "echo \"step 1 on $SLURMD_NODENAME\"; if [ \"$SLURM_PROCID\" = 1 ]; then sleep 1; printf 'Traceback (most recent call last):\n  File \"train.py\", line 30, in <module>\n    schedule = config[\"lr_schedule\"]\nKeyError: '\\''lr_schedule'\\''\n'; exit 1; fi; sleep 300"]"#,
        "nodes = 2",
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "status_interval = \"1h\"",
        "status_interval = \"1h\"\non_error = \"kill\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let started = Instant::now();
    let (child, rx) = case.start(&cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    let (code, out) = to_the_end(child, rx, seen, QUICK);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the waiting rank did not hold the report up"
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ERROR DETECTED"), "{out}");
    // Its node is added when srun's "task 1: Exited" line comes (detector test
    // `srun_labels_name_the_rank…`); here the policy's kill may end srun before it says so.
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

#[test]
fn a_held_job_is_told_waiting_in_queue_with_why_until_it_is_released() {
    let Some(case) = Case::shared("held in queue", "tw_run_held") else {
        return;
    };
    let job = &case.job;
    let cfg = case.config(
        r#"["bash", "-c", "echo running; sleep 1"]"#,
        r#"extra_args = ["--hold"]"#,
    );
    let (mut child, rx) = case.start(&cfg, true);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    let mut stdin = child.stdin.take().unwrap();
    // The queue's word reaches the engine on the next poll; ask until it is there.
    let deadline = Instant::now() + QUICK;
    loop {
        writeln!(stdin, "/status {job}").unwrap();
        std::thread::sleep(Duration::from_millis(500));
        while let Ok(l) = rx.try_recv() {
            seen.push(l);
        }
        if seen.iter().any(|l| l.contains("waiting in queue for")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no queue in /status: {}",
            seen.join("\n")
        );
    }
    let said = seen
        .iter()
        .find(|l| l.contains("waiting in queue for"))
        .unwrap()
        .clone();
    assert!(said.to_lowercase().contains("held"), "{said}");
    assert_eq!(state_of(id).as_deref(), Some("PENDING"));
    assert!(std::process::Command::new("scontrol")
        .args(["release", &id.to_string()])
        .status()
        .unwrap()
        .success());
    support::wait_for(&rx, "Started by the scheduler", QUICK, &mut seen);
    support::wait_for(&rx, "Training Complete", QUICK, &mut seen);
    drop(stdin);
    let (code, out) = to_the_end(child, rx, seen, QUICK);
    assert_eq!(code, 0, "{out}");
}

/// Slurm's time limit of a job, as `scontrol show job` says it (`0:02:00`, `01:02:00`).
fn time_limit_of(id: u64) -> String {
    let out = std::process::Command::new("scontrol")
        .args(["show", "job", "-o", &id.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("TimeLimit="))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_timeout_warning_comes_before_slurms_limit_and_extend_raises_it() {
    let Some(case) = Case::shared("extend", "tw_run_extend") else {
        return;
    };
    let job = &case.job;
    let cfg = case.config(
        r#"["bash", "-c", "echo up; sleep 600"]"#,
        "warn_before = \"1m\"\nextend_by = \"30m\"",
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("time_limit = \"10m\"", "time_limit = \"2m\"");
    std::fs::write(&cfg, text).unwrap();
    let (mut child, rx) = case.start(&cfg, true);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    // A minute before the 2-minute limit, so about a minute in.
    support::wait_for(&rx, "TIMEOUT WARNING", Duration::from_secs(150), &mut seen);
    assert_eq!(
        state_of(id).as_deref(),
        Some("RUNNING"),
        "warned while there is time to act"
    );
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "/extend {job}").unwrap();
    support::wait_for(&rx, "Time limit extended", QUICK, &mut seen);
    assert_eq!(time_limit_of(id), "00:32:00", "2 min + 30 min");
    writeln!(stdin, "/kill {job}").unwrap();
    support::wait_for(&rx, "Training Killed", QUICK, &mut seen);
    drop(stdin);
    let (code, out) = to_the_end(child, rx, seen, QUICK);
    assert_eq!(code, 1, "{out}");
    assert!(
        !out.contains("time limit (TIMEOUT)"),
        "the extended job did not time out: {out}"
    );
}

/// A node of the test cluster taken down as a real failure takes it (its slurmd killed), and
/// brought back when dropped, pass or fail.
struct DeadNode {
    conf: PathBuf,
    name: &'static str,
}

impl DeadNode {
    /// Kill node `name` as a failure would, with job `job`'s processes on it: its slurmd and
    /// the job's slurmstepd (`slurmstepd: [JOB.…]`) with everything they started — both nodes
    /// run on this host, and a step left behind by a dead slurmd would go on writing the log.
    fn kill(conf: &Path, name: &'static str, job: u64) -> DeadNode {
        let pidfile = conf.parent().unwrap().join(format!("slurmd-{name}.pid"));
        let slurmd: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        let mut doomed = vec![slurmd];
        doomed.extend(steps_and_descendants(job));
        for pid in doomed {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        DeadNode {
            conf: conf.to_path_buf(),
            name,
        }
    }
}

/// The slurmstepd processes of `job` and all their descendants (read from /proc).
fn steps_and_descendants(job: u64) -> Vec<i32> {
    let procs: Vec<(i32, i32, String)> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            Some((pid, ppid, cmd))
        })
        .collect();
    let step = format!("slurmstepd: [{job}.");
    let mut found: Vec<i32> = procs
        .iter()
        .filter(|(_, _, cmd)| cmd.starts_with(&step))
        .map(|(pid, _, _)| *pid)
        .collect();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            procs
                .iter()
                .filter(|(_, ppid, _)| *ppid == parent)
                .map(|(pid, _, _)| *pid),
        );
        i += 1;
    }
    found
}

impl Drop for DeadNode {
    fn drop(&mut self) {
        // As `.ci/slurm up` starts it; it re-registers and the controller returns it to service.
        let _ = std::process::Command::new("slurmd")
            .args(["-N", self.name])
            .env("SLURM_CONF", &self.conf)
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let out = std::process::Command::new("sinfo")
                .args(["-h", "-n", self.name, "-o", "%t"])
                .output();
            if out.is_ok_and(|o| {
                matches!(
                    String::from_utf8_lossy(&o.stdout).trim(),
                    "idle" | "alloc" | "mix"
                )
            }) {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Wait (bounded) until the job's log holds `needle`: its step runs (a node killed before
/// srun has launched its step fails the step instead, which is not a node failure).
fn log_shows(dir: &Path, needle: &str) {
    let log = dir.join("logs/train.log");
    let deadline = Instant::now() + QUICK;
    while !std::fs::read_to_string(&log).unwrap_or_default().contains(needle) {
        assert!(Instant::now() < deadline, "{needle:?} not in the log");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Skip the delay Slurm puts on a requeued or resubmitted job before it may start again.
fn start_now(id: u64) {
    let _ = std::process::Command::new("scontrol")
        .args(["update", &format!("JobId={id}"), "StartTime=now"])
        .status();
}

#[test]
fn a_node_failure_requeues_the_job_and_trainwatch_follows_it_into_its_next_attempt() {
    let Some(case) = Case::alone("node failure, requeue", "tw_run_nodefail") else {
        return;
    };
    let conf = case.conf.clone();
    let cfg = case.config(r#"["bash", "-c", "echo \"attempt on $SLURMD_NODENAME, restart ${SLURM_RESTART_COUNT:-0}\"; if [ \"${SLURM_RESTART_COUNT:-0}\" = 0 ]; then sleep 600; fi; echo finished"]"#,
        r#"extra_args = ["--nodelist=n2"]"#,
    );
    let (child, rx) = case.start(&cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    wait_state(id, &["RUNNING"], QUICK);
    log_shows(case.dir(), "attempt on n2");
    {
        let _dead = DeadNode::kill(&conf, "n2", id);
        // slurmctld marks n2 down after SlurmdTimeout (10 s) and requeues the job.
        support::wait_for(&rx, "Requeued by the scheduler", QUICK, &mut seen);
    }
    // The node back in service and settled before the job may start on it again (slurmctld
    // 22.05 was seen to crash when a requeued job was started on a node the same second it
    // returned).
    std::thread::sleep(Duration::from_secs(5));
    start_now(id);
    let (code, out) = to_the_end(child, rx, seen, Duration::from_secs(180));
    assert_eq!(code, 0, "{out}");
    assert_eq!(count(&out, "Training Complete"), 1, "{out}");
    assert!(
        !out.contains("ERROR DETECTED"),
        "a requeue within the policy's limit is no error: {out}"
    );
    assert_eq!(
        count(&out, "Training submitted as"),
        1,
        "Slurm ran the same job again: {out}"
    );
    let log = std::fs::read_to_string(case.dir().join("logs/train.log")).unwrap();
    assert!(
        log.contains("restart 0") && log.contains("restart 1") && log.contains("finished"),
        "{log}"
    );
}

#[test]
fn a_node_failure_without_requeue_is_infrastructure_and_resubmitted_by_the_policy() {
    let Some(case) = Case::alone("node failure, resubmit", "tw_run_resubmit") else {
        return;
    };
    let conf = case.conf.clone();
    let marker = case.dir().join("first-attempt-ran");
    let argv = format!(
        r#"["bash", "-c", "if [ ! -e {m} ]; then touch {m}; echo first; sleep 600; fi; echo second; echo finished"]"#,
        m = marker.display()
    );
    let cfg = case.config(&argv, r#"extra_args = ["--no-requeue", "--nodelist=n2"]"#);
    let (child, rx) = case.start(&cfg, false);
    let mut seen = Vec::new();
    let first = submitted(&rx, &mut seen);
    wait_state(first, &["RUNNING"], QUICK);
    log_shows(case.dir(), "first");
    {
        let _dead = DeadNode::kill(&conf, "n2", first);
        support::wait_for(&rx, "Resubmitted after a cluster failure", QUICK, &mut seen);
    }
    assert_eq!(state_of(first).as_deref(), Some("NODE_FAIL"));
    let (code, out) = to_the_end(child, rx, seen, Duration::from_secs(180));
    assert_eq!(code, 0, "{out}");
    assert_eq!(count(&out, "Training Complete"), 1, "{out}");
    assert!(out.contains("infrastructure") || out.contains("cluster"), "{out}");
    let log = std::fs::read_to_string(case.dir().join("logs/train.log")).unwrap();
    assert!(
        log.contains("first") && log.contains("second"),
        "one log across both jobs: {log}"
    );
}

#[test]
fn restart_from_chat_resubmits_from_the_newest_checkpoint_into_the_same_log() {
    let Some(case) = Case::shared("restart by resubmission", "tw_run_restart") else {
        return;
    };
    let job = &case.job;
    let cfg = case.config(r#"["bash", "-c", "mkdir -p ckpt; echo 1 > ckpt/epoch1.ckpt; echo 'epoch 1 loss=0.4'; printf 'Traceback (most recent call last):\n  File \"train.py\", line 12, in <module>\nValueError: the loss spiked\n'; exit 1"]"#,
        "",
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "status_interval = \"1h\"",
        "status_interval = \"1h\"\ncheckpoint = \"ckpt/*.ckpt\"\nresume_argv = [\"bash\", \"-c\", \"echo \\\"resumed from $0\\\"; echo finished\", \"{checkpoint}\"]",
    );
    std::fs::write(&cfg, text).unwrap();
    let (mut child, rx) = case.start(&cfg, true);
    let mut seen = Vec::new();
    let first = submitted(&rx, &mut seen);
    support::wait_for(&rx, "ERROR DETECTED", QUICK, &mut seen);
    wait_state(first, &["FAILED"], QUICK);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "/decide {job} restart").unwrap();
    support::wait_for(&rx, "Training Complete", QUICK, &mut seen);
    drop(stdin);
    let (code, out) = to_the_end(child, rx, seen, QUICK);
    assert_eq!(code, 0, "{out}");
    let second = out
        .lines()
        .filter_map(job_id_in)
        .find(|id| *id != first)
        .unwrap_or_else(|| panic!("no second Slurm job: {out}"));
    assert_eq!(state_of(second).as_deref(), Some("COMPLETED"));
    let log = std::fs::read_to_string(case.dir().join("logs/train.log")).unwrap();
    assert!(
        log.contains("the loss spiked"),
        "the first attempt's lines are kept: {log}"
    );
    assert!(
        log.contains("resumed from") && log.contains("epoch1.ckpt"),
        "{log}"
    );
}

#[test]
fn a_task_killed_by_a_signal_is_reported_with_it() {
    let Some(case) = Case::shared("task killed by a signal", "tw_run_sigkill") else {
        return;
    };
    let cfg = case.config(r#"["bash", "-c", "echo 'epoch 1 loss=0.5'; kill -9 $$"]"#, "");
    let (child, rx) = case.start(&cfg, false);
    let mut seen = Vec::new();
    let id = submitted(&rx, &mut seen);
    let (code, out) = to_the_end(child, rx, seen, QUICK);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("SIGKILL"), "{out}");
    assert!(
        out.contains("resource"),
        "a SIGKILL with no traceback: out of memory? {out}"
    );
    assert_eq!(state_of(id).as_deref(), Some("FAILED"));
}

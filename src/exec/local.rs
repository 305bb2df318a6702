//! Starting, following, stopping and re-adopting a local job through its shim.
//!
//! trainwatch is the shim's parent only until it restarts; so every question ("is it
//! running?", "how did it end?") is answered from the state folder and `/proc`, and being
//! the parent only makes the answer arrive sooner.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio::time::{sleep, Instant};

use super::contain::{self, Containment, Roots};
use super::state::{self, ExitRecord, JobRecord, SpawnErrorRecord};
use super::{absolute, ExecError};
use crate::model::ExitOutcome;

/// How long [`spawn`] waits for the shim to report the job's PID.
pub const DEFAULT_SPAWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an adopted job is looked at (reacting within ~0.5 s is enough for a chat bot).
/// How often an adopted job's state is checked (we are not the shim's parent, so nothing
/// wakes us when it ends). Idle cost matters: 20 quiet jobs must cost < 0.1 % of a core.
const POLL: Duration = Duration::from_secs(1);
/// The same while we are the shim's parent: its exit wakes us at once; this only catches a
/// job whose main process ended while workers it left keep the shim alive.
const PARENT_POLL: Duration = Duration::from_secs(5);
/// Poll step while a spawn or a kill is in progress (short operations, worth a finer grain).
const FINE_POLL: Duration = Duration::from_millis(25);
/// After SIGKILL, how long `kill` waits for the group to be gone before returning anyway.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// What to run and where. `argv` is run as is (no shell; `argv[0]` is looked up in `PATH`).
/// Relative paths are taken from trainwatch's current directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnSpec {
    pub argv: Vec<String>,
    pub workdir: PathBuf,
    /// Set on top of trainwatch's own environment.
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
    /// Append to the log (a restart within a run). When false, an existing non-empty log is
    /// renamed aside to `<log>.<unix-seconds>.prev` and reported in [`JobHandle::moved_log`].
    pub append: bool,
    /// The run's state folder (created if missing). One job at a time per folder.
    pub state_dir: PathBuf,
    /// The program to run as `<program> __shim …`; `None` means the current executable.
    /// Tests pass the built `trainwatch` binary here.
    pub shim_program: Option<PathBuf>,
    /// What processes left running after the main one ended get between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Hold the job in a cgroup v2 of its own where the machine allows it (else, or when
    /// false, the shim holds it as subreaper only).
    pub cgroup: bool,
    /// Move the job into its cgroup between fork and exec rather than start it there with
    /// `clone3` — the way the shim takes where the kernel refuses `clone3`; the tests take it
    /// on purpose so that it is exercised on kernels that accept `clone3`.
    pub move_into_cgroup: bool,
}

impl SpawnSpec {
    pub fn new(argv: Vec<String>, workdir: PathBuf, log: PathBuf, state_dir: PathBuf) -> Self {
        Self {
            argv,
            workdir,
            env: Vec::new(),
            log,
            append: false,
            state_dir,
            shim_program: None,
            kill_grace: DEFAULT_LINGER_GRACE,
            cgroup: true,
            move_into_cgroup: false,
        }
    }
}

/// [`SpawnSpec::kill_grace`] unless set otherwise.
pub const DEFAULT_LINGER_GRACE: Duration = Duration::from_secs(30);

/// A started (or adopted) job. Cheap to clone; every clone sees the same job.
#[derive(Debug, Clone)]
pub struct JobHandle {
    /// The job's PID, which is also its process group (and session) id.
    pub pid: u32,
    pub shim_pid: u32,
    pub state_dir: PathBuf,
    pub log: PathBuf,
    /// Where a previous log was moved aside by this spawn, if it was.
    pub moved_log: Option<PathBuf>,
    pub started_at: SystemTime,
    starttime: u64,
    shim_starttime: u64,
    /// How the job's processes are held together: what a kill reaches.
    pub containment: Containment,
    /// Set when we are the shim's parent: flips to true when the shim has been reaped.
    shim_exited: Option<watch::Receiver<bool>>,
}

/// What [`adopt`] found in a state folder.
#[derive(Debug, Clone)]
pub enum Adopted {
    Running(JobHandle),
    Ended(ExitOutcome),
}

/// Start a job through a detached shim. Returns once the shim has reported the job's PID
/// (bounded by [`DEFAULT_SPAWN_TIMEOUT`]); a job that cannot start at all (missing program
/// or working directory…) is an [`ExecError::Spawn`] saying why.
pub async fn spawn(spec: &SpawnSpec) -> Result<JobHandle, ExecError> {
    spawn_with_timeout(spec, DEFAULT_SPAWN_TIMEOUT).await
}

/// [`spawn`] with an explicit bound on the wait for the job's PID.
pub async fn spawn_with_timeout(spec: &SpawnSpec, timeout: Duration) -> Result<JobHandle, ExecError> {
    if spec.argv.first().map_or(true, |p| p.is_empty()) {
        return Err(ExecError::InvalidSpec("the job's argv is empty".into()));
    }
    if spec.argv.iter().any(|a| a.contains('\0')) {
        return Err(ExecError::InvalidSpec(
            "an argv element contains a NUL byte".into(),
        ));
    }
    let state_dir = absolute(&spec.state_dir)?;
    let log = absolute(&spec.log)?;
    let workdir = absolute(&spec.workdir)?;

    fs::create_dir_all(&state_dir)
        .map_err(|e| ExecError::io(format!("creating {}", state_dir.display()), e))?;
    if let Some(parent) = log.parent() {
        fs::create_dir_all(parent).map_err(|e| ExecError::io(format!("creating {}", parent.display()), e))?;
    }
    if let Some(Adopted::Running(h)) = adopt(&state_dir)? {
        return Err(ExecError::AlreadyRunning { pid: h.pid });
    }
    for name in [state::JOB_FILE, state::EXIT_FILE, state::SPAWN_ERROR_FILE] {
        match fs::remove_file(state_dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ExecError::io(format!("clearing {name}"), e)),
        }
    }
    let moved_log = if spec.append { None } else { move_aside(&log)? };

    let shim_program = match &spec.shim_program {
        Some(p) => p.clone(),
        None => {
            std::env::current_exe().map_err(|e| ExecError::io("locating the trainwatch executable", e))?
        }
    };
    let shim_log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join(state::SHIM_LOG))
        .map_err(|e| ExecError::io("opening the shim's log", e))?;

    let mut cmd = tokio::process::Command::new(&shim_program);
    cmd.arg("__shim")
        .arg("--state-dir")
        .arg(&state_dir)
        .arg("--log")
        .arg(&log)
        .arg("--workdir")
        .arg(&workdir)
        .arg("--grace-ms")
        .arg(spec.kill_grace.as_millis().to_string());
    if !spec.cgroup {
        cmd.arg("--no-cgroup");
    }
    if spec.move_into_cgroup {
        cmd.arg("--move-into-cgroup");
    }
    cmd.arg("--")
        .args(&spec.argv)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        // The shim must not pin the caller's current directory (or its mount).
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(shim_log)
        .kill_on_drop(false);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent. Its own
    // session detaches the shim from our terminal and from signals sent to our group.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| ExecError::Spawn(format!("cannot start the shim {}: {e}", shim_program.display())))?;
    let (tx, rx) = watch::channel(false);
    // Reap the shim when it ends (no zombie), and wake waiters.
    tokio::spawn(async move {
        let _ = child.wait().await;
        let _ = tx.send(true);
    });

    let deadline = Instant::now() + timeout;
    loop {
        if let Some(rec) = state::read::<JobRecord>(&state_dir, state::JOB_FILE)? {
            tracing::info!(pid = rec.pid, shim = rec.shim_pid, held_by = %rec.containment, "job started");
            let mut h = JobHandle::from_record(rec, state_dir);
            h.moved_log = moved_log;
            h.shim_exited = Some(rx);
            return Ok(h);
        }
        if let Some(err) = state::read::<SpawnErrorRecord>(&state_dir, state::SPAWN_ERROR_FILE)? {
            return Err(ExecError::Spawn(err.message));
        }
        if *rx.borrow() {
            // The shim is gone; it may have written its record just before exiting.
            if let Some(err) = state::read::<SpawnErrorRecord>(&state_dir, state::SPAWN_ERROR_FILE)? {
                return Err(ExecError::Spawn(err.message));
            }
            if state::read::<JobRecord>(&state_dir, state::JOB_FILE)?.is_none() {
                return Err(ExecError::Spawn(format!(
                    "the shim ({}) exited without starting the job; see {}",
                    shim_program.display(),
                    state_dir.join(state::SHIM_LOG).display()
                )));
            }
            continue;
        }
        if Instant::now() >= deadline {
            return Err(ExecError::SpawnTimeout(timeout));
        }
        sleep(FINE_POLL).await;
    }
}

/// Rename a non-empty `log` to `<log>.<unix-seconds>.prev` (with `-N` added if that name is
/// taken). Returns the new name, or `None` when there was nothing to keep.
pub(crate) fn move_aside(log: &Path) -> Result<Option<PathBuf>, ExecError> {
    match fs::metadata(log) {
        Ok(m) if m.len() > 0 => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ExecError::io(format!("inspecting {}", log.display()), e)),
    }
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = log.as_os_str().to_owned();
    for n in 0..1000u32 {
        let mut name = base.clone();
        if n == 0 {
            name.push(format!(".{secs}.prev"));
        } else {
            name.push(format!(".{secs}-{n}.prev"));
        }
        let target = PathBuf::from(name);
        if target.exists() {
            continue;
        }
        fs::rename(log, &target).map_err(|e| {
            ExecError::io(
                format!("moving {} aside to {}", log.display(), target.display()),
                e,
            )
        })?;
        tracing::info!(from = %log.display(), to = %target.display(), "previous log moved aside");
        return Ok(Some(target));
    }
    Err(ExecError::InvalidSpec(format!(
        "too many previous logs named {}.{secs}*.prev",
        log.display()
    )))
}

/// Look at a state folder left by an earlier trainwatch: `None` when no job was ever
/// started there, else whether it is still running (with a handle to wait on or kill) or
/// how it ended. A job whose shim died without recording its end is `Ended(Unknown)`.
pub fn adopt(state_dir: &Path) -> Result<Option<Adopted>, ExecError> {
    let state_dir = absolute(state_dir)?;
    let Some(rec) = state::read::<JobRecord>(&state_dir, state::JOB_FILE)? else {
        return Ok(None);
    };
    let h = JobHandle::from_record(rec, state_dir);
    Ok(Some(match h.status() {
        Some(outcome) => Adopted::Ended(outcome),
        None => Adopted::Running(h),
    }))
}

impl JobHandle {
    fn from_record(rec: JobRecord, state_dir: PathBuf) -> Self {
        Self {
            pid: rec.pid,
            shim_pid: rec.shim_pid,
            state_dir,
            log: rec.log,
            moved_log: None,
            started_at: UNIX_EPOCH + Duration::from_millis(rec.started_at_ms),
            starttime: rec.starttime,
            shim_starttime: rec.shim_starttime,
            containment: rec.containment,
            shim_exited: None,
        }
    }

    /// The job's end as recorded by the shim, if recorded.
    fn recorded(&self) -> Option<ExitOutcome> {
        match state::read::<ExitRecord>(&self.state_dir, state::EXIT_FILE) {
            Ok(r) => r.map(|r| r.outcome),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the job's exit record");
                None
            }
        }
    }

    /// `None` while the job runs (or its shim is about to record its end); else how it
    /// ended.
    pub fn status(&self) -> Option<ExitOutcome> {
        if let Some(o) = self.recorded() {
            return Some(o);
        }
        if state::is_alive(self.pid, self.starttime) || state::is_alive(self.shim_pid, self.shim_starttime) {
            return None;
        }
        // Both gone. A shim that was killed could not remove the job's cgroup: an empty one
        // goes now. The shim may have written its record between the looks above.
        contain::remove(&self.containment);
        Some(self.recorded().unwrap_or(ExitOutcome::Unknown))
    }

    /// Processes of the job that were still running when its main process ended, as the
    /// shim recorded them (it ends them); empty when none were, or nothing was recorded.
    pub fn lingering(&self) -> Vec<u32> {
        state::read::<ExitRecord>(&self.state_dir, state::EXIT_FILE)
            .ok()
            .flatten()
            .map(|r| r.lingering)
            .unwrap_or_default()
    }

    /// When the job's end was recorded by its shim, if it was.
    pub fn ended_at(&self) -> Option<SystemTime> {
        state::read::<ExitRecord>(&self.state_dir, state::EXIT_FILE)
            .ok()
            .flatten()
            .map(|r| UNIX_EPOCH + Duration::from_millis(r.ended_at_ms))
    }

    pub fn is_running(&self) -> bool {
        self.status().is_none()
    }

    /// Wait for the job's main process to end and learn how. Workers it left running (still
    /// in its process group) do not hold this up; [`JobHandle::kill`] reaches them.
    /// Cancellable: drop the future.
    pub async fn wait(&self) -> ExitOutcome {
        let mut shim_exited = self.shim_exited.clone();
        loop {
            if let Some(o) = self.status() {
                return o;
            }
            match shim_exited.as_mut() {
                Some(rx) => {
                    tokio::select! {
                        _ = sleep(PARENT_POLL) => {}
                        changed = rx.changed() => {
                            if changed.is_err() {
                                // The reaper is done; plain polling from here on.
                                shim_exited = None;
                            }
                        }
                    }
                }
                None => sleep(POLL).await,
            }
        }
    }

    /// Stop the whole job — every process of it, including workers that left its session or
    /// process group (see [`Containment`]): SIGTERM to all, SIGKILL to whatever is still
    /// alive after `grace`. Returns when none is left (or, if even SIGKILL does not take one
    /// down at once — a process stuck in the kernel — after a few more seconds). Killing a
    /// job that already ended is not an error.
    pub async fn kill(&self, grace: Duration) -> Result<(), ExecError> {
        let roots = self.roots();
        let left = || contain::members(&self.containment, roots);
        let pids = left();
        if pids.is_empty() {
            return Ok(());
        }
        tracing::info!(pgid = self.pid, processes = pids.len(), held_by = %self.containment, "sending SIGTERM to the job");
        contain::signal(&self.containment, roots, &pids, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if left().is_empty() {
                return Ok(());
            }
            sleep(FINE_POLL.min(deadline - Instant::now())).await;
        }
        tracing::info!(
            pgid = self.pid,
            ?grace,
            "grace period over, sending SIGKILL to the job"
        );
        let deadline = Instant::now() + AFTER_KILL;
        loop {
            let pids = left();
            if pids.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    pgid = self.pid,
                    ?pids,
                    "processes of the job still alive after SIGKILL"
                );
                return Ok(());
            }
            // Again each round: a process forked since the last look is signalled too.
            contain::signal(&self.containment, roots, &pids, Signal::SIGKILL);
            sleep(FINE_POLL).await;
        }
    }

    /// Where the job's processes are to be found, leaving out PIDs that now belong to someone
    /// else (a live process under our PID with another start time means ours is long gone,
    /// and the kernel does not reuse a PID while its group exists).
    fn roots(&self) -> Roots {
        let original =
            |pid: u32, starttime: u64| state::proc_stat(pid).map_or(true, |s| s.starttime == starttime);
        Roots {
            shim: state::is_alive(self.shim_pid, self.shim_starttime).then_some(self.shim_pid),
            pgid: original(self.pid, self.starttime).then_some(self.pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kill_leaves_alone_a_process_that_reused_the_pid() {
        use std::os::unix::process::CommandExt;
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = other.id();
        let real = state::proc_stat(pid).unwrap().starttime;
        let h = JobHandle {
            pid,
            shim_pid: pid,
            state_dir: PathBuf::from("/nonexistent"),
            log: PathBuf::from("/nonexistent/log"),
            moved_log: None,
            started_at: UNIX_EPOCH,
            // The job we once started had this PID, but started at another time.
            starttime: real + 1,
            shim_starttime: real + 1,
            containment: Containment::Subreaper,
            shim_exited: None,
        };
        assert_eq!(h.status(), Some(ExitOutcome::Unknown));
        h.kill(Duration::ZERO).await.unwrap();
        assert_eq!(
            other.try_wait().unwrap(),
            None,
            "an unrelated process was signalled"
        );
        other.kill().unwrap();
        other.wait().unwrap();
    }
}

//! The shim: a small process (`trainwatch __shim …`) that holds one job, like podman's conmon.
//! trainwatch starts it detached (own session, stdin from /dev/null), so trainwatch may exit
//! or be killed while the job goes on. The shim opens the log in append mode and hands it to
//! the job as stdout and stderr (no pipes: nothing is lost if the shim dies), starts the job
//! in its own session and process group, records the job's PID and start time, waits for
//! it, and records how it ended — all in the run's state folder.
//!
//! The shim holds all of the job's processes together (see [`super::contain`]): in a cgroup v2
//! of its own where the machine allows it, and in any case as their child subreaper, so a
//! worker that left the job's session is still re-parented to the shim, reaped, and reached
//! by a kill. When the job's main process ends while other processes of the job still run,
//! their PIDs are recorded with the exit and the shim ends them — SIGTERM, then SIGKILL after
//! the job's grace period — before it exits itself (the policy: a job ends with its main
//! process; nothing of it is left running unsupervised).
//!
//! A SIGTERM/SIGINT/SIGHUP sent to the shim is passed on to the job's group, so such an end
//! is still recorded. Its own diagnostics go to its stderr, which trainwatch points at
//! `shim.log` in the state folder.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::contain::{self, Containment, Roots};
use super::state::{self, ExitRecord, JobRecord, SpawnErrorRecord};
use crate::model::ExitOutcome;

/// Arguments of the hidden `__shim` subcommand. The job's environment is the shim's own
/// (trainwatch sets it when starting the shim), so no secret ends up on a command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ShimArgs {
    /// The run's state folder (must exist).
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// The job's log file, opened in append mode (created if missing).
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,
    /// The job's working directory.
    #[arg(long, value_name = "DIR")]
    pub workdir: PathBuf,
    /// How long processes left running after the main one ended get between SIGTERM and
    /// SIGKILL, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub grace_ms: u64,
    /// Hold the job as subreaper only, even where a cgroup could be made.
    #[arg(long)]
    pub no_cgroup: bool,
    /// Move the job into its cgroup between fork and exec, not start it there with `clone3`
    /// (the way taken anyway where the kernel refuses `clone3`).
    #[arg(long)]
    pub move_into_cgroup: bool,
    /// The job's argv.
    #[arg(last = true, required = true, num_args = 1.., value_name = "ARGV")]
    pub argv: Vec<String>,
}

/// Exit status of the shim when the job could not be started (as a shell does).
pub const SPAWN_FAILED: i32 = 127;
/// Exit status of the shim when it could not record what happened.
pub const RECORD_FAILED: i32 = 70;

/// Run the shim to the end; returns the shim's own exit status (0 when the job ran and its
/// end was recorded, whatever the job's status).
pub fn run(args: ShimArgs) -> i32 {
    let dir = &args.state_dir;
    let fail = |message: String| -> i32 {
        eprintln!("trainwatch shim: {message}");
        match state::write_atomic(dir, state::SPAWN_ERROR_FILE, &SpawnErrorRecord { message }) {
            Ok(()) => SPAWN_FAILED,
            Err(e) => {
                eprintln!("trainwatch shim: cannot record the spawn error: {e}");
                RECORD_FAILED
            }
        }
    };

    // Become the reaper of whatever the job orphans, before the job exists.
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("trainwatch shim: cannot become a child subreaper ({e}); orphans go to init");
    }

    let log = match OpenOptions::new().create(true).append(true).open(&args.log) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot open log {}: {e}", args.log.display())),
    };
    let log_err = match log.try_clone() {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot duplicate the log descriptor: {e}")),
    };

    let me = std::process::id();
    let cgroup = if args.no_cgroup {
        None
    } else {
        match contain::make_cgroup(&format!("trainwatch-job-{me}")) {
            Ok(dir) => Some(dir),
            Err(why) => {
                eprintln!("trainwatch shim: no cgroup for the job ({why}); holding it as subreaper");
                None
            }
        }
    };
    // Where the kernel allows it the job is born in its cgroup; else it moves itself there
    // between fork and exec. Either way it is in before any of its own code runs.
    let direct = match cgroup.as_deref() {
        Some(dir) if !args.move_into_cgroup => spawn_into_cgroup(&args, &log, &log_err, dir),
        _ => Ok(None),
    };
    let spawned = match direct {
        Ok(Some(pid)) => {
            drop((log, log_err)); // our copies of the log descriptors
            Ok(pid)
        }
        Ok(None) => {
            let procs = cgroup.as_deref().and_then(contain::procs_file);
            let mut cmd = Command::new(&args.argv[0]);
            cmd.args(&args.argv[1..])
                .current_dir(&args.workdir)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err);
            // SAFETY: setsid, open, write and close are async-signal-safe; the path was made
            // before the fork.
            unsafe {
                cmd.pre_exec(move || {
                    if let Some(p) = &procs {
                        contain::enter_cgroup(p);
                    }
                    nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from)
                });
            }
            // Reaping goes through waitpid(-1) below, not through the `Child`; dropping the
            // command closes our copies of the log descriptors.
            cmd.spawn().map(|child| child.id())
        }
        Err(e) => Err(e),
    };
    let pid = match spawned {
        Ok(pid) => pid,
        Err(e) => {
            let what = if e.kind() == std::io::ErrorKind::NotFound {
                // Either the program or the working directory is missing; say which.
                if !args.workdir.is_dir() {
                    format!("working directory {} does not exist", args.workdir.display())
                } else {
                    format!("program {:?} not found", args.argv[0])
                }
            } else {
                format!("cannot start {:?}: {e}", args.argv[0])
            };
            if let Some(dir) = cgroup {
                contain::remove(&Containment::Cgroup(dir));
            }
            return fail(what);
        }
    };

    let containment = match cgroup {
        Some(dir) if contain::in_cgroup(&dir, pid) => Containment::Cgroup(dir),
        Some(dir) => {
            eprintln!(
                "trainwatch shim: the job did not enter {}; holding it as subreaper",
                dir.display()
            );
            contain::remove(&Containment::Cgroup(dir));
            Containment::Subreaper
        }
        None => Containment::Subreaper,
    };
    let record = JobRecord {
        pid,
        starttime: state::proc_stat(pid).map(|s| s.starttime).unwrap_or(0),
        shim_pid: me,
        shim_starttime: state::proc_stat(me).map(|s| s.starttime).unwrap_or(0),
        started_at_ms: state::now_ms(),
        argv: args.argv.clone(),
        log: args.log.clone(),
        containment: containment.clone(),
    };
    let mut status = 0;
    if let Err(e) = state::write_atomic(dir, state::JOB_FILE, &record) {
        // Nobody could ever find, stop or account for this job: take it down rather than
        // leave an unsupervised run behind, and say why if the folder still takes writes.
        let roots = Roots {
            shim: Some(me),
            pgid: Some(pid),
        };
        let pids = contain::members(&containment, roots);
        contain::signal(&containment, roots, &pids, Signal::SIGKILL);
        fail(format!("cannot record the job's PID: {e}"));
        status = RECORD_FAILED;
    } else {
        forward_termination_to(pid);
    }

    // Reap every child (the job, then any orphaned worker) until none is left; record the
    // job's own end the moment it happens, with what of the job still runs, and end that.
    let roots = Roots {
        shim: Some(me),
        pgid: Some(pid),
    };
    let mut recorded = false;
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(ws) => {
                let (who, outcome) = match ws {
                    WaitStatus::Exited(p, code) => (p, ExitOutcome::Code(code)),
                    WaitStatus::Signaled(p, sig, _core) => (p, ExitOutcome::Signal(sig as i32)),
                    _ => continue,
                };
                if !recorded && who.as_raw() as u32 == pid {
                    recorded = true;
                    let lingering = contain::members(&containment, roots);
                    let rec = ExitRecord {
                        outcome,
                        ended_at_ms: state::now_ms(),
                        lingering: lingering.clone(),
                    };
                    if let Err(e) = state::write_atomic(dir, state::EXIT_FILE, &rec) {
                        eprintln!("trainwatch shim: cannot record the job's end ({outcome}): {e}");
                        status = RECORD_FAILED;
                    }
                    if !lingering.is_empty() {
                        eprintln!(
                            "trainwatch shim: the job's main process ended ({outcome}) with {} of its processes still running ({lingering:?}); ending them",
                            lingering.len()
                        );
                        end_lingering(&containment, roots, Duration::from_millis(args.grace_ms));
                    }
                }
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => break,
            Err(e) => {
                eprintln!("trainwatch shim: waitpid failed: {e}");
                status = RECORD_FAILED;
                break;
            }
        }
    }
    contain::remove(&containment);
    if !recorded {
        eprintln!("trainwatch shim: the job ended without a status");
        status = RECORD_FAILED;
    }
    status
}

/// `CLONE_INTO_CGROUP` (linux/sched.h; not in every libc crate).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The kernel's `struct clone_args`, up to `cgroup` (its second version, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Start the job inside the cgroup `dir` from its first instruction: `clone3` with
/// `CLONE_INTO_CGROUP`. Moving a process by writing `cgroup.procs` makes the kernel wait
/// for an RCU grace period (11–15 ms measured before the job's first byte); a child born
/// in the cgroup waits for none. The child does what `Command` would — the log as stdout
/// and stderr, /dev/null as stdin, the working directory, the default signal mask and
/// SIGPIPE, a session of its own — then `execvp`; an error before the exec comes back
/// through a close-on-exec pipe. `Ok(None)`: the kernel will not start a process this way
/// here (no clone3, an older kernel, a seccomp filter, a cgroup it refuses) and none was
/// started; the caller starts it the portable way.
fn spawn_into_cgroup(
    args: &ShimArgs,
    log: &std::fs::File,
    log_err: &std::fs::File,
    dir: &std::path::Path,
) -> std::io::Result<Option<u32>> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;

    // Everything the child needs is made here: it only makes system calls.
    let Ok(argv) = args
        .argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return Ok(None); // a NUL in an argument: `Command` says so
    };
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let Ok(workdir) = CString::new(args.workdir.as_os_str().as_bytes()) else {
        return Ok(None);
    };
    let Ok(cgroup) = CString::new(dir.as_os_str().as_bytes()) else {
        return Ok(None);
    };
    let null = std::fs::File::open("/dev/null")?;
    let (out, err, inp) = (log.as_raw_fd(), log_err.as_raw_fd(), null.as_raw_fd());

    // SAFETY: plain system calls on descriptors we own; the child below only makes
    // async-signal-safe calls (the shim has one thread, so even that is a margin).
    unsafe {
        let cg = libc::open(
            cgroup.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if cg < 0 {
            return Ok(None);
        }
        let mut pipe = [0 as libc::c_int; 2];
        if libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(cg);
            return Err(e);
        }
        let [rd, wr] = pipe;
        let mut ca = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: cg as u64,
            ..CloneArgs::default()
        };
        let ret = libc::syscall(
            libc::SYS_clone3,
            &mut ca as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        );
        if ret == 0 {
            // The child.
            let report = |errno: libc::c_int| -> ! {
                let b = errno.to_ne_bytes();
                libc::write(wr, b.as_ptr().cast(), b.len());
                libc::_exit(127);
            };
            for (from, to) in [(inp, 0), (out, 1), (err, 2)] {
                let ok = if from == to {
                    libc::fcntl(to, libc::F_SETFD, 0) == 0
                } else {
                    libc::dup2(from, to) == to
                };
                if !ok {
                    report(*libc::__errno_location());
                }
            }
            if libc::chdir(workdir.as_ptr()) != 0 {
                report(*libc::__errno_location());
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            if libc::setsid() < 0 {
                report(*libc::__errno_location());
            }
            libc::execvp(argv_ptrs[0], argv_ptrs.as_ptr());
            report(*libc::__errno_location());
        }
        let clone_errno = *libc::__errno_location();
        libc::close(wr);
        libc::close(cg);
        if ret < 0 {
            libc::close(rd);
            tracing::debug!(
                errno = clone_errno,
                "clone3 into the job's cgroup refused; moving the job instead"
            );
            return Ok(None);
        }
        let pid = ret as libc::pid_t;
        let mut b = [0u8; 4];
        let n = loop {
            let n = libc::read(rd, b.as_mut_ptr().cast(), b.len());
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            break n;
        };
        libc::close(rd);
        if n == 0 {
            return Ok(Some(pid as u32)); // the exec closed the pipe: the job runs
        }
        // The child could not exec: reap it and say why.
        let mut status = 0;
        while libc::waitpid(pid, &mut status, 0) < 0 && *libc::__errno_location() == libc::EINTR {}
        if n == 4 {
            Err(std::io::Error::from_raw_os_error(i32::from_ne_bytes(b)))
        } else {
            Err(std::io::Error::other("the job's process ended before its exec"))
        }
    }
}

/// SIGTERM to what is left of the job, SIGKILL after `grace` to what is still there, until
/// nothing is (bounded: a process stuck in the kernel is given up on after a few seconds).
/// Zombies do not count, so reaping can wait for the caller's loop.
fn end_lingering(containment: &Containment, roots: Roots, grace: Duration) {
    let step = Duration::from_millis(25);
    let left = || contain::members(containment, roots);
    let pids = left();
    contain::signal(containment, roots, &pids, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !left().is_empty() {
        std::thread::sleep(step);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = left();
        if pids.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            eprintln!("trainwatch shim: processes {pids:?} still alive after SIGKILL");
            return;
        }
        contain::signal(containment, roots, &pids, Signal::SIGKILL);
        std::thread::sleep(step);
    }
}

/// The job's process group, read by the signal handler.
static JOB_PGID: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pgid = JOB_PGID.load(Ordering::Relaxed);
    if pgid > 1 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// A SIGTERM, SIGINT or SIGHUP sent to the shim (by a user, or at shutdown) is passed on to
/// the job's group instead of killing the shim, so the job's end is still recorded.
/// Handlers reset to the default on exec, so the job itself is unaffected.
fn forward_termination_to(pid: u32) {
    JOB_PGID.store(pid as i32, Ordering::Relaxed);
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler only reads an atomic and calls kill.
        if let Err(e) = unsafe { nix::sys::signal::signal(sig, SigHandler::Handler(forward)) } {
            eprintln!("trainwatch shim: cannot forward {sig}: {e}");
        }
    }
}

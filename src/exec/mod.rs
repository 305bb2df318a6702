//! How a job runs on this machine. A job is started through a detached shim
//! (`trainwatch __shim`, see [`shim`]) that holds it in its own session and process group,
//! with stdout and stderr appended to its log, and records its PID and how it ended in the
//! run's state folder. That is what lets trainwatch exit, crash or restart without taking a
//! 20-hour run with it, and [`adopt`] the job again afterwards.
//!
//! - [`spawn`] starts a job and returns a [`JobHandle`] once its PID is known;
//! - [`JobHandle::wait`], [`JobHandle::kill`], [`JobHandle::is_running`] follow and stop it;
//! - [`adopt`] finds a job again from its state folder;
//! - [`resolve_resume`] picks the newest checkpoint for a restart;
//! - [`slurm`] runs a job on a Slurm cluster instead (submit, follow, cancel, adopt by job id);
//!   [`Process`] is either kind, as the job's task sees it.

mod contain;
mod local;
mod process;
mod resume;
pub mod shim;
pub mod slurm;
mod state;

use std::path::PathBuf;

use thiserror::Error;

pub use contain::Containment;
pub use local::{adopt, spawn, Adopted, JobHandle, SpawnSpec, DEFAULT_LINGER_GRACE, DEFAULT_SPAWN_TIMEOUT};
pub use process::Process;
pub use resume::{resolve_resume, CHECKPOINT_PLACEHOLDER};

#[derive(Debug, Error)]
pub enum ExecError {
    /// The job could not be started (program or working directory missing, not
    /// executable, log not writable…). The message says which.
    #[error("cannot start the job: {0}")]
    Spawn(String),
    /// The spec is unusable as given.
    #[error("invalid job spec: {0}")]
    InvalidSpec(String),
    /// A job started from this state folder is still running.
    #[error("a job is already running from this state folder (pid {pid})")]
    AlreadyRunning { pid: u32 },
    /// The state folder holds a record that cannot be read.
    #[error("unreadable state record {0}")]
    State(String),
    /// The shim did not report the job's PID in time.
    #[error("the shim did not report the job's start within {0:?}")]
    SpawnTimeout(std::time::Duration),
    #[error("cannot signal process group {pgid}: {source}")]
    Signal {
        pgid: u32,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Slurm refused or did not answer a request about the job.
    #[error(transparent)]
    Scheduler(#[from] slurm::client::SlurmError),
    /// The checkpoint glob is malformed.
    #[error("invalid checkpoint pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
}

impl ExecError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ExecError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Make a path absolute against the current directory (the shim runs from `/`).
pub(crate) fn absolute(p: &std::path::Path) -> Result<PathBuf, ExecError> {
    std::path::absolute(p).map_err(|e| ExecError::io(format!("resolving {}", p.display()), e))
}

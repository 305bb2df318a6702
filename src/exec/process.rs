//! The seam between a job's task and whatever runs its job: a [`Process`] is a job started
//! (or adopted) on this machine through the shim, or a job submitted to Slurm. The task sees
//! the same verbs for both — who it is, wait for its end, stop it — and asks the few things
//! only one kind has (a local process's PID for the log's identity and its leftover workers;
//! a Slurm job's queue status and time limit) through methods that answer None for the other.

use std::path::PathBuf;
use std::time::Duration;

use super::local::JobHandle;
use super::slurm::watcher::StatusRx;
use super::slurm::SlurmJob;
use super::ExecError;
use crate::model::{ExitOutcome, ProcessId};

#[derive(Debug, Clone)]
pub enum Process {
    Local(JobHandle),
    Slurm(SlurmJob),
}

impl Process {
    pub fn id(&self) -> ProcessId {
        match self {
            Process::Local(h) => ProcessId::Local(h.pid),
            Process::Slurm(j) => ProcessId::Slurm { slurm_job: j.id.0 },
        }
    }

    /// The PID that writes the log, when it runs on this machine (its open descriptors tell
    /// which file is the log); None for a job on a cluster (the file is checked by identity).
    pub fn local_pid(&self) -> Option<u32> {
        match self {
            Process::Local(h) => Some(h.pid),
            Process::Slurm(_) => None,
        }
    }

    /// Where an earlier log was moved aside when this attempt started a fresh one.
    pub fn moved_log(&self) -> Option<PathBuf> {
        match self {
            Process::Local(h) => h.moved_log.clone(),
            Process::Slurm(j) => j.moved_log.clone(),
        }
    }

    /// The scheduler's view of the job (queued, running with a time limit, ended), for a job
    /// a scheduler holds.
    pub fn scheduler_status(&self) -> Option<StatusRx> {
        match self {
            Process::Local(_) => None,
            Process::Slurm(j) => Some(j.status()),
        }
    }

    /// Wait for the job to end and learn how. Cancellable: drop the future.
    pub async fn wait(&self) -> ExitOutcome {
        match self {
            Process::Local(h) => h.wait().await,
            Process::Slurm(j) => j.wait().await,
        }
    }

    /// Processes of a local job still running when its main process ended.
    pub fn lingering(&self) -> Vec<u32> {
        match self {
            Process::Local(h) => h.lingering(),
            Process::Slurm(_) => Vec::new(),
        }
    }

    /// Stop the whole job: every process of a local one (TERM, then KILL after `grace`),
    /// every step of a Slurm one (`scancel`; the cluster's KillWait is its grace).
    pub async fn kill(&self, grace: Duration) -> Result<(), ExecError> {
        match self {
            Process::Local(h) => h.kill(grace).await,
            Process::Slurm(j) => Ok(j.cancel().await?),
        }
    }
}

//! A job submitted to Slurm, as trainwatch holds it: its job id (recorded in the attempt's
//! state folder the moment `sbatch` accepted it, before anything else happens, so a
//! trainwatch killed right after still finds it), its status from the shared poller, and the
//! verbs the job's task needs — wait for its end, cancel it, extend its time limit.
//!
//! A window remains between `sbatch` answering and the record reaching the disk: a crash in
//! it leaves a job Slurm runs and trainwatch does not know (its job name says whose it is).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{JobStatus, SlurmError};
use super::script::Prepared;
use super::watcher::{SlurmWatcher, StatusRx};
use super::SlurmJobId;
use crate::exec::{state, ExecError};
use crate::model::ExitOutcome;

/// The attempt's record of its Slurm job.
const SLURM_FILE: &str = "slurm-job.json";

/// Polls in a row that find the job unknown to the controller and to accounting before its
/// end is taken as unknown (a job id sbatch just gave is known at once; this only happens
/// when Slurm has forgotten the job, e.g. a purged job on a cluster without accounting).
const UNKNOWN_POLLS: u32 = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SlurmRecord {
    job_id: u64,
    submitted_at_ms: u64,
}

/// A submitted (or adopted) Slurm job.
#[derive(Debug, Clone)]
pub struct SlurmJob {
    pub id: SlurmJobId,
    /// Where a previous log was moved aside by this submission, if it was.
    pub moved_log: Option<PathBuf>,
    status: StatusRx,
    watcher: SlurmWatcher,
}

impl SlurmJob {
    /// The job's status as the last poll found it (None before the first poll).
    pub fn status(&self) -> StatusRx {
        self.status.clone()
    }

    /// Wait until Slurm says the job has ended, and how, in the protocol's terms.
    pub async fn wait(&self) -> ExitOutcome {
        let mut rx = self.status.clone();
        let mut unknown = 0;
        loop {
            match &*rx.borrow_and_update() {
                Some(JobStatus::Ended(o)) => return o.exit_outcome(),
                Some(JobStatus::Unknown) => {
                    unknown += 1;
                    if unknown >= UNKNOWN_POLLS {
                        return ExitOutcome::Unknown;
                    }
                }
                _ => unknown = 0,
            }
            if rx.changed().await.is_err() {
                // The poller is gone (trainwatch is stopping): nothing more will be known.
                return std::future::pending().await;
            }
        }
    }

    /// Cancel the whole job, every step (`scancel`; Slurm sends TERM, then KILL after its
    /// KillWait). Cancelling a job that has ended is not an error.
    pub async fn cancel(&self) -> Result<(), SlurmError> {
        if matches!(&*self.status.borrow(), Some(JobStatus::Ended(_))) {
            return Ok(());
        }
        self.watcher.client().cancel(self.id).await
    }

    /// Give the job `by` more time (`scontrol update TimeLimit=+…`; Slurm refuses it past
    /// the partition's limit, or for a user who may not raise it).
    pub async fn extend(&self, by: Duration) -> Result<(), SlurmError> {
        self.watcher.client().extend(self.id, by).await
    }
}

/// Submit `job` for an attempt whose state folder is `state_dir`. A fresh run (not `append`)
/// moves an earlier log aside first, as the local executor does.
pub async fn submit(
    watcher: &SlurmWatcher,
    job: &Prepared,
    state_dir: &Path,
    append: bool,
) -> Result<SlurmJob, ExecError> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| ExecError::io(format!("creating {}", state_dir.display()), e))?;
    if let Some(rec) = state::read::<SlurmRecord>(state_dir, SLURM_FILE)? {
        return Err(ExecError::InvalidSpec(format!(
            "this attempt was already submitted as Slurm job {}",
            rec.job_id
        )));
    }
    let moved_log = if append {
        None
    } else {
        crate::exec::local::move_aside(&job.log)?
    };
    let id = watcher
        .client()
        .submit_prepared(job)
        .await
        .map_err(|e| ExecError::Spawn(e.to_string()))?;
    let rec = SlurmRecord {
        job_id: id.0,
        submitted_at_ms: state::now_ms(),
    };
    if let Err(e) = state::write_atomic(state_dir, SLURM_FILE, &rec) {
        // The job runs and nobody would know: cancel it rather than leave it unwatched.
        let _ = watcher.client().cancel(id).await;
        return Err(ExecError::io(
            format!(
                "recording Slurm job {id} in {} (cancelled it)",
                state_dir.display()
            ),
            e,
        ));
    }
    tracing::info!(job = %id, "submitted to slurm");
    Ok(SlurmJob {
        id,
        moved_log,
        status: watcher.follow(id),
        watcher: watcher.clone(),
    })
}

/// The Slurm job an attempt submitted, if it submitted one: followed again (whether it
/// still runs or ended while trainwatch was away, its status says).
pub fn adopt(watcher: &SlurmWatcher, state_dir: &Path) -> Result<Option<SlurmJob>, ExecError> {
    let Some(rec) = state::read::<SlurmRecord>(state_dir, SLURM_FILE)? else {
        return Ok(None);
    };
    let id = SlurmJobId(rec.job_id);
    Ok(Some(SlurmJob {
        id,
        moved_log: None,
        status: watcher.follow(id),
        watcher: watcher.clone(),
    }))
}

//! The Slurm side of running a job: what is submitted and how Slurm's answers are read.
//! A job becomes a generated batch script and an `sbatch --parsable` argv ([`script`]);
//! Slurm's outputs (`squeue`, `scontrol show job -o`, `sacct -P`) are parsed into typed
//! records ([`query`]); how a job ended and why it waits are mapped to the protocol's terms
//! ([`outcome`]); [`client`] runs the commands, argv only, each bounded by a timeout, with one
//! batched poll for every job and a back-off while `slurmctld` does not answer.
//!
//! A shared file system between this host and the compute nodes is assumed: the batch
//! script, the job's log and its per-task logs are paths both sides see.

pub mod client;
pub mod job;
pub mod outcome;
pub mod query;
pub mod script;
pub mod watcher;

use std::fmt;
use std::str::FromStr;

pub use client::{Backoff, JobStatus, Poll, SlurmClient};
pub use job::SlurmJob;
pub use outcome::{Outcome, PendingReason};
pub use query::{AcctRecord, JobRecord, JobState, QueueEntry, SlurmExit};
pub use script::{Launch, Prepared, SlurmSettings, Submission};
pub use watcher::{Controller, SlurmWatcher};

/// A Slurm job id as `sbatch --parsable` prints it (without the `;cluster` suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlurmJobId(pub u64);

impl fmt::Display for SlurmJobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for SlurmJobId {
    type Err = query::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u64>()
            .map(SlurmJobId)
            .map_err(|_| query::ParseError::new("job id", s))
    }
}

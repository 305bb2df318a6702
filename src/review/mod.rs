//! The evidence behind the Phase 4.5 re-validation gate: design expectations per job
//! ([`design`]), snapshots of the job's files and design values ([`snapshot`]), the CHANGES
//! SUMMARY between two snapshots ([`changes`]) and the Design | Actual | Tolerance | Verdict
//! comparison with its score ([`compare`]). I/O is limited to reading the job's files and running
//! `git` read-only; the gate's state machine (approve / reject, who may decide) is the engine's.

pub mod changes;
pub mod compare;
pub mod design;
pub mod git;
mod read;
pub mod snapshot;

use std::path::PathBuf;

pub use changes::{changes, render_changes, ChangesSummary, FileChange, ParamChange};
pub use compare::{compare, render_table, Comparison, ComparisonRow, Verdict};
pub use design::{
    bind_job, parse_design, CaptureRegex, DesignError, DesignParam, ParamSource, ParamValue, RawDesignParam,
    RawSource, RawValue, Tolerance,
};
pub use git::{GitBase, LineStat};
pub use snapshot::{
    add_git, take_snapshot, take_snapshot_without_git, watch_from_argv, ParamReading, Snapshot,
};

/// Why a snapshot could not be taken at all (per-file and per-parameter problems are recorded
/// in the snapshot instead).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateError {
    #[error("workdir {}: {reason}", path.display())]
    Workdir { path: PathBuf, reason: String },
    #[error("watch glob {glob:?}: {reason}")]
    BadGlob { glob: String, reason: String },
    #[error(
        "the watched globs match {count} files (limit {limit}); narrow them to the job's source and config"
    )]
    TooManyFiles { count: usize, limit: usize },
}

//! The evidence a Phase 4.5 review reads, taken from the job's working tree: the files a
//! fix covers (those named in argv, the configured globs, the design's sources), a snapshot
//! of them, and the CHANGES SUMMARY and comparison table against the run's start.

use super::JobRuntime;
use crate::engine::FixEvidence;
use crate::review;

impl JobRuntime {
    /// The design expectations bound to this job.
    pub(super) fn design(&self) -> &[crate::review::DesignParam] {
        &self.spec.design
    }

    /// Files a fix summary covers: the files named in argv, the configured globs, the
    /// design's sources.
    pub(super) fn watched(&self) -> Vec<String> {
        let mut w = review::watch_from_argv(&self.spec.workdir, &self.spec.engine.argv);
        w.extend(self.spec.watch.iter().cloned());
        w
    }

    pub(super) fn snapshot(&self) -> Result<review::Snapshot, review::GateError> {
        review::take_snapshot(&self.spec.workdir, &self.watched(), self.design())
    }

    /// The code as a run starts, but for git's part, which [`review::add_git`] adds while
    /// the job starts: the files are hashed before it can change them.
    pub(super) fn snapshot_without_git(&self) -> Result<review::Snapshot, review::GateError> {
        review::take_snapshot_without_git(&self.spec.workdir, &self.watched(), self.design())
    }

    /// The CHANGES SUMMARY and comparison table of the code as it is now, against the run's start.
    pub(super) fn fix_evidence(&self) -> Result<FixEvidence, String> {
        self.machine.under_way().ok_or("no run is under way")?;
        let baseline = self
            .machine
            .run_baseline()
            .ok_or("the code was not recorded when this run started")?;
        let now = self.snapshot().map_err(|e| e.to_string())?;
        let changes = review::changes(baseline, &now, self.design(), &self.spec.workdir);
        let comparison = review::compare(self.design(), &now);
        Ok(FixEvidence {
            changes,
            comparison,
            reviewed: now,
        })
    }
}

//! The real Slurm cluster the Slurm tests run against (`.ci/slurm up`; `SLURM_CONF` from
//! `.ci/slurm env`), or why there is none: without it a test prints `SKIPPED …` and returns —
//! a skip, never a pass; with `TRAINWATCH_REQUIRE_SLURM` set (CI sets it) a missing cluster
//! fails the test instead.

use std::path::PathBuf;
use std::process::Command;

/// The cluster's `slurm.conf`, or None (the reason printed) when there is no cluster.
pub fn cluster(test: &str) -> Option<PathBuf> {
    let skip = |why: &str| {
        assert!(
            std::env::var_os("TRAINWATCH_REQUIRE_SLURM").is_none(),
            "{test}: {why}, and TRAINWATCH_REQUIRE_SLURM is set"
        );
        eprintln!("SKIPPED {test}: {why}");
    };
    let Some(conf) = std::env::var_os("SLURM_CONF").filter(|c| !c.is_empty()) else {
        skip("SLURM_CONF is not set (run `.ci/slurm up`, then export `.ci/slurm env`)");
        return None;
    };
    let has_sbatch = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("sbatch").is_file()))
        .unwrap_or(false);
    if !has_sbatch {
        skip("sbatch is not installed");
        return None;
    }
    Some(PathBuf::from(conf))
}

/// Cancels every job of the given names when dropped, so a failing test leaves nothing queued.
pub struct CancelByName(pub Vec<String>);

impl Drop for CancelByName {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("scancel").arg(format!("--name={name}")).status();
        }
    }
}

/// The state Slurm gives a job now (`squeue -t all`), e.g. "RUNNING"; None once unknown.
pub fn state_of(job_id: u64) -> Option<String> {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%T", "-j", &job_id.to_string()])
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// The Slurm job id in a "…Slurm job N" line.
pub fn job_id_in(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once("Slurm job ")?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

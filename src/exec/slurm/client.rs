//! Runs Slurm's commands for trainwatch: `sbatch`, `squeue`, `scontrol`, `sacct`, `scancel`.
//! Each is started as an argv (never through a shell), with stdin closed, and bounded by a
//! timeout — killed when it runs over. The state of every followed job comes from ONE
//! `squeue` call ([`SlurmClient::poll`]), not a process per job; `scontrol`/`sacct` are asked
//! once about a job that has ended. When `slurmctld` does not answer, the error says so
//! ([`SlurmError::is_unreachable`]) and [`Backoff`] spaces out the next tries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use thiserror::Error;
use tokio::process::Command;

use super::outcome::{Outcome, PendingReason};
use super::query::{
    parse_sacct, parse_scontrol, parse_squeue, AcctRecord, JobRecord, JobState, ParseError, QueueEntry,
    SACCT_FIELDS, SQUEUE_FORMAT,
};
use super::script::{slurm_time, Prepared, Submission};
use super::SlurmJobId;

/// Slurm's clients retry an unreachable controller for about 10 s before they give up; a
/// bound below that would turn "not answering" into a timeout of our own.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What Slurm's clients print when slurmctld does not answer.
const UNREACHABLE: &[&str] = &[
    "Unable to contact slurm controller",
    "Socket timed out",
    "Zero Bytes were transmitted or received",
    "Communication connection failure",
];
/// What sacct prints on a cluster without an accounting database.
const NO_ACCOUNTING: &str = "accounting storage is disabled";
/// What they print about a job id the controller does not (or no longer) hold.
const INVALID_ID: &str = "Invalid job id specified";

#[derive(Debug, Error)]
pub enum SlurmError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} did not answer within {after:?}")]
    Timeout { program: String, after: Duration },
    #[error("slurmctld does not answer ({program}: {message})")]
    Unreachable { program: String, message: String },
    #[error("{program} failed ({status}): {message}")]
    Failed {
        program: String,
        status: String,
        message: String,
    },
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("writing {path} (the batch script or the log's folder): {source}")]
    Script {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SlurmError {
    /// The controller (or the command talking to it) did not answer: try again later,
    /// nothing is known about the jobs.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SlurmError::Unreachable { .. } | SlurmError::Timeout { .. })
    }
}

/// Where `sacct` reads finished jobs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcctSource {
    /// The accounting database (slurmdbd): the usual cluster.
    #[default]
    Accounting,
    /// The job completion file (`sacct -c`), on a cluster without slurmdbd.
    Completion,
}

/// The answer to one batched poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Poll {
    pub entries: Vec<QueueEntry>,
    /// Asked about, not in the controller any more (purged after `MinJobAge`) or never
    /// known: ask `sacct`.
    pub missing: Vec<SlurmJobId>,
}

impl Poll {
    pub fn get(&self, id: SlurmJobId) -> Option<&QueueEntry> {
        self.entries.iter().find(|e| e.id == id)
    }
}

/// Where a followed job stands, as [`SlurmClient::statuses`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// In the queue (pending, held, requeued), and why.
    Waiting {
        reason: PendingReason,
    },
    /// Running (or completing), for `elapsed` of its `time_limit` (None: no limit).
    Running {
        elapsed: Duration,
        time_limit: Option<Duration>,
    },
    /// Suspended or stopped by Slurm: not running, not over.
    Paused {
        state: JobState,
    },
    Ended(Outcome),
    /// Neither the controller nor sacct knows the job.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct SlurmClient {
    /// `SLURM_CONF` for the commands; the environment's own when None.
    conf: Option<PathBuf>,
    timeout: Duration,
    acct: AcctSource,
}

impl Default for SlurmClient {
    fn default() -> Self {
        SlurmClient {
            conf: None,
            timeout: DEFAULT_COMMAND_TIMEOUT,
            acct: AcctSource::default(),
        }
    }
}

struct Ran {
    stdout: String,
    stderr: String,
    success: bool,
    status: String,
}

impl SlurmClient {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_conf(mut self, conf: impl Into<PathBuf>) -> Self {
        self.conf = Some(conf.into());
        self
    }
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    pub fn with_acct(mut self, acct: AcctSource) -> Self {
        self.acct = acct;
        self
    }

    async fn run(&self, argv: &[String]) -> Result<Ran, SlurmError> {
        self.run_with_env(argv, &BTreeMap::new()).await
    }

    async fn run_with_env(&self, argv: &[String], env: &BTreeMap<String, String>) -> Result<Ran, SlurmError> {
        let program = argv[0].clone();
        let mut cmd = Command::new(&program);
        cmd.args(&argv[1..])
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(conf) = &self.conf {
            cmd.env("SLURM_CONF", conf);
        }
        tracing::debug!(?argv, "slurm command");
        let child = cmd.spawn().map_err(|source| SlurmError::Spawn {
            program: program.clone(),
            source,
        })?;
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Err(_) => {
                return Err(SlurmError::Timeout {
                    program,
                    after: self.timeout,
                })
            }
            Ok(r) => r.map_err(|source| SlurmError::Spawn {
                program: program.clone(),
                source,
            })?,
        };
        let ran = Ran {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            success: out.status.success(),
            status: out.status.to_string(),
        };
        if !ran.success && UNREACHABLE.iter().any(|m| ran.stderr.contains(m)) {
            return Err(SlurmError::Unreachable {
                program,
                message: ran.stderr,
            });
        }
        Ok(ran)
    }

    fn failed(argv: &[String], ran: Ran) -> SlurmError {
        SlurmError::Failed {
            program: argv[0].clone(),
            status: ran.status,
            message: ran.stderr,
        }
    }

    async fn run_ok(&self, argv: &[String]) -> Result<String, SlurmError> {
        self.run_ok_with_env(argv, &BTreeMap::new()).await
    }

    async fn run_ok_with_env(
        &self,
        argv: &[String],
        env: &BTreeMap<String, String>,
    ) -> Result<String, SlurmError> {
        let ran = self.run_with_env(argv, env).await?;
        if ran.success {
            Ok(ran.stdout)
        } else {
            Err(Self::failed(argv, ran))
        }
    }

    /// Write the batch script and submit it; the job id once sbatch accepted it.
    pub async fn submit(&self, sub: &Submission<'_>) -> Result<SlurmJobId, SlurmError> {
        self.submit_prepared(&sub.prepare()).await
    }

    /// [`Self::submit`] for a submission already made ready.
    pub async fn submit_prepared(&self, sub: &Prepared) -> Result<SlurmJobId, SlurmError> {
        write_script(&sub.script_path, &sub.script)?;
        // Slurm does not create the output's folder: the job would run with nowhere to write.
        if let Some(dir) = sub.log.parent() {
            std::fs::create_dir_all(dir).map_err(|source| SlurmError::Script {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let out = self.run_ok_with_env(&sub.sbatch_argv, &sub.env).await?;
        // `--parsable` prints `ID` or `ID;cluster`.
        let first = out.lines().next().unwrap_or_default();
        let id = first.split(';').next().unwrap_or_default();
        Ok(id.parse()?)
    }

    /// The state of every job in `ids`, in one `squeue` call.
    pub async fn poll(&self, ids: &[SlurmJobId]) -> Result<Poll, SlurmError> {
        if ids.is_empty() {
            return Ok(Poll::default());
        }
        let list = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let argv = strings(&["squeue", "-h", "-t", "all", "-j", &list, "-o", SQUEUE_FORMAT]);
        let ran = self.run(&argv).await?;
        let entries = if ran.success {
            parse_squeue(&ran.stdout)?
        } else if ran.stderr.contains(INVALID_ID) {
            // Only when every id asked about is unknown (a single one): a list with unknown
            // ids among known ones answers with the known ones and succeeds.
            Vec::new()
        } else {
            return Err(Self::failed(&argv, ran));
        };
        let missing = ids
            .iter()
            .copied()
            .filter(|id| !entries.iter().any(|e| e.id == *id))
            .collect();
        Ok(Poll { entries, missing })
    }

    /// Where every job in `ids` stands: one `squeue` call for all of them; then, only for
    /// the jobs that have ended, `scontrol` (one call per job: it takes one id) and one
    /// `sacct` call for all the jobs the controller no longer holds. A caller that stops
    /// asking about a job once it has `Ended` keeps the per-interval cost at one call.
    pub async fn statuses(&self, ids: &[SlurmJobId]) -> Result<Vec<(SlurmJobId, JobStatus)>, SlurmError> {
        let poll = self.poll(ids).await?;
        let acct = self.accounting(&poll.missing).await?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let status = match poll.get(id) {
                Some(e) if e.state.is_final() => match self.outcome(id).await? {
                    Some(o) => JobStatus::Ended(o),
                    None => JobStatus::Unknown,
                },
                Some(e) if e.state.is_waiting() => JobStatus::Waiting {
                    reason: PendingReason::parse(&e.reason),
                },
                Some(e) if matches!(e.state, JobState::Suspended | JobState::Stopped) => JobStatus::Paused {
                    state: e.state.clone(),
                },
                Some(e) => JobStatus::Running {
                    elapsed: e.elapsed,
                    time_limit: e.time_limit,
                },
                None => acct
                    .iter()
                    .find(|r| r.id == id)
                    .and_then(Outcome::from_acct)
                    .map_or(JobStatus::Unknown, JobStatus::Ended),
            };
            out.push((id, status));
        }
        Ok(out)
    }

    /// `scontrol show job -o ID`; None when the controller does not hold the job.
    pub async fn show(&self, id: SlurmJobId) -> Result<Option<JobRecord>, SlurmError> {
        let argv = strings(&["scontrol", "show", "job", "-o", &id.to_string()]);
        let ran = self.run(&argv).await?;
        if !ran.success {
            return if ran.stderr.contains(INVALID_ID) {
                Ok(None)
            } else {
                Err(Self::failed(&argv, ran))
            };
        }
        Ok(parse_scontrol(&ran.stdout)?.into_iter().find(|r| r.id == id))
    }

    /// The jobs (not their steps) `sacct` knows among `ids`.
    pub async fn accounting(&self, ids: &[SlurmJobId]) -> Result<Vec<AcctRecord>, SlurmError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let mut argv = strings(&["sacct", "-n", "-P", "-j", &list, "-o", SACCT_FIELDS]);
        if self.acct == AcctSource::Completion {
            argv.insert(1, "-c".into());
        }
        let out = match self.run_ok(&argv).await {
            // A cluster without an accounting database (slurmdbd) may still keep the job
            // completion file: read that instead.
            Err(SlurmError::Failed { message, .. })
                if self.acct == AcctSource::Accounting && message.contains(NO_ACCOUNTING) =>
            {
                argv.insert(1, "-c".into());
                self.run_ok(&argv).await?
            }
            r => r?,
        };
        Ok(parse_sacct(&out)?
            .into_iter()
            .filter(|r| r.step.is_none())
            .collect())
    }

    /// How a job ended: from the controller while it holds the job, else from sacct. None
    /// while it is queued or running (or when neither knows it).
    pub async fn outcome(&self, id: SlurmJobId) -> Result<Option<Outcome>, SlurmError> {
        if let Some(rec) = self.show(id).await? {
            return Ok(Outcome::from_record(&rec));
        }
        Ok(self
            .accounting(&[id])
            .await?
            .iter()
            .find(|r| r.id == id)
            .and_then(Outcome::from_acct))
    }

    /// Cancel the whole job, every step (TERM, then KILL after the cluster's KillWait).
    pub async fn cancel(&self, id: SlurmJobId) -> Result<(), SlurmError> {
        self.run_ok(&strings(&["scancel", &id.to_string()]))
            .await
            .map(drop)
    }

    /// Raise the job's time limit by `by` (rounded up to Slurm's minute).
    pub async fn extend(&self, id: SlurmJobId, by: Duration) -> Result<(), SlurmError> {
        let limit = format!("TimeLimit=+{}", slurm_time(by));
        self.run_ok(&strings(&["scontrol", "update", &format!("JobId={id}"), &limit]))
            .await
            .map(drop)
    }

    /// Send `signal` (a name such as `USR1`) to the batch script only (`batch_only`), e.g.
    /// to make it checkpoint, or to every step.
    pub async fn signal(&self, id: SlurmJobId, signal: &str, batch_only: bool) -> Result<(), SlurmError> {
        let mut argv = strings(&["scancel", "-s", signal]);
        if batch_only {
            argv.push("-b".into());
        }
        argv.push(id.to_string());
        self.run_ok(&argv).await.map(drop)
    }
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn write_script(path: &Path, text: &str) -> Result<(), SlurmError> {
    let err = |source| SlurmError::Script {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}

/// Spacing of retries while slurmctld does not answer: the poll interval, doubled at each
/// failure up to `max`, back to the interval at the first answer. It says which failure is
/// the first (to tell the chat once) and when the controller answers again.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// One more failed call: how long to wait before the next, and whether this is the
    /// first failure of a run of them.
    pub fn failed(&mut self) -> (Duration, bool) {
        self.failures = self.failures.saturating_add(1);
        let factor = 2u32.saturating_pow(self.failures.min(16));
        (
            (self.base.saturating_mul(factor)).min(self.max),
            self.failures == 1,
        )
    }

    /// A call answered: the wait before the next poll, and whether the controller had been
    /// unreachable until now.
    pub fn succeeded(&mut self) -> (Duration, bool) {
        let was_failing = self.failures > 0;
        self.failures = 0;
        (self.base, was_failing)
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound_and_reports_the_first_failure_once() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(b.failed(), (Duration::from_secs(2), true));
        assert_eq!(b.failed(), (Duration::from_secs(4), false));
        assert_eq!(b.failed(), (Duration::from_secs(8), false));
        assert_eq!(b.failed(), (Duration::from_secs(10), false));
        assert_eq!(b.failures(), 4);
        assert_eq!(b.succeeded(), (Duration::from_secs(1), true));
        assert_eq!(b.succeeded(), (Duration::from_secs(1), false));
        assert_eq!(b.failed(), (Duration::from_secs(2), true));
    }

    #[test]
    fn the_real_unreachable_messages_are_recognised() {
        for f in ["squeue-unreachable.stderr", "sbatch-unreachable.stderr"] {
            let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/slurm/");
            let text = std::fs::read_to_string(format!("{p}{f}")).unwrap();
            assert!(UNREACHABLE.iter().any(|m| text.contains(m)), "{f}: {text}");
        }
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/slurm/");
        let unknown = std::fs::read_to_string(format!("{p}squeue-unknown.stderr")).unwrap();
        assert!(unknown.contains(INVALID_ID));
    }

    #[tokio::test]
    async fn a_command_that_runs_over_its_bound_is_killed_and_reported_unreachable() {
        // `sleep` stands in for a client stuck on a controller that does not answer.
        let c = SlurmClient::new().with_timeout(Duration::from_millis(200));
        let err = c.run(&strings(&["sleep", "30"])).await.err().unwrap();
        assert!(err.is_unreachable(), "{err}");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let c = SlurmClient::new();
        let err = c
            .run(&strings(&["trainwatch-no-such-slurm-command"]))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, SlurmError::Spawn { .. }), "{err}");
        assert!(!err.is_unreachable());
    }
}

//! Slurm's answers about jobs, parsed into typed records: `squeue` lines in the format
//! [`SQUEUE_FORMAT`] (many jobs in one call), `scontrol show job -o` lines (one job each;
//! values may hold spaces, so a line is split on the keys Slurm is known to print, not on
//! blanks), and `sacct -n -P` rows in the fields [`SACCT_FIELDS`] (jobs Slurm no longer holds).

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use super::SlurmJobId;

/// `squeue -o` format of the batched poll: id, state, time used, time limit, reason (last:
/// the one free-text field).
pub const SQUEUE_FORMAT: &str = "%i|%T|%M|%l|%r";
/// `sacct -o` fields, in the order [`parse_sacct`] reads them.
pub const SACCT_FIELDS: &str = "JobID,JobName,State,ExitCode,Start,End,NodeList";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unreadable Slurm output ({what}): {text:?}")]
pub struct ParseError {
    pub what: &'static str,
    pub text: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, text: &str) -> Self {
        ParseError {
            what,
            text: text.chars().take(200).collect(),
        }
    }
}

/// A job's state as Slurm names it (`JobState=`, `%T`, sacct's `State`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Configuring,
    Running,
    Completing,
    Suspended,
    Requeued,
    RequeueHold,
    Resizing,
    Signaling,
    StageOut,
    Stopped,
    Completed,
    Failed,
    Cancelled,
    Timeout,
    OutOfMemory,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    SpecialExit,
    Revoked,
    /// A state this version does not know, kept as Slurm wrote it.
    Other(String),
}

impl JobState {
    pub fn parse(s: &str) -> JobState {
        match s.trim() {
            "PENDING" => JobState::Pending,
            "CONFIGURING" => JobState::Configuring,
            "RUNNING" => JobState::Running,
            "COMPLETING" => JobState::Completing,
            "SUSPENDED" => JobState::Suspended,
            "REQUEUED" | "REQUEUE_FED" => JobState::Requeued,
            "REQUEUE_HOLD" => JobState::RequeueHold,
            "RESIZING" => JobState::Resizing,
            "SIGNALING" => JobState::Signaling,
            "STAGE_OUT" => JobState::StageOut,
            "STOPPED" => JobState::Stopped,
            "COMPLETED" => JobState::Completed,
            "FAILED" => JobState::Failed,
            "CANCELLED" => JobState::Cancelled,
            "TIMEOUT" => JobState::Timeout,
            "OUT_OF_MEMORY" => JobState::OutOfMemory,
            "NODE_FAIL" => JobState::NodeFail,
            "PREEMPTED" => JobState::Preempted,
            "BOOT_FAIL" => JobState::BootFail,
            "DEADLINE" => JobState::Deadline,
            "SPECIAL_EXIT" => JobState::SpecialExit,
            "REVOKED" => JobState::Revoked,
            other => JobState::Other(other.to_string()),
        }
    }

    /// The state as Slurm spells it.
    pub fn as_str(&self) -> &str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Configuring => "CONFIGURING",
            JobState::Running => "RUNNING",
            JobState::Completing => "COMPLETING",
            JobState::Suspended => "SUSPENDED",
            JobState::Requeued => "REQUEUED",
            JobState::RequeueHold => "REQUEUE_HOLD",
            JobState::Resizing => "RESIZING",
            JobState::Signaling => "SIGNALING",
            JobState::StageOut => "STAGE_OUT",
            JobState::Stopped => "STOPPED",
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Cancelled => "CANCELLED",
            JobState::Timeout => "TIMEOUT",
            JobState::OutOfMemory => "OUT_OF_MEMORY",
            JobState::NodeFail => "NODE_FAIL",
            JobState::Preempted => "PREEMPTED",
            JobState::BootFail => "BOOT_FAIL",
            JobState::Deadline => "DEADLINE",
            JobState::SpecialExit => "SPECIAL_EXIT",
            JobState::Revoked => "REVOKED",
            JobState::Other(s) => s,
        }
    }

    /// The job will not run again on its own: how it ended can be read.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            JobState::Completed
                | JobState::Failed
                | JobState::Cancelled
                | JobState::Timeout
                | JobState::OutOfMemory
                | JobState::NodeFail
                | JobState::Preempted
                | JobState::BootFail
                | JobState::Deadline
                | JobState::SpecialExit
                | JobState::Revoked
        )
    }

    /// Waiting to start (again): in the queue, held, or requeued.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            JobState::Pending | JobState::Requeued | JobState::RequeueHold | JobState::Configuring
        )
    }
}

/// `ExitCode=status:signal` (`sacct`'s `ExitCode` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlurmExit {
    pub status: i32,
    pub signal: i32,
}

impl SlurmExit {
    pub fn parse(s: &str) -> Result<SlurmExit, ParseError> {
        let err = || ParseError::new("exit code", s);
        let (a, b) = s.trim().split_once(':').ok_or_else(err)?;
        Ok(SlurmExit {
            status: a.parse().map_err(|_| err())?,
            signal: b.parse().map_err(|_| err())?,
        })
    }
}

/// A Slurm duration: `[D-]HH:MM:SS`, `MM:SS`, or a bare number of minutes. `UNLIMITED`,
/// `NONE`, `N/A`, `INVALID` are no limit (None).
pub fn parse_slurm_duration(s: &str) -> Result<Option<Duration>, ParseError> {
    let s = s.trim();
    if matches!(s, "UNLIMITED" | "NONE" | "N/A" | "INVALID" | "Partition_Limit") {
        return Ok(None);
    }
    let err = || ParseError::new("duration", s);
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().map_err(|_| err())?, r),
        None => (0, s),
    };
    let parts: Vec<u64> = rest
        .split(':')
        .map(|p| p.parse::<u64>().map_err(|_| err()))
        .collect::<Result<_, _>>()?;
    let secs = match (parts.as_slice(), days) {
        ([m], 0) => m * 60,
        ([h], _) => h * 3600,
        ([m, s], 0) => m * 60 + s,
        ([h, m], _) => h * 3600 + m * 60,
        ([h, m, s], _) => h * 3600 + m * 60 + s,
        _ => return Err(err()),
    };
    Ok(Some(Duration::from_secs(days * 86_400 + secs)))
}

/// One line of the batched `squeue` poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub id: SlurmJobId,
    pub state: JobState,
    /// Time the job has run so far (zero while pending).
    pub elapsed: Duration,
    /// None: no limit.
    pub time_limit: Option<Duration>,
    /// Why it waits (or how it ended); `None` when Slurm has nothing to say.
    pub reason: String,
}

/// Parse `squeue -h -o SQUEUE_FORMAT` output: one entry per line.
pub fn parse_squeue(text: &str) -> Result<Vec<QueueEntry>, ParseError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut f = line.splitn(5, '|');
            let (Some(id), Some(state), Some(elapsed), Some(limit), Some(reason)) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                return Err(ParseError::new("squeue line", line));
            };
            Ok(QueueEntry {
                id: id.parse()?,
                state: JobState::parse(state),
                elapsed: parse_slurm_duration(elapsed)?.unwrap_or_default(),
                time_limit: parse_slurm_duration(limit)?,
                reason: reason.trim().to_string(),
            })
        })
        .collect()
}

/// The keys `scontrol show job -o` prints (Slurm 22.05), in its order. A value runs until the
/// next of these keys, so a value holding spaces (a path, a reason, a comment) stays whole.
const SCONTROL_KEYS: &[&str] = &[
    "JobId",
    "ArrayJobId",
    "ArrayTaskId",
    "HetJobId",
    "HetJobOffset",
    "JobName",
    "UserId",
    "GroupId",
    "MCS_label",
    "Priority",
    "Nice",
    "Account",
    "QOS",
    "JobState",
    "Reason",
    "FailedNode",
    "Dependency",
    "Requeue",
    "Restarts",
    "BatchFlag",
    "Reboot",
    "ExitCode",
    "DerivedExitCode",
    "RunTime",
    "TimeLimit",
    "TimeMin",
    "SubmitTime",
    "EligibleTime",
    "AccrueTime",
    "StartTime",
    "EndTime",
    "Deadline",
    "PreemptEligibleTime",
    "PreemptTime",
    "SuspendTime",
    "SecsPreSuspend",
    "LastSchedEval",
    "Scheduler",
    "Partition",
    "AllocNode:Sid",
    "ReqNodeList",
    "ExcNodeList",
    "NodeList",
    "SchedNodeList",
    "BatchHost",
    "NumNodes",
    "NumCPUs",
    "NumTasks",
    "CPUs/Task",
    "ReqB:S:C:T",
    "TRES",
    "Socks/Node",
    "NtasksPerN:B:S:C",
    "CoreSpec",
    "MinCPUsNode",
    "MinMemoryNode",
    "MinMemoryCPU",
    "MinTmpDiskNode",
    "Features",
    "DelayBoot",
    "OverSubscribe",
    "Contiguous",
    "Licenses",
    "Network",
    "Command",
    "WorkDir",
    "AdminComment",
    "Comment",
    "StdErr",
    "StdIn",
    "StdOut",
    "Power",
    "TresPerNode",
    "TresPerTask",
    "TresPerJob",
    "CpusPerTres",
    "MemPerTres",
    "MailUser",
    "MailType",
    "NtasksPerTRES",
    "Reservation",
    "Container",
    "KillOInInvalidDependent",
];

/// Split one `scontrol -o` line into (key, value) pairs on the known keys.
pub fn scontrol_fields(line: &str) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for piece in line.trim_end_matches(['\n', '\r']).split(' ') {
        let key = piece
            .split_once('=')
            .map(|(k, _)| k)
            .filter(|k| SCONTROL_KEYS.contains(k));
        match (key, out.last_mut()) {
            (Some(k), _) => out.push((k, piece[k.len() + 1..].to_string())),
            (None, Some((_, v))) => {
                v.push(' ');
                v.push_str(piece);
            }
            (None, None) => {}
        }
    }
    // The split leaves the blank that ends a line on the last value.
    if let Some((_, v)) = out.last_mut() {
        let t = v.trim_end().len();
        v.truncate(t);
    }
    out
}

/// One job as `scontrol show job -o` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: SlurmJobId,
    pub name: String,
    pub state: JobState,
    pub reason: String,
    pub exit: SlurmExit,
    /// How many times Slurm requeued the job (preemption, node failure, `scontrol requeue`).
    pub restarts: u32,
    pub run_time: Duration,
    pub time_limit: Option<Duration>,
    /// Empty while pending.
    pub nodes: Option<String>,
    pub batch_host: Option<String>,
    pub tasks: Option<u32>,
    pub std_out: Option<PathBuf>,
    /// `UserId=name(uid)`: the owner.
    pub user: String,
}

/// Parse `scontrol show job -o` output: one record per non-empty line.
pub fn parse_scontrol(text: &str) -> Result<Vec<JobRecord>, ParseError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields = scontrol_fields(line);
            let get = |k: &str| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
            let need = |k: &'static str| get(k).ok_or_else(|| ParseError::new(k, line));
            let some = |v: Option<&str>| {
                v.filter(|v| !v.is_empty() && *v != "(null)" && *v != "N/A")
                    .map(str::to_string)
            };
            Ok(JobRecord {
                id: need("JobId")?.parse()?,
                name: get("JobName").unwrap_or_default().to_string(),
                state: JobState::parse(need("JobState")?),
                reason: get("Reason").unwrap_or("None").to_string(),
                exit: SlurmExit::parse(need("ExitCode")?)?,
                restarts: get("Restarts")
                    .map(|r| r.parse().map_err(|_| ParseError::new("Restarts", r)))
                    .transpose()?
                    .unwrap_or(0),
                run_time: get("RunTime")
                    .map(parse_slurm_duration)
                    .transpose()?
                    .flatten()
                    .unwrap_or_default(),
                time_limit: get("TimeLimit").map(parse_slurm_duration).transpose()?.flatten(),
                nodes: some(get("NodeList")),
                batch_host: some(get("BatchHost")),
                tasks: get("NumTasks").and_then(|n| n.parse().ok()),
                std_out: some(get("StdOut")).map(PathBuf::from),
                user: get("UserId").unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// One row of `sacct -n -P -o SACCT_FIELDS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcctRecord {
    pub id: SlurmJobId,
    /// A job step (`batch`, `extern`, `0`…), None for the job itself.
    pub step: Option<String>,
    pub name: String,
    pub state: JobState,
    /// `CANCELLED by UID`, when the accounting says who.
    pub cancelled_by: Option<u32>,
    pub exit: SlurmExit,
    pub start: String,
    pub end: String,
    pub nodes: Option<String>,
}

/// Parse `sacct -n -P -o SACCT_FIELDS` output. Job names are trainwatch's (no `|`), so the
/// row splits on `|` into exactly the fields asked for.
pub fn parse_sacct(text: &str) -> Result<Vec<AcctRecord>, ParseError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            let [id, name, state, exit, start, end, nodes] = f[..] else {
                return Err(ParseError::new("sacct row", line));
            };
            let (job, step) = match id.split_once('.') {
                Some((j, s)) => (j, Some(s.to_string())),
                None => (id, None),
            };
            let (state, cancelled_by) = match state.split_once(" by ") {
                Some((s, who)) => (s, who.trim().parse().ok()),
                None => (state, None),
            };
            Ok(AcctRecord {
                id: job.parse()?,
                step,
                name: name.to_string(),
                state: JobState::parse(state),
                cancelled_by,
                exit: SlurmExit::parse(exit)?,
                start: start.to_string(),
                end: end.to_string(),
                nodes: Some(nodes)
                    .filter(|n| !n.is_empty() && *n != "(null)" && *n != "None assigned")
                    .map(str::to_string),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A capture made by `tests/fixtures/slurm/capture.sh` against the real daemons.
    fn fixture(name: &str) -> String {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/slurm/");
        std::fs::read_to_string(format!("{p}{name}")).expect("fixture present")
    }

    #[test]
    fn durations_in_every_form_slurm_prints() {
        let d = |s| parse_slurm_duration(s).unwrap();
        assert_eq!(d("0:00"), Some(Duration::ZERO));
        assert_eq!(d("1:05"), Some(Duration::from_secs(65)));
        assert_eq!(d("00:01:00"), Some(Duration::from_secs(60)));
        assert_eq!(d("1-02:03:04"), Some(Duration::from_secs(93_784)));
        assert_eq!(d("UNLIMITED"), None);
        assert!(parse_slurm_duration("soon").is_err());
    }

    #[test]
    fn the_batched_poll_reads_every_job_of_one_call() {
        let entries = parse_squeue(&fixture("squeue-batch.txt")).unwrap();
        assert_eq!(entries.len(), 9, "{entries:#?}");
        let by_reason = |r: &str| entries.iter().filter(|e| e.reason == r).count();
        assert!(entries.iter().any(|e| e.state == JobState::Completed));
        assert!(entries
            .iter()
            .any(|e| e.state == JobState::Failed && e.reason == "NonZeroExitCode"));
        assert!(entries.iter().any(|e| e.state == JobState::Cancelled));
        assert_eq!(by_reason("JobHeldUser"), 1);
        assert_eq!(by_reason("Resources"), 1);
        assert!(entries
            .iter()
            .any(|e| e.time_limit == Some(Duration::from_secs(60))));
        assert!(entries.iter().any(|e| e.time_limit.is_none()));
    }

    #[test]
    fn unknown_ids_in_a_list_are_simply_absent() {
        let entries = parse_squeue(&fixture("squeue-known-and-unknown.txt")).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].state, JobState::Completed);
    }

    #[test]
    fn scontrol_records_of_each_way_a_job_ends() {
        let one = |f: &str| {
            let mut v = parse_scontrol(&fixture(f)).unwrap();
            assert_eq!(v.len(), 1, "{f}");
            v.remove(0)
        };
        let ok = one("scontrol-completed.txt");
        assert_eq!(
            (ok.state, ok.exit.status, ok.exit.signal),
            (JobState::Completed, 0, 0)
        );
        assert_eq!(ok.name, "ok");
        assert!(ok.std_out.unwrap().ends_with(format!("{}.log", ok.id)));
        let three = one("scontrol-failed-3.txt");
        assert_eq!((three.state, three.exit.status), (JobState::Failed, 3));
        assert_eq!(three.reason, "NonZeroExitCode");
        let nine = one("scontrol-killed-9.txt");
        assert_eq!((nine.state, nine.exit.signal), (JobState::Failed, 9));
        let cancel = one("scontrol-cancelled.txt");
        assert_eq!((cancel.state, cancel.exit.signal), (JobState::Cancelled, 15));
        let timeout = one("scontrol-timeout.txt");
        assert_eq!(timeout.state, JobState::Timeout);
        assert_eq!(timeout.reason, "TimeLimit");
        assert_eq!(timeout.time_limit, Some(Duration::from_secs(60)));
        let held = one("scontrol-held.txt");
        assert_eq!(
            (held.state, held.reason.as_str()),
            (JobState::Pending, "JobHeldUser")
        );
        assert_eq!(held.nodes, None);
        let running = one("scontrol-running.txt");
        assert_eq!(running.state, JobState::Running);
        assert!(running.nodes.is_some());
        assert!(running.batch_host.is_some());
        let ranks = one("scontrol-two-tasks.txt");
        assert_eq!(ranks.tasks, Some(2));
    }

    #[test]
    fn scontrol_without_an_id_lists_every_job() {
        let all = parse_scontrol(&fixture("scontrol-all.txt")).unwrap();
        assert!(all.len() >= 9, "{}", all.len());
    }

    #[test]
    fn values_with_spaces_stay_whole() {
        let line = "JobId=7 JobName=a b JobState=PENDING Reason=(Nodes required for job are DOWN) ExitCode=0:0 StdOut=/shared/my runs/7.log Power=";
        let rec = &parse_scontrol(line).unwrap()[0];
        assert_eq!(rec.name, "a b");
        assert_eq!(rec.reason, "(Nodes required for job are DOWN)");
        assert_eq!(
            rec.std_out.as_deref(),
            Some(std::path::Path::new("/shared/my runs/7.log"))
        );
    }

    #[test]
    fn sacct_rows_from_the_job_completion_file() {
        let rows = parse_sacct(&fixture("sacct-jobcomp.txt")).unwrap();
        assert_eq!(rows.len(), 9);
        let find = |n: &str| rows.iter().find(|r| r.name == n).unwrap();
        assert_eq!(find("three").state, JobState::Failed);
        assert_eq!(find("three").exit.status, 3);
        assert_eq!(find("killed").exit.signal, 9);
        assert_eq!(find("timeout").state, JobState::Timeout);
        assert_eq!(find("cancel").state, JobState::Cancelled);
        assert_eq!(find("held").nodes, None);
        assert!(rows.iter().all(|r| r.step.is_none()));
    }

    #[test]
    fn sacct_with_accounting_names_who_cancelled() {
        // Slurm's accounting (slurmdbd) form; the job completion file CI reads records no uid.
        let rows = parse_sacct("42|train|CANCELLED by 1001|0:15|2026-01-01T00:00:00|2026-01-01T01:00:00|gpu[01-02]\n42.batch|batch|CANCELLED|0:15|2026-01-01T00:00:00|2026-01-01T01:00:00|gpu01\n").unwrap();
        assert_eq!(rows[0].cancelled_by, Some(1001));
        assert_eq!(rows[0].state, JobState::Cancelled);
        assert_eq!(rows[1].step.as_deref(), Some("batch"));
    }
}

//! Slurm's words mapped to the protocol's: how a job ended ([`Outcome`], and as the
//! protocol's [`ExitOutcome`]: the job's own status, or the scheduler's reason — the time
//! limit, memory, someone's cancel, or the cluster itself) and why a job waits in the queue
//! ([`PendingReason`]).

use std::fmt;

use crate::model::{ExitOutcome, SchedulerEnd};

use super::query::{AcctRecord, JobRecord, JobState, SlurmExit};

/// How a Slurm job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// COMPLETED: every task exited 0.
    Completed,
    /// FAILED with the batch script's exit status.
    Failed { code: i32 },
    /// FAILED because the batch script was killed by this signal.
    Signalled { signal: i32 },
    /// CANCELLED (scancel); `by` is the uid when Slurm's accounting records it.
    Cancelled { by: Option<u32> },
    /// TIMEOUT: the time limit was reached and Slurm ended the job.
    Timeout,
    /// OUT_OF_MEMORY: a task went over its memory limit.
    OutOfMemory,
    /// NODE_FAIL: a node the job ran on stopped answering.
    NodeFail,
    /// PREEMPTED: a job of higher priority took the nodes.
    Preempted,
    /// BOOT_FAIL: the nodes could not be booted for it.
    BootFail,
    /// DEADLINE: it could not finish by its `--deadline`.
    Deadline,
    /// Another final state (SPECIAL_EXIT, REVOKED, or one this version does not know).
    Other { state: String, exit: SlurmExit },
}

impl Outcome {
    /// The outcome of a job `scontrol` still holds; None while it is not over.
    pub fn from_record(r: &JobRecord) -> Option<Outcome> {
        Self::from_state(&r.state, r.exit, None)
    }

    /// The outcome of a job read from `sacct` (after Slurm purged it).
    pub fn from_acct(r: &AcctRecord) -> Option<Outcome> {
        Self::from_state(&r.state, r.exit, r.cancelled_by)
    }

    pub fn from_state(state: &JobState, exit: SlurmExit, by: Option<u32>) -> Option<Outcome> {
        Some(match state {
            JobState::Completed => Outcome::Completed,
            JobState::Failed if exit.signal != 0 => Outcome::Signalled { signal: exit.signal },
            JobState::Failed => Outcome::Failed { code: exit.status },
            JobState::Cancelled => Outcome::Cancelled { by },
            JobState::Timeout => Outcome::Timeout,
            JobState::OutOfMemory => Outcome::OutOfMemory,
            JobState::NodeFail => Outcome::NodeFail,
            JobState::Preempted => Outcome::Preempted,
            JobState::BootFail => Outcome::BootFail,
            JobState::Deadline => Outcome::Deadline,
            s @ (JobState::SpecialExit | JobState::Revoked) => Outcome::Other {
                state: s.as_str().to_string(),
                exit,
            },
            // Queued, running, or a state this version does not know: keep following it.
            _ => return None,
        })
    }

    /// The end in the protocol's terms: the batch script's own status when it ended by
    /// itself, else the scheduler's reason ([`SchedulerEnd`]). What that means for the report
    /// (its category) is the one exit classifier's to say (`watch::detect::exit`).
    pub fn exit_outcome(&self) -> ExitOutcome {
        match self {
            Outcome::Completed => ExitOutcome::Code(0),
            // srun (and a shell) exit 128 + N for a task killed by signal N.
            Outcome::Failed { code } => ExitOutcome::from_shell_status(*code),
            Outcome::Signalled { signal } => ExitOutcome::Signal(*signal),
            Outcome::Cancelled { by } => ExitOutcome::Scheduler(SchedulerEnd::Cancelled { uid: *by }),
            Outcome::Timeout => ExitOutcome::Scheduler(SchedulerEnd::TimeLimit),
            Outcome::Deadline => ExitOutcome::Scheduler(SchedulerEnd::Deadline),
            Outcome::OutOfMemory => ExitOutcome::Scheduler(SchedulerEnd::OutOfMemory),
            Outcome::NodeFail => ExitOutcome::Scheduler(SchedulerEnd::NodeFailure),
            Outcome::Preempted => ExitOutcome::Scheduler(SchedulerEnd::Preempted),
            Outcome::BootFail => ExitOutcome::Scheduler(SchedulerEnd::BootFailure),
            Outcome::Other { exit, .. } if exit.signal != 0 => ExitOutcome::Signal(exit.signal),
            Outcome::Other { exit, .. } => ExitOutcome::Code(exit.status),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Completed => f.write_str("completed"),
            Outcome::Failed { code } => match ExitOutcome::from_shell_status(*code) {
                ExitOutcome::Signal(s) => {
                    write!(f, "failed with exit code {code} (a task killed by signal {s})")
                }
                _ => write!(f, "failed with exit code {code}"),
            },
            Outcome::Signalled { signal } => write!(f, "killed by signal {signal}"),
            Outcome::Cancelled { by: Some(uid) } => write!(f, "cancelled by uid {uid}"),
            Outcome::Cancelled { by: None } => f.write_str("cancelled"),
            Outcome::Timeout => f.write_str("ended by Slurm at its time limit (TIMEOUT)"),
            Outcome::OutOfMemory => f.write_str("out of memory (OUT_OF_MEMORY)"),
            Outcome::NodeFail => {
                f.write_str("a node failed under it (NODE_FAIL): infrastructure, not the job's code")
            }
            Outcome::Preempted => {
                f.write_str("preempted by Slurm (PREEMPTED): infrastructure, not the job's code")
            }
            Outcome::BootFail => {
                f.write_str("its nodes failed to boot (BOOT_FAIL): infrastructure, not the job's code")
            }
            Outcome::Deadline => f.write_str("ended at its deadline (DEADLINE)"),
            Outcome::Other { state, exit } => {
                write!(f, "ended as {state} (exit {}:{})", exit.status, exit.signal)
            }
        }
    }
}

/// Who holds a held job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    User,
    Admin,
}

/// Why a job waits in the queue (`Reason=` of a pending job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingReason {
    /// The nodes it needs are busy.
    Resources,
    /// Jobs of higher priority go first.
    Priority,
    /// A QOS limit (the Slurm reason, e.g. `QOSMaxJobsPerUserLimit`).
    Qos(String),
    /// An account (association) limit, e.g. `AssocGrpGRES`.
    Association(String),
    Held(Holder),
    /// Waits for another job (`--dependency`).
    Dependency,
    /// Not allowed to start yet (`--begin`, or after a requeue).
    BeginTime,
    /// The nodes it asked for are down, drained or reserved.
    NodesUnavailable(String),
    /// The partition is down or inactive.
    PartitionDown,
    /// Asks for more than the partition allows (time, nodes).
    PartitionLimit(String),
    /// Scheduled soon; Slurm has not said why it waits.
    None,
    Other(String),
}

impl PendingReason {
    pub fn parse(reason: &str) -> PendingReason {
        let r = reason.trim().trim_start_matches('(').trim_end_matches(')');
        match r {
            "Resources" => PendingReason::Resources,
            "Priority" => PendingReason::Priority,
            "JobHeldUser" => PendingReason::Held(Holder::User),
            "JobHeldAdmin" => PendingReason::Held(Holder::Admin),
            "Dependency" => PendingReason::Dependency,
            "BeginTime" => PendingReason::BeginTime,
            "PartitionDown" | "PartitionInactive" => PendingReason::PartitionDown,
            "None" | "" => PendingReason::None,
            r if r.starts_with("QOS") => PendingReason::Qos(r.to_string()),
            r if r.starts_with("Assoc") => PendingReason::Association(r.to_string()),
            r if r.starts_with("ReqNodeNotAvail") || r.starts_with("Nodes required") => {
                PendingReason::NodesUnavailable(r.to_string())
            }
            r if r.starts_with("Partition") => PendingReason::PartitionLimit(r.to_string()),
            r => PendingReason::Other(r.to_string()),
        }
    }

    /// The reason in a status line: Slurm's word first (what a user searches for), then
    /// what it means.
    pub fn words(&self) -> String {
        match self {
            PendingReason::Resources => "Resources (the nodes it needs are busy)".into(),
            PendingReason::Priority => "Priority (jobs of higher priority go first)".into(),
            PendingReason::Qos(r) => format!("{r} (a QOS limit)"),
            PendingReason::Association(r) => format!("{r} (an account limit)"),
            PendingReason::Held(Holder::User) => {
                "JobHeldUser (held by its user: `scontrol release` lets it run)".into()
            }
            PendingReason::Held(Holder::Admin) => "JobHeldAdmin (held by an administrator)".into(),
            PendingReason::Dependency => "Dependency (waits for another job)".into(),
            PendingReason::BeginTime => "BeginTime (not allowed to start yet)".into(),
            PendingReason::NodesUnavailable(r) => format!("{r} (its nodes are unavailable)"),
            PendingReason::PartitionDown => "PartitionDown (the partition is down)".into(),
            PendingReason::PartitionLimit(r) => {
                format!("{r} (asks for more than the partition allows)")
            }
            PendingReason::None => "none given (about to be scheduled)".into(),
            PendingReason::Other(r) => r.clone(),
        }
    }

    pub fn is_held(&self) -> bool {
        matches!(self, PendingReason::Held(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::slurm::query::{parse_sacct, parse_scontrol, parse_squeue};
    use crate::model::Category;
    use crate::watch::detect::exit_verdict;

    fn fixture(name: &str) -> String {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/slurm/");
        std::fs::read_to_string(format!("{p}{name}")).expect("fixture present")
    }

    fn outcome_of(file: &str) -> Option<Outcome> {
        Outcome::from_record(&parse_scontrol(&fixture(file)).unwrap()[0])
    }

    #[test]
    fn each_real_end_maps_to_its_outcome_and_cause() {
        let cases = [
            ("scontrol-completed.txt", Outcome::Completed, ExitOutcome::Code(0)),
            (
                "scontrol-failed-3.txt",
                Outcome::Failed { code: 3 },
                ExitOutcome::Code(3),
            ),
            (
                "scontrol-killed-9.txt",
                Outcome::Signalled { signal: 9 },
                ExitOutcome::Signal(9),
            ),
            (
                "scontrol-cancelled.txt",
                Outcome::Cancelled { by: None },
                ExitOutcome::Scheduler(SchedulerEnd::Cancelled { uid: None }),
            ),
            (
                "scontrol-timeout.txt",
                Outcome::Timeout,
                ExitOutcome::Scheduler(SchedulerEnd::TimeLimit),
            ),
        ];
        for (file, outcome, exit) in cases {
            let got = outcome_of(file).unwrap_or_else(|| panic!("{file}: no outcome"));
            assert_eq!(got, outcome, "{file}");
            assert_eq!(got.exit_outcome(), exit, "{file}");
        }
        assert_eq!(
            outcome_of("scontrol-failed-3.txt").unwrap().exit_outcome(),
            ExitOutcome::Code(3)
        );
        assert_eq!(
            outcome_of("scontrol-killed-9.txt").unwrap().exit_outcome(),
            ExitOutcome::Signal(9)
        );
    }

    #[test]
    fn jobs_still_queued_or_running_have_no_outcome() {
        for f in [
            "scontrol-running.txt",
            "scontrol-held.txt",
            "scontrol-pending-resources.txt",
            "scontrol-pending-priority.txt",
        ] {
            assert_eq!(outcome_of(f), None, "{f}");
        }
    }

    #[test]
    fn sacct_outcomes_after_the_job_left_the_controller() {
        let rows = parse_sacct(&fixture("sacct-jobcomp.txt")).unwrap();
        let of = |n: &str| Outcome::from_acct(rows.iter().find(|r| r.name == n).unwrap());
        assert_eq!(of("three"), Some(Outcome::Failed { code: 3 }));
        assert_eq!(of("killed"), Some(Outcome::Signalled { signal: 9 }));
        assert_eq!(of("timeout"), Some(Outcome::Timeout));
        assert_eq!(of("ok"), Some(Outcome::Completed));
    }

    #[test]
    fn the_cluster_failing_is_infrastructure_and_memory_is_resource() {
        let none = SlurmExit { status: 0, signal: 0 };
        for s in ["NODE_FAIL", "PREEMPTED", "BOOT_FAIL"] {
            let o = Outcome::from_state(&JobState::parse(s), none, None).unwrap();
            assert!(o.to_string().contains("infrastructure"), "{o}");
            let (category, _) = exit_verdict(o.exit_outcome(), None).unwrap();
            assert_eq!(category, Category::Infrastructure, "{s}");
        }
        let oom = Outcome::from_state(&JobState::OutOfMemory, none, None).unwrap();
        assert_eq!(
            exit_verdict(oom.exit_outcome(), None).unwrap().0,
            Category::Resource
        );
        let by = Outcome::from_state(&JobState::Cancelled, none, Some(1001)).unwrap();
        assert_eq!(by.to_string(), "cancelled by uid 1001");
    }

    #[test]
    fn pending_reasons_from_the_real_queue() {
        let entries = parse_squeue(&fixture("squeue-batch.txt")).unwrap();
        let reasons: Vec<PendingReason> = entries
            .iter()
            .filter(|e| e.state == JobState::Pending)
            .map(|e| PendingReason::parse(&e.reason))
            .collect();
        assert!(reasons.contains(&PendingReason::Resources), "{reasons:?}");
        assert!(reasons.contains(&PendingReason::Priority), "{reasons:?}");
        assert!(
            reasons.contains(&PendingReason::Held(Holder::User)),
            "{reasons:?}"
        );
        assert!(PendingReason::Held(Holder::User).is_held());
        assert!(PendingReason::Priority.words().starts_with("Priority"));
        assert_eq!(
            PendingReason::parse("QOSMaxJobsPerUserLimit"),
            PendingReason::Qos("QOSMaxJobsPerUserLimit".into())
        );
        assert_eq!(
            PendingReason::parse("(ReqNodeNotAvail, UnavailableNodes:n2)"),
            PendingReason::NodesUnavailable("ReqNodeNotAvail, UnavailableNodes:n2".into())
        );
    }
}

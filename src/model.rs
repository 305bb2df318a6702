//! Domain types shared by every layer: job and run identities, the protocol's error
//! categories, severities and personas, incidents found in a log, and how a process ended.
//! They are plain data (serde-able) so the engine can stay pure and the store can keep them.
//! `metric_value` lives here too: the log pipeline and chat both write metric values in text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The name of a job declared in the config. Restricted to a safe alphabet because it ends
/// up in file paths, button ids and chat commands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobName(String);

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid job name {0:?}: use 1-64 characters from A-Z a-z 0-9 _ . -, not starting with . or -")]
pub struct InvalidJobName(pub String);

impl JobName {
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidJobName> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 64
            && !s.starts_with(['.', '-'])
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(Self(s))
        } else {
            Err(InvalidJobName(s))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JobName {
    type Error = InvalidJobName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}
impl From<JobName> for String {
    fn from(j: JobName) -> String {
        j.0
    }
}
impl FromStr for JobName {
    type Err = InvalidJobName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}
impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The number of a supervised run of a job (1, 2, …). A run spans every restart of the
/// training until it completes, fails or is killed; each restart is a new attempt (new PID)
/// in the same run, appending to the same log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub u32);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The protocol's four error categories, and a fifth for a cluster: `Infrastructure`, an
/// end caused by the cluster itself (a node that failed, a preemption), not by anything the
/// team wrote — nobody's code to fix, the director's call whether to resubmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Implementation,
    Data,
    Resource,
    Convergence,
    Infrastructure,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Implementation,
        Category::Data,
        Category::Resource,
        Category::Convergence,
        Category::Infrastructure,
    ];

    /// Who the protocol asks to fix an error of this category.
    pub fn owner(self) -> Persona {
        match self {
            Category::Implementation | Category::Resource => Persona::CodeTranslator,
            Category::Data => Persona::DataEngineer,
            Category::Convergence => Persona::Modeler,
            Category::Infrastructure => Persona::Director,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Implementation => "implementation",
            Category::Data => "data",
            Category::Resource => "resource",
            Category::Convergence => "convergence",
            Category::Infrastructure => "infrastructure",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("unknown category {s:?} (expected implementation, data, resource, convergence or infrastructure)")
            })
    }
}

/// Fatal: the problem ends the run. Warning: the run goes on. Note: the run said it handled
/// it and went on (a fallback, a retry): listed in the report, never posted or pinged alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Fatal,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The people the protocol names. In chat they are roles or users mapped in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persona {
    Director,
    CodeTranslator,
    DataEngineer,
    Modeler,
    TimeValidator,
    /// May start jobs (not a protocol persona; the director may always start too).
    Starter,
}

impl Persona {
    pub const ALL: [Persona; 6] = [
        Persona::Director,
        Persona::CodeTranslator,
        Persona::DataEngineer,
        Persona::Modeler,
        Persona::TimeValidator,
        Persona::Starter,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Persona::Director => "director",
            Persona::CodeTranslator => "code_translator",
            Persona::DataEngineer => "data_engineer",
            Persona::Modeler => "modeler",
            Persona::TimeValidator => "time_validator",
            Persona::Starter => "starter",
        }
    }
}

impl fmt::Display for Persona {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Persona {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Persona::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown persona {s:?} (expected director, code_translator, data_engineer, modeler, time_validator or starter)"
                )
            })
    }
}

/// A problem found in a log or in how the process ended, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub category: Category,
    pub severity: Severity,
    /// 1-based line number (lines split on `\n`) of the line that states the problem;
    /// 0 when the evidence is not a log line (e.g. an exit by signal).
    pub line: u64,
    /// The line that states the problem by itself (the exception line `Type: message`,
    /// never the bare `Traceback (most recent call last):` header). Cut for display.
    pub text: String,
    /// Surrounding evidence: the traceback block, or a few lines of context.
    pub excerpt: Vec<String>,
    /// How many identical incidents were folded into this one (a burst is one incident).
    pub count: u32,
    /// Why it got its category: the rule of the decision table that decided, in one short
    /// sentence ending with the category (`CUDA ran out of memory (resource)`). Empty for
    /// incidents stored before it existed.
    #[serde(default)]
    pub reason: String,
}

/// How a supervised process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitOutcome {
    /// Exited normally with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
    /// The process is gone but how it ended could not be learned (its holder died too).
    Unknown,
    /// A scheduler (Slurm) ended the job for a reason of its own, whatever the job's own
    /// status was: its time limit, its memory limit, a failed node, a preemption, a cancel.
    Scheduler(SchedulerEnd),
}

/// Why a scheduler ended a job. Each names the cause a report gives; the exit classifier
/// (`watch::detect::exit`) maps it to a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerEnd {
    /// The job's time limit was reached (Slurm TIMEOUT).
    TimeLimit,
    /// It could not finish by its deadline (Slurm DEADLINE).
    Deadline,
    /// A task went over its memory limit (Slurm OUT_OF_MEMORY).
    OutOfMemory,
    /// Cancelled by someone (`scancel`); `uid` when the scheduler records who.
    Cancelled { uid: Option<u32> },
    /// A node it ran on stopped answering (Slurm NODE_FAIL).
    NodeFailure,
    /// A job of higher priority took its nodes (Slurm PREEMPTED).
    Preempted,
    /// Its nodes could not be booted (Slurm BOOT_FAIL).
    BootFailure,
    /// The scheduler took the running job back into its queue (Slurm REQUEUED, after a node
    /// failure or a preemption with requeue): this attempt ended, the same job starts again.
    Requeued,
}

impl SchedulerEnd {
    /// The cluster's fault, not the job's: safe to resubmit unchanged.
    pub fn is_infrastructure(self) -> bool {
        matches!(
            self,
            SchedulerEnd::NodeFailure
                | SchedulerEnd::Preempted
                | SchedulerEnd::BootFailure
                | SchedulerEnd::Requeued
        )
    }
}

impl fmt::Display for SchedulerEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchedulerEnd::TimeLimit => f.write_str("ended by the scheduler at its time limit (TIMEOUT)"),
            SchedulerEnd::Deadline => f.write_str("ended by the scheduler at its deadline (DEADLINE)"),
            SchedulerEnd::OutOfMemory => {
                f.write_str("ended by the scheduler over its memory limit (OUT_OF_MEMORY)")
            }
            SchedulerEnd::Cancelled { uid: Some(u) } => write!(f, "cancelled in the scheduler by uid {u}"),
            SchedulerEnd::Cancelled { uid: None } => f.write_str("cancelled in the scheduler"),
            SchedulerEnd::NodeFailure => f.write_str("a node it ran on failed (NODE_FAIL)"),
            SchedulerEnd::Preempted => f.write_str("preempted by the scheduler (PREEMPTED)"),
            SchedulerEnd::BootFailure => f.write_str("its nodes failed to boot (BOOT_FAIL)"),
            SchedulerEnd::Requeued => f.write_str("taken back into the scheduler's queue (REQUEUED)"),
        }
    }
}

/// Which process a run's attempt is: a process on this machine, or a job in a scheduler.
/// Stored as a bare number for a local PID (as states written before Slurm have it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProcessId {
    Local(u32),
    Slurm { slurm_job: u64 },
}

impl ProcessId {
    /// What the number is, as a message labels it: "PID" or "Slurm job".
    pub fn label(self) -> &'static str {
        match self {
            ProcessId::Local(_) => "PID",
            ProcessId::Slurm { .. } => "Slurm job",
        }
    }
    pub fn number(self) -> u64 {
        match self {
            ProcessId::Local(p) => u64::from(p),
            ProcessId::Slurm { slurm_job } => slurm_job,
        }
    }
    /// The local PID, for what only a local process has (signals, /proc).
    pub fn local(self) -> Option<u32> {
        match self {
            ProcessId::Local(p) => Some(p),
            ProcessId::Slurm { .. } => None,
        }
    }
}

/// PID 0: a process whose number is not known (its attempt ended while nobody watched).
impl Default for ProcessId {
    fn default() -> Self {
        ProcessId::Local(0)
    }
}

impl From<u32> for ProcessId {
    fn from(pid: u32) -> Self {
        ProcessId::Local(pid)
    }
}

/// "PID 4242" or "Slurm job 17".
impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.label(), self.number())
    }
}

impl ExitOutcome {
    pub fn success(self) -> bool {
        matches!(self, ExitOutcome::Code(0))
    }
    /// The status as a shell reports it (128 + signal), None when unknown.
    pub fn shell_status(self) -> Option<i32> {
        match self {
            ExitOutcome::Code(c) => Some(c),
            ExitOutcome::Signal(s) => Some(128 + s),
            ExitOutcome::Unknown | ExitOutcome::Scheduler(_) => None,
        }
    }
    /// Parse a shell-style status: values above 128 up to 128+64 are read as signals.
    pub fn from_shell_status(n: i32) -> Self {
        if (129..=128 + 64).contains(&n) {
            ExitOutcome::Signal(n - 128)
        } else {
            ExitOutcome::Code(n)
        }
    }
}

impl fmt::Display for ExitOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitOutcome::Code(c) => write!(f, "exit code {c}"),
            ExitOutcome::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(*s)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| format!("signal {s}"));
                write!(f, "killed by {name} ({})", 128 + s)
            }
            ExitOutcome::Unknown => f.write_str("ended, status unknown"),
            ExitOutcome::Scheduler(end) => end.fmt(f),
        }
    }
}

/// What to do, unattended, when a fatal error halts a run and nobody can decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Wait for a decision (unattended: the run fails once the process has ended).
    Wait,
    /// Kill the job.
    Kill,
    /// Restart it (from the newest checkpoint when the job has one), at most `limit` times per run.
    Restart { limit: u32 },
}

impl fmt::Display for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnError::Wait => f.write_str("wait"),
            OnError::Kill => f.write_str("kill"),
            OnError::Restart { limit } => write!(f, "restart (at most {limit} times)"),
        }
    }
}

/// What to do when a scheduler ends an attempt for the cluster's own reasons (a failed node,
/// a preemption, a boot failure) or takes it back into its queue: nobody's code to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInfrastructure {
    /// Start the next attempt by itself (appending, resuming from the newest checkpoint), at
    /// most `limit` times per run, without counting against `restart_limit`; past the limit,
    /// the usual report and decision.
    Resubmit { limit: u32 },
    /// Report it and wait for a decision, as for any other error.
    Ask,
}

impl OnInfrastructure {
    /// Resubmits allowed per run when `resubmit_limit` is not given.
    pub const DEFAULT_LIMIT: u32 = 3;
}

impl Default for OnInfrastructure {
    fn default() -> Self {
        OnInfrastructure::Resubmit {
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

impl fmt::Display for OnInfrastructure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnInfrastructure::Resubmit { limit } => write!(f, "resubmit (at most {limit} times)"),
            OnInfrastructure::Ask => f.write_str("ask"),
        }
    }
}

/// Who sent a command: a chat user with the personas the config grants them, or the job's
/// own `on_error` policy acting unattended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Stable identity (chat user id, or local user name).
    pub id: String,
    /// How to show them (`@alice`).
    pub display: String,
    pub personas: Vec<Persona>,
    /// True for the unattended policy: acts with the director's authority.
    pub is_policy: bool,
}

impl Actor {
    pub fn user(id: impl Into<String>, display: impl Into<String>, personas: Vec<Persona>) -> Self {
        Self {
            id: id.into(),
            display: display.into(),
            personas,
            is_policy: false,
        }
    }
    pub fn policy() -> Self {
        Self {
            id: "policy".into(),
            display: "on_error policy".into(),
            personas: vec![Persona::Director],
            is_policy: true,
        }
    }
    pub fn has(&self, p: Persona) -> bool {
        self.personas.contains(&p)
    }
}

/// A metric as read: 0.6931, 5.000e-5, NaN.
pub fn metric_value(v: f64) -> String {
    let a = v.abs();
    if v.fract() == 0.0 && a < 1e12 {
        // Counts (epochs, examples, steps) read as integers.
        format!("{v:.0}")
    } else if !v.is_finite() || (1e-3..1e5).contains(&a) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_are_restricted() {
        assert!(JobName::new("model_3").is_ok());
        assert!(JobName::new("a.b-c").is_ok());
        assert!(JobName::new("").is_err());
        assert!(JobName::new("-rf").is_err());
        assert!(JobName::new("a b").is_err());
        assert!(JobName::new("a/b").is_err());
        assert!(JobName::new("x".repeat(65)).is_err());
    }

    #[test]
    fn category_owners_follow_the_protocol() {
        assert_eq!(Category::Implementation.owner(), Persona::CodeTranslator);
        assert_eq!(Category::Resource.owner(), Persona::CodeTranslator);
        assert_eq!(Category::Data.owner(), Persona::DataEngineer);
        assert_eq!(Category::Convergence.owner(), Persona::Modeler);
        assert_eq!(Category::Infrastructure.owner(), Persona::Director);
    }

    #[test]
    fn a_local_pid_is_stored_as_a_bare_number_as_before_slurm() {
        assert_eq!(serde_json::to_string(&ProcessId::Local(7)).unwrap(), "7");
        assert_eq!(
            serde_json::from_str::<ProcessId>("7").unwrap(),
            ProcessId::Local(7)
        );
        let slurm = ProcessId::Slurm { slurm_job: 12 };
        let json = serde_json::to_string(&slurm).unwrap();
        assert_eq!(serde_json::from_str::<ProcessId>(&json).unwrap(), slurm);
        assert_eq!(slurm.to_string(), "Slurm job 12");
        assert_eq!(ProcessId::Local(7).to_string(), "PID 7");
    }

    #[test]
    fn metric_values_read_as_printed() {
        assert_eq!(metric_value(3.0), "3");
        assert_eq!(metric_value(0.512345), "0.5123");
        assert_eq!(metric_value(5e-5), "5.000e-5");
        assert_eq!(metric_value(f64::NAN), "NaN");
        assert_eq!(metric_value(f64::INFINITY), "inf");
    }

    #[test]
    fn shell_status_round_trips_signals() {
        assert_eq!(ExitOutcome::from_shell_status(137), ExitOutcome::Signal(9));
        assert_eq!(ExitOutcome::from_shell_status(1), ExitOutcome::Code(1));
        assert_eq!(ExitOutcome::Signal(11).shell_status(), Some(139));
        assert_eq!(ExitOutcome::Signal(9).to_string(), "killed by SIGKILL (137)");
    }

    /// An incident stored before incidents said why still loads (with no reason), and one
    /// with a reason keeps it.
    #[test]
    fn an_incident_stored_without_a_reason_still_loads() {
        let old = r#"{"category":"data","severity":"fatal","line":3,"text":"KeyError: 'x'","excerpt":[],"count":1}"#;
        let inc: Incident = serde_json::from_str(old).unwrap();
        assert_eq!(
            (inc.category, inc.line, inc.reason.as_str()),
            (Category::Data, 3, "")
        );
        let new = Incident {
            reason: "a missing data file (data)".into(),
            ..inc
        };
        let back: Incident = serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(back, new);
    }
}

//! Protocol rules, one test each, with time passed in as data: a 24-hour run takes
//! milliseconds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::model::{Actor, Category, ExitOutcome, Incident, JobName, OnError, Persona, RunId, Severity};
use crate::review::Snapshot;

/// The run's phase matches `$p` (a pattern: `Phase::Halted { incident: 1 }`, `Phase::Killed { .. }`).
macro_rules! assert_phase {
    ($sim:expr, $p:pat) => {{
        let phase = $sim.phase();
        assert!(matches!(phase, $p), "phase is {phase:?}");
    }};
}

const MIN: i64 = 60;
const HOUR: i64 = 3600;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap()
}

fn settings() -> JobSettings {
    JobSettings {
        job: JobName::new("model_3").unwrap(),
        argv: vec!["python".into(), "model_3.py".into()],
        log: PathBuf::from("/runs/output/implementation/logs/training_model_3_full.log"),
        expected: Some(Duration::from_secs(12 * 3600)),
        max: Some(Duration::from_secs(24 * 3600)),
        status_interval: Duration::from_secs(30 * 60),
        on_error: OnError::Wait,
        unattended: false,
        approval_ttl: None,
        scheduler: SchedulerPolicy::default(),
    }
}

fn director() -> Actor {
    Actor::user("u1", "@dana", vec![Persona::Director])
}

fn translator() -> Actor {
    Actor::user("u2", "@bob", vec![Persona::CodeTranslator])
}

/// A job machine and a clock, with helpers that feed events at `t0 + offset`.
struct Sim {
    m: JobMachine,
}

impl Sim {
    fn new(s: JobSettings) -> Self {
        Self {
            m: JobMachine::new(s),
        }
    }
    fn at(&mut self, secs: i64, event: Event) -> Vec<Action> {
        self.m.handle(Input {
            at: t0() + chrono::Duration::seconds(secs),
            event,
        })
    }
    fn cmd(&mut self, secs: i64, by: Actor, command: Command) -> Vec<Action> {
        self.at(
            secs,
            Event::Command {
                command,
                by,
                code: None,
            },
        )
    }
    fn decide(&mut self, secs: i64, by: Actor, decision: Decision) -> Vec<Action> {
        self.cmd(secs, by, decision_command(decision, None))
    }
    /// A button click: `decision` on the report of run 1 that asked `point`.
    fn click(&mut self, secs: i64, by: Actor, decision: Decision, point: DecisionPoint) -> Vec<Action> {
        self.cmd(secs, by, decision_command(decision, Some((RunId(1), point))))
    }
    /// The detector reports `incident` under the supervisor's `key`.
    fn incident(&mut self, secs: i64, key: u64, incident: Incident) -> Vec<Action> {
        self.at(secs, Event::Incident { key, incident })
    }
    /// More evidence for the incident under `key` (the rest of a traceback, a burst count).
    fn incident_updated(&mut self, secs: i64, key: u64, incident: Incident) -> Vec<Action> {
        self.at(secs, Event::IncidentUpdated { key, incident })
    }
    /// The run's first fatal error (the key error at log line 120) halts it at `secs`.
    fn halted(mut self, secs: i64) -> Self {
        self.incident(secs, 1, key_error(120));
        self
    }
    /// `/fix submit` with the evidence the supervisor computed.
    fn submit_fix(
        &mut self,
        secs: i64,
        by: Actor,
        summary: &str,
        evidence: Option<Box<FixEvidence>>,
    ) -> Vec<Action> {
        self.cmd(
            secs,
            by,
            Command::SubmitFix {
                summary: summary.into(),
                evidence,
            },
        )
    }
    /// A command sent while the job's code is `files` (path, hash): what a review binds to.
    fn with_code(&mut self, secs: i64, by: Actor, command: Command, files: &[(&str, &str)]) -> Vec<Action> {
        self.at(
            secs,
            Event::Command {
                command,
                by,
                code: Some(code(files)),
            },
        )
    }
    /// `/validate approve|reject [reason]` while the job's code is `files`.
    fn validate(
        &mut self,
        secs: i64,
        by: Actor,
        approve: bool,
        reason: Option<&str>,
        files: &[(&str, &str)],
    ) -> Vec<Action> {
        let reason = reason.map(str::to_string);
        self.with_code(secs, by, Command::Validate { approve, reason }, files)
    }
    /// `/restart` while the job's code is `files`.
    fn restart_with_code(&mut self, secs: i64, by: Actor, files: &[(&str, &str)]) -> Vec<Action> {
        self.with_code(secs, by, decision_command(Decision::Restart, None), files)
    }
    /// Start a run and let the executor report PID `pid`.
    fn started(mut self, pid: u32) -> Self {
        let a = self.cmd(0, director(), Command::Start);
        assert!(a.contains(&first_spawn()));
        self.at(0, spawned(pid));
        self
    }
    fn phase(&self) -> Phase {
        self.m.run().unwrap().phase.clone()
    }
}

fn spawned(pid: u32) -> Event {
    Event::Spawned {
        pid: pid.into(),
        checkpoint: None,
        previous_log: None,
    }
}

/// `decision` as a command: typed (no `target`), or from a button (the run and report it was
/// posted under).
fn decision_command(decision: Decision, target: Option<(RunId, DecisionPoint)>) -> Command {
    Command::Decide {
        decision,
        target,
        extend: None,
    }
}

/// A new run's spawn: a fresh log, nothing to resume.
fn first_spawn() -> Action {
    Action::Spawn {
        run: RunId(1),
        attempt: 1,
        append: false,
        resume: false,
    }
}

/// Run 1 is over, a success or not: nothing more happens until a new start.
fn run_ended(success: bool) -> Action {
    Action::RunEnded {
        run: RunId(1),
        success,
    }
}

/// The process ended by a signal (a kill, a restart), leaving no outputs.
fn signalled(signal: i32) -> Event {
    Event::Exited {
        outcome: ExitOutcome::Signal(signal),
        outputs: vec![],
    }
}

/// The spawn of a restart: the same run, appending to its log and resuming.
fn respawn(attempt: u32) -> Action {
    Action::Spawn {
        run: RunId(1),
        attempt,
        append: true,
        resume: true,
    }
}

/// The job's code as the supervisor snapshots it: (path, hash) pairs.
fn code(files: &[(&str, &str)]) -> Snapshot {
    Snapshot {
        taken_at: t0(),
        files: files
            .iter()
            .map(|(p, h)| (PathBuf::from(p), h.to_string()))
            .collect(),
        params: BTreeMap::new(),
        git: None,
    }
}

fn exited(code: i32) -> Event {
    Event::Exited {
        outcome: ExitOutcome::Code(code),
        outputs: vec![OutputFile {
            path: "output/results/results_model_3.csv".into(),
            size: Some(2048),
        }],
    }
}

fn key_error(line: u64) -> Incident {
    Incident {
        category: Category::Implementation,
        severity: Severity::Fatal,
        line,
        text: "AttributeError: 'Model' object has no attribute 'fit_transform'".into(),
        excerpt: vec![
            "Traceback (most recent call last):".into(),
            "  File \"model_3.py\", line 88, in <module>".into(),
            "AttributeError: 'Model' object has no attribute 'fit_transform'".into(),
        ],
        count: 1,
        reason: String::new(),
    }
}

fn posts(actions: &[Action]) -> Vec<&Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Post(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn replies(actions: &[Action]) -> Vec<&Reply> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn refused(actions: &[Action]) -> Option<String> {
    replies(actions)
        .into_iter()
        .find(|r| !r.accepted)
        .map(|r| r.text.clone())
}

mod clock;
mod decisions;
mod endings;
mod gate;
mod incidents;
mod policy;
mod scheduler;
mod state;

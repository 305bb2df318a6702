//! One job's task: a select loop over commands, the log, the process and the clock, and the
//! executor of the engine's actions. It owns the job's engine, its log [`Pipeline`] and its
//! process handle. Everything the engine decides is committed to the store (with the
//! pipeline's state) before it is shown, so a crash of trainwatch loses nothing and a restart
//! re-adopts the job where it was (see `readopt`). A commit the store refuses does not stop
//! the watch: `persist` holds it and retries, and says so in the chat.
//!
//! State is held once: the engine holds the protocol's state (phase, liveness as the
//! protocol knows it, the baseline, the progress shown), the pipeline what reading the log
//! measures, and this task only the OS handle of the running process; it asks the engine
//! through its read-only queries, never by reading its fields.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::chat::{ChatSink, Inbound, Outgoing};
use crate::config::Executor;
use crate::config::JobSpec;
use crate::engine::{
    Action, Body, Command, Decision, Event, Input, JobMachine, Message, MessageKey, OutputFile, Phase, Reply,
};
use crate::exec::slurm::SlurmWatcher;
use crate::exec::{self, Adopted, Process, SpawnSpec};
use crate::model::{ExitOutcome, JobName, ProcessId, RunId};
use crate::review;
use crate::store::pending::{Unwritten, Writer};
use crate::store::Store;
use crate::watch::pipeline::{Pipeline, PipelineState};

use super::readopt::{self, Found, Plan};

mod evidence;
mod persist;
mod scheduler;
use super::spec::{pipeline_config, settings_of};

/// How long the log must stay quiet before pending detector state is settled.
const IDLE_SETTLE: Duration = Duration::from_secs(2);
/// How often the log position is saved while the log grows without any event worth a commit.
const FOLLOW_SAVE_EVERY: Duration = Duration::from_secs(5);

/// Messages to a job's task.
pub(crate) enum JobMsg {
    Inbound(Inbound),
    /// Start a new run unless one is active (re-adopted).
    StartIfIdle(crate::model::Actor),
}

/// Reported to the supervisor when a run ends.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub job: JobName,
    pub run: RunId,
    pub success: bool,
}

/// What a background task (spawn, wait, kill) tells the job's task.
enum Internal {
    Spawned {
        attempt: u32,
        handle: Arc<Process>,
        checkpoint: Option<PathBuf>,
        /// A new run's code as its process started (what its fixes are compared against).
        baseline: Option<review::Snapshot>,
    },
    SpawnFailed {
        error: String,
    },
    /// What the scheduler says of the attempt `pid` (queued, started, requeued…), or of its
    /// controller.
    Scheduler {
        pid: ProcessId,
        event: Event,
    },
    Exited {
        pid: ProcessId,
        outcome: ExitOutcome,
        /// Processes of the job still running when its main process ended (its shim ends them).
        lingering: Vec<u32>,
    },
}

pub(crate) struct JobRuntime {
    spec: JobSpec,
    machine: JobMachine,
    store: Arc<Mutex<Store>>,
    chat: Arc<dyn ChatSink>,
    pipeline: Pipeline,
    /// The running process (None while none runs, or while it is being started).
    handle: Option<Arc<Process>>,
    state_root: PathBuf,
    shim: PathBuf,
    /// The poller of Slurm jobs, for a job that runs on Slurm.
    slurm: Option<SlurmWatcher>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    ended: mpsc::UnboundedSender<RunEnd>,
    last_line_at: Option<Instant>,
    follow_saved_at: Instant,
    follow_dirty: bool,
    stall_checked_at: Instant,
    /// What this job could not write to the store yet, retried with backoff.
    writer: Writer,
    /// Store notices said so far (their message keys).
    store_said: u32,
}

pub(crate) struct JobRuntimeArgs {
    pub spec: JobSpec,
    pub unattended: bool,
    pub store: Arc<Mutex<Store>>,
    pub chat: Arc<dyn ChatSink>,
    pub state_root: PathBuf,
    pub shim: PathBuf,
    /// Shared by every Slurm job of the supervisor (None when it has none).
    pub slurm: Option<SlurmWatcher>,
    pub ended: mpsc::UnboundedSender<RunEnd>,
}

impl JobRuntime {
    /// Restore the job from the store (or start blank) and re-adopt a process that was
    /// running when trainwatch last stopped.
    pub(crate) fn new(args: JobRuntimeArgs) -> Result<Self, crate::store::StoreError> {
        let settings = settings_of(&args.spec, args.unattended);
        let (saved, generation) = {
            let store = args.store.lock().unwrap_or_else(|e| e.into_inner());
            (store.load_job(&args.spec.engine.job)?, store.generation())
        };
        let (machine, saved_pipeline) = match saved {
            Some((state, pipeline)) => {
                let pipeline = pipeline
                    .and_then(|f| serde_json::from_value::<PipelineState>(f).ok())
                    .unwrap_or_default();
                (JobMachine::restore(settings, state), pipeline)
            }
            None => (JobMachine::new(settings), PipelineState::default()),
        };
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let mut pipeline = Pipeline::new(
            pipeline_config(&args.spec),
            saved_pipeline,
            machine.incident_keys(),
        );
        pipeline.restore_filed(machine.convergence_lines());
        Ok(Self {
            writer: Writer::new(args.spec.engine.job.clone(), generation),
            stall_checked_at: Instant::now(),
            pipeline,
            machine,
            store: args.store,
            chat: args.chat,
            handle: None,
            state_root: args.state_root,
            shim: args.shim,
            slurm: args.slurm,
            internal_tx,
            internal_rx,
            ended: args.ended,
            spec: args.spec,
            last_line_at: None,
            follow_saved_at: Instant::now(),
            follow_dirty: false,
            store_said: 0,
        })
    }

    pub(crate) fn is_active(&self) -> bool {
        self.machine.is_active()
    }

    fn attempt_dir(&self, run: RunId, attempt: u32) -> PathBuf {
        self.state_root
            .join(self.spec.engine.job.as_str())
            .join(format!("run-{}", run.0))
            .join(format!("attempt-{attempt}"))
    }

    /// Pick up a run that was under way when trainwatch stopped (what to do: `readopt::plan`).
    fn readopt(&mut self) {
        let Some(saved) = self.machine.under_way() else {
            return;
        };
        let run = saved.run;
        info!(job = %self.spec.engine.job, run = run.0, phase = ?saved.phase, "re-adopting");
        let plan = readopt::plan(saved, |attempt| {
            match self.adopt(&self.attempt_dir(run, attempt)) {
                Ok(found) => found,
                Err(e) => {
                    warn!(job = %self.spec.engine.job, attempt, error = %e, "reading an attempt's state");
                    Found::Nothing
                }
            }
        });
        match plan {
            Plan::Nothing => {}
            Plan::AdoptStarted { attempt, handle } => {
                let _ = self.internal_tx.send(Internal::Spawned {
                    attempt,
                    handle: Arc::new(handle),
                    checkpoint: None,
                    baseline: None,
                });
            }
            Plan::StartedAndEnded { outcome } => {
                // Its PID is not kept once it has ended: 0 stands for "unknown".
                let pid = ProcessId::default();
                self.pipeline.new_attempt(Utc::now());
                self.step(Event::Spawned {
                    pid,
                    checkpoint: None,
                    previous_log: None,
                });
                let _ = self.internal_tx.send(Internal::Exited {
                    pid,
                    outcome,
                    lingering: Vec::new(),
                });
            }
            Plan::Spawn { attempt, append } => self.spawn(run, attempt, append, append),
            Plan::Watch { handle, kill } => {
                let h = Arc::new(handle);
                self.watch_exit(h.clone());
                self.watch_scheduler(&h);
                self.pipeline.set_writer(h.local_pid());
                self.handle = Some(h);
                if kill {
                    self.kill();
                } else {
                    self.pipeline.process_running(Utc::now());
                }
            }
            Plan::Exited { pid, outcome } => {
                let _ = self.internal_tx.send(Internal::Exited {
                    pid,
                    outcome,
                    lingering: Vec::new(),
                });
            }
        }
    }

    /// The job's task: runs until the supervisor drops its sender; what the store never
    /// took, if anything.
    pub(crate) async fn run(mut self, mut inbox: mpsc::Receiver<JobMsg>) -> Option<Unwritten> {
        self.readopt();
        // Catch up on what the log gained while we were away.
        self.read_log();
        loop {
            let deadline = self.machine.next_deadline().map(instant_at);
            let idle_at = self.last_line_at.map(|t| t + IDLE_SETTLE);
            let stall_at = self.next_stall_check();
            let store_retry_at = self.writer.next_try().map(instant_at);
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(JobMsg::Inbound(i)) => self.inbound(i),
                    Some(JobMsg::StartIfIdle(by)) => {
                        if !self.machine.is_active() {
                            self.step(Event::Command { command: Command::Start, by, code: None });
                        }
                    }
                    None => break,
                },
                Some(internal) = self.internal_rx.recv() => {
                    if let Internal::Exited { pid, .. } = &internal {
                        if !self.handle.as_ref().is_some_and(|h| h.id() != *pid) {
                            // What the process wrote is read (and reported) first; then the
                            // metrics tracker reads to the end of the log before the exit is
                            // judged: awaited here, not on a blocked runtime thread.
                            while self.read_log() {}
                            self.pipeline.metrics_to_end(Utc::now()).await;
                        }
                    }
                    self.internal(internal)
                }
                _ = self.pipeline.changed(), if self.reading() => {
                    self.read_log();
                }
                _ = sleep_until_opt(deadline) => {
                    // Time-based progress moves with the clock: refresh it for the status update.
                    self.send_progress();
                    self.step(Event::Tick);
                }
                _ = sleep_until_opt(stall_at) => self.check_stall(),
                _ = sleep_until_opt(store_retry_at) => self.retry_store(false),
                _ = sleep_until_opt(idle_at) => {
                    self.last_line_at = None;
                    for event in self.pipeline.idle() {
                        self.step(event);
                    }
                    self.save_follow(true);
                }
            }
        }
        self.save_follow(true);
        self.finish_store().await
    }

    /// The log is read except while a process is being started: what it writes then is read
    /// right after the engine knows the process (so its incidents belong to its attempt).
    fn reading(&self) -> bool {
        !self.machine.awaiting_process()
    }

    fn inbound(&mut self, i: Inbound) {
        let mut command = i.command;
        // Decisions that a review binds see the code as it is now.
        let binds = matches!(
            command,
            Command::Validate { .. }
                | Command::Decide {
                    decision: Decision::Restart | Decision::Approve | Decision::Reject,
                    ..
                }
        );
        let code = if binds && self.machine.has_fixes() {
            self.snapshot().ok()
        } else {
            None
        };
        if let Command::SubmitFix {
            summary,
            evidence: None,
        } = &command
        {
            match self.fix_evidence() {
                Ok(e) => {
                    command = Command::SubmitFix {
                        summary: summary.clone(),
                        evidence: Some(Box::new(e)),
                    }
                }
                Err(why) => {
                    let _ = i.reply.send(vec![Reply {
                        to: i.by,
                        accepted: false,
                        text: format!("cannot compute the changes of {}: {why}", self.spec.engine.job),
                    }]);
                    return;
                }
            }
        }
        let replies = self.step(Event::Command {
            command,
            by: i.by,
            code,
        });
        let _ = i.reply.send(replies);
    }

    fn internal(&mut self, msg: Internal) {
        match msg {
            Internal::Spawned {
                attempt,
                handle,
                checkpoint,
                baseline,
            } => {
                let pid = handle.id();
                debug!(job = %self.spec.engine.job, attempt, %pid, "spawned");
                let previous_log = handle.moved_log();
                self.watch_exit(handle.clone());
                self.pipeline.set_writer(handle.local_pid());
                self.handle = Some(handle);
                self.pipeline.new_attempt(Utc::now());
                let new_run = self.machine.starting_new_run();
                self.step(Event::Spawned {
                    pid,
                    checkpoint,
                    previous_log,
                });
                if new_run {
                    if let Some(snapshot) = baseline {
                        self.step(Event::Baseline { snapshot });
                    }
                }
                if let Some(h) = self.handle.clone() {
                    self.watch_scheduler(&h);
                }
                self.read_log();
            }
            Internal::Scheduler { pid, event } => {
                if self.handle.as_ref().is_some_and(|h| h.id() == pid) {
                    self.step(event);
                }
            }
            Internal::SpawnFailed { error } => {
                self.step(Event::SpawnFailed { error });
            }
            Internal::Exited {
                pid,
                outcome,
                lingering,
            } => {
                if self.handle.as_ref().is_some_and(|h| h.id() != pid) {
                    return; // a stale waiter from an earlier attempt
                }
                self.handle = None;
                self.pipeline.process_ended();
                self.pipeline.set_writer(None);
                // Everything written before the exit is read and judged first (the whole
                // backlog, past the per-read budget), so the report carries the traceback
                // that explains the exit and the completion report every error.
                while self.read_log() {}
                // A process trainwatch stopped (a kill, a restart) did not fail by itself:
                // its SIGTERM is no "stopped from outside" incident.
                let ours = self
                    .machine
                    .under_way()
                    .is_some_and(|u| matches!(u.phase, Phase::Stopping { .. } | Phase::Restarting { .. }));
                for event in self.pipeline.finish((!ours).then_some(outcome), Utc::now()) {
                    self.step(event);
                }
                if !ours && !lingering.is_empty() {
                    let event = self.pipeline.executor_incident(lingering_incident(&lingering));
                    self.step(event);
                }
                // The completion report shows the final figures (convergence, last step).
                self.send_progress();
                let outputs = if outcome.success() {
                    self.outputs()
                } else {
                    Vec::new()
                };
                self.step(Event::Exited { outcome, outputs });
            }
        }
    }

    fn outputs(&self) -> Vec<OutputFile> {
        self.spec
            .output_files()
            .into_iter()
            .map(|path| {
                let size = std::fs::metadata(&path)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| m.len());
                OutputFile { path, size }
            })
            .collect()
    }

    /// Read what the log gained through the pipeline and tell the engine. Returns true when
    /// the read stopped at its budget with more of the log waiting.
    fn read_log(&mut self) -> bool {
        let read = self.pipeline.read(Utc::now());
        if read.activity {
            self.last_line_at = Some(Instant::now());
            self.follow_dirty = true;
        }
        for event in read.events {
            self.step(event);
        }
        if read.metrics {
            self.send_progress();
        }
        self.save_follow(false);
        read.more
    }

    /// Progress and convergence as the pipeline measures them now, for the engine.
    fn send_progress(&mut self) {
        let now = Utc::now();
        let Some(elapsed) = self.machine.attempt_elapsed(now) else {
            return;
        };
        let event = self
            .pipeline
            .progress(now, elapsed, self.spec.engine.expected, self.spec.engine.max);
        self.step(event);
    }

    fn next_stall_check(&self) -> Option<Instant> {
        Some(self.stall_checked_at + self.pipeline.stall_check_every()?)
    }

    /// Tell the engine what the stall watch measures now; it warns once per episode.
    fn check_stall(&mut self) {
        self.stall_checked_at = Instant::now();
        if self.handle.is_none() {
            return;
        }
        if let Some(event) = self.pipeline.stall_check(Utc::now()) {
            self.step(event);
        }
    }

    fn save_follow(&mut self, force: bool) {
        if !self.follow_dirty || (!force && self.follow_saved_at.elapsed() < FOLLOW_SAVE_EVERY) {
            return;
        }
        // A step with no facts: only the state and the log position are written.
        self.persist_step(Utc::now(), &[], Vec::new());
    }

    /// Run one event through the engine and carry out its actions. Returns the replies
    /// meant for whoever sent a command.
    fn step(&mut self, event: Event) -> Vec<Reply> {
        let quiet = matches!(
            event,
            Event::LogActivity { .. } | Event::Progress { .. } | Event::Stalled { .. } | Event::StallEnded
        );
        let at = Utc::now();
        let mut actions = self.machine.handle(Input { at, event });
        if quiet && actions.is_empty() {
            return Vec::new();
        }
        for a in actions.iter_mut() {
            if let Action::Post(m) = a {
                self.attach_chart(m);
            }
        }
        let outgoing: Vec<Outgoing> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Post(m) => Some(Outgoing::Post(m.clone())),
                Action::Update(m) => Some(Outgoing::Update(m.clone())),
                Action::Resolve { run, key, note } => Some(Outgoing::Resolve {
                    job: self.spec.engine.job.clone(),
                    run: *run,
                    key: *key,
                    note: note.clone(),
                }),
                _ => None,
            })
            .collect();
        let mut outbox = Vec::new();
        let mut direct = Vec::new();
        for o in outgoing {
            match self.chat.to_outbox(&o) {
                Some(item) => outbox.push(item),
                None => direct.push(o),
            }
        }
        let queued = !outbox.is_empty();
        // The run goes on whatever the store does: a step it refuses is held and retried.
        self.persist_step(at, &actions, outbox);
        if queued {
            self.chat.wake();
        }
        for o in &direct {
            self.chat.deliver(o);
        }
        let mut replies = Vec::new();
        for action in actions {
            match action {
                Action::Reply(r) => replies.push(r),
                Action::Spawn {
                    run,
                    attempt,
                    append,
                    resume,
                } => self.spawn(run, attempt, append, resume),
                Action::Kill => self.kill(),
                Action::ExtendLimit { by } => self.extend_limit(by),
                Action::RunEnded { run, success } => {
                    let _ = self.ended.send(RunEnd {
                        job: self.spec.engine.job.clone(),
                        run,
                        success,
                    });
                }
                Action::Post(_) | Action::Update(_) | Action::Resolve { .. } | Action::Record(_) => {}
            }
        }
        replies
    }

    fn spawn(&mut self, run: RunId, attempt: u32, append: bool, resume: bool) {
        let mut baseline = None;
        if !append {
            // A new run: a fresh log and fresh metrics. A restart keeps them: it resumes the
            // same training.
            self.pipeline.new_run();
            // What fixes will be compared against: the code as the process starts (its
            // files hashed now, the commit looked up while the process starts).
            baseline = match self.snapshot_without_git() {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!(job = %self.spec.engine.job, error = %e, "recording the code at run start");
                    None
                }
            };
        }
        let mut argv = self.spec.engine.argv.clone();
        let mut checkpoint = None;
        if resume {
            if let (Some(glob), Some(resume_argv)) = (&self.spec.checkpoint, &self.spec.resume_argv) {
                match exec::resolve_resume(glob, resume_argv) {
                    Ok(Some((ckpt, a))) => {
                        checkpoint = Some(ckpt);
                        argv = a;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        warn!(job = %self.spec.engine.job, error = %e, "looking for a checkpoint; starting from scratch")
                    }
                }
            }
        }
        let state_dir = self.attempt_dir(run, attempt);
        let tx = self.internal_tx.clone();
        let start = match self.start_of(argv, append, state_dir) {
            Ok(start) => start,
            Err(error) => {
                let _ = tx.send(Internal::SpawnFailed { error });
                return;
            }
        };
        let workdir = self.spec.workdir.clone();
        tokio::spawn(async move {
            // `git rev-parse` and the like need not delay the job: they run beside its start.
            let git = baseline.map(|mut snapshot| {
                tokio::task::spawn_blocking(move || {
                    review::add_git(&mut snapshot, &workdir);
                    snapshot
                })
            });
            let started = start.run().await;
            let baseline = match git {
                Some(task) => task.await.ok(),
                None => None,
            };
            let msg = match started {
                Ok(handle) => Internal::Spawned {
                    attempt,
                    handle: Arc::new(handle),
                    checkpoint,
                    baseline,
                },
                Err(e) => Internal::SpawnFailed { error: e.to_string() },
            };
            let _ = tx.send(msg);
        });
    }

    /// How this job's executor starts an attempt running `argv`.
    fn start_of(&self, argv: Vec<String>, append: bool, state_dir: PathBuf) -> Result<Start, String> {
        if let Executor::Slurm(_) = &self.spec.executor {
            let watcher = self.slurm.clone().ok_or_else(|| {
                "this supervisor has no Slurm poller (a bug: one is made whenever a job runs on Slurm)"
                    .to_string()
            })?;
            // One script per job beside the store, written again at each submission (sbatch
            // keeps its own copy of what it ran), where `check-config` shows it.
            let script = {
                let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                crate::exec::slurm::script::script_path(store.path(), self.spec.engine.job.as_str())
            };
            let job = self
                .spec
                .slurm_submission(&script)
                .map(|sub| crate::exec::slurm::Submission { argv: &argv, ..sub }.prepare())
                .ok_or_else(|| "not a Slurm job".to_string())?;
            return Ok(Start::Slurm {
                watcher,
                job,
                state_dir,
                append,
            });
        }
        Ok(Start::Local(SpawnSpec {
            argv,
            workdir: self.spec.workdir.clone(),
            env: self
                .spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            log: self.spec.engine.log.clone(),
            append,
            state_dir,
            shim_program: Some(self.shim.clone()),
            kill_grace: self.spec.kill_grace,
            cgroup: true,
            move_into_cgroup: false,
        }))
    }

    /// What an attempt's state folder says of its process, for this job's executor.
    fn adopt(&self, state_dir: &std::path::Path) -> Result<Found<Process>, exec::ExecError> {
        if let Executor::Slurm(_) = &self.spec.executor {
            let Some(watcher) = &self.slurm else {
                return Ok(Found::Nothing);
            };
            // Running or ended while we were away: its status says, and waiting on it
            // reports the end once.
            return Ok(match exec::slurm::job::adopt(watcher, state_dir)? {
                Some(job) => Found::Running(Process::Slurm(job)),
                None => Found::Nothing,
            });
        }
        Ok(match exec::adopt(state_dir)? {
            Some(Adopted::Running(h)) => Found::Running(Process::Local(h)),
            Some(Adopted::Ended(outcome)) => Found::Ended(outcome),
            None => Found::Nothing,
        })
    }

    /// Status updates and the completion report carry the metrics chart, written under the
    /// run's folder; nothing is attached while no charted metric has a value.
    fn attach_chart(&self, m: &mut Message) {
        let name = match (&m.body, m.key) {
            (Body::StatusUpdate { .. }, MessageKey::Status(n)) => format!("status-{n}.png"),
            (Body::Completed { .. }, _) => "final.png".to_string(),
            _ => return,
        };
        let title = format!("{} — run {}", self.spec.engine.job, m.run);
        let png = match self.pipeline.chart(&title) {
            Ok(png) => png,
            Err(crate::chart::ChartError::NoData) => return,
            Err(e) => {
                warn!(job = %self.spec.engine.job, error = %e, "rendering the metrics chart");
                return;
            }
        };
        let dir = self
            .state_root
            .join(self.spec.engine.job.as_str())
            .join(format!("run-{}", m.run.0))
            .join("charts");
        let path = dir.join(name);
        match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, png)) {
            Ok(()) => m.attachments.push(path),
            Err(e) => {
                warn!(job = %self.spec.engine.job, error = %e, path = %path.display(), "writing the metrics chart")
            }
        }
    }

    fn watch_exit(&self, handle: Arc<Process>) {
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let outcome = handle.wait().await;
            let _ = tx.send(Internal::Exited {
                pid: handle.id(),
                outcome,
                lingering: handle.lingering(),
            });
        });
    }

    fn kill(&self) {
        let Some(handle) = self.handle.clone() else { return };
        let grace = self.spec.kill_grace;
        let job = self.spec.engine.job.clone();
        tokio::spawn(async move {
            if let Err(e) = handle.kill(grace).await {
                warn!(%job, error = %e, "killing the job");
            }
        });
    }
}

/// Processes left running by a main process that ended by itself: the shim ends them (the
/// policy in `exec::shim`), and the team hears of it, since the job did not clean up after itself.
fn lingering_incident(pids: &[u32]) -> crate::model::Incident {
    let list = pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    crate::model::Incident {
        category: crate::model::Category::Implementation,
        severity: crate::model::Severity::Warning,
        line: 0,
        text: format!(
            "{} process(es) of the job were still running when its main process ended (PID {list}): \
             trainwatch ended them (SIGTERM, then SIGKILL after the kill grace)",
            pids.len()
        ),
        excerpt: Vec::new(),
        count: 1,
        reason: "the job left processes running after its main process ended (implementation)".to_string(),
    }
}

/// How an attempt is started, made ready on the job's task and run on a task of its own.
enum Start {
    Local(SpawnSpec),
    Slurm {
        watcher: SlurmWatcher,
        job: crate::exec::slurm::Prepared,
        state_dir: PathBuf,
        append: bool,
    },
}

impl Start {
    async fn run(self) -> Result<Process, exec::ExecError> {
        match self {
            Start::Local(spec) => exec::spawn(&spec).await.map(Process::Local),
            Start::Slurm {
                watcher,
                job,
                state_dir,
                append,
            } => exec::slurm::job::submit(&watcher, &job, &state_dir, append)
                .await
                .map(Process::Slurm),
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// A wall-clock deadline as a tokio instant (at least "now").
fn instant_at(at: DateTime<Utc>) -> Instant {
    let now = Utc::now();
    let wait = (at - now).to_std().unwrap_or_default();
    Instant::now() + wait
}

//! One job's task: owns its engine, follows its log through the detectors, holds its
//! process handle, and carries out the engine's actions. Everything the engine decides is
//! committed to the store before it is shown, so a crash of trainwatch loses nothing and a
//! restart re-adopts the job where it was.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::chat::{ChatSink, Inbound, Outgoing};
use crate::config::JobSpec;
use crate::engine::{
    Action, Command, Decision, Event, FixEvidence, Input, JobMachine, JobSettings, OutputFile, Phase, Reply,
};
use crate::exec::{self, Adopted, JobHandle, SpawnSpec};
use crate::gate;
use crate::model::{ExitOutcome, JobName, RunId};
use crate::store::{OutboxItem, Store};
use crate::watch::detect::{DetectConfig, Detector, Finding};
use crate::watch::follower::{display_segment, FollowState, Follower};

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
        handle: Arc<JobHandle>,
        checkpoint: Option<PathBuf>,
    },
    SpawnFailed {
        error: String,
    },
    Exited {
        pid: u32,
        outcome: ExitOutcome,
    },
}

pub(crate) struct JobRuntime {
    spec: JobSpec,
    machine: JobMachine,
    store: Arc<Mutex<Store>>,
    chat: Arc<dyn ChatSink>,
    follower: Follower,
    detector: Detector,
    /// Distinguishes detectors across attempts so incident keys never collide.
    detector_gen: u64,
    handle: Option<Arc<JobHandle>>,
    state_root: PathBuf,
    shim: PathBuf,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    ended: mpsc::UnboundedSender<RunEnd>,
    last_line_at: Option<Instant>,
    /// The code as a new run's process is started (what its fixes are compared against).
    baseline: Option<gate::Snapshot>,
    follow_saved_at: Instant,
    follow_dirty: bool,
}

pub(crate) struct JobRuntimeArgs {
    pub spec: JobSpec,
    pub unattended: bool,
    pub store: Arc<Mutex<Store>>,
    pub chat: Arc<dyn ChatSink>,
    pub state_root: PathBuf,
    pub shim: PathBuf,
    pub ended: mpsc::UnboundedSender<RunEnd>,
}

pub(crate) fn settings_of(spec: &JobSpec, unattended: bool) -> JobSettings {
    JobSettings {
        job: spec.name.clone(),
        argv: spec.argv.clone(),
        log: spec.log.clone(),
        expected: spec.expected,
        max: spec.max,
        status_interval: spec.status_interval,
        on_error: spec.on_error,
        unattended,
        approval_ttl: spec.approval_ttl,
    }
}

fn detect_config(spec: &JobSpec) -> DetectConfig {
    DetectConfig {
        rhat_threshold: spec.detect.rhat_threshold,
        extra: spec.detect.extra.clone(),
        ignore: spec.detect.ignore.clone(),
    }
}

impl JobRuntime {
    /// Restore the job from the store (or start blank) and re-adopt a process that was
    /// running when trainwatch last stopped.
    pub(crate) fn new(args: JobRuntimeArgs) -> Result<Self, crate::store::StoreError> {
        let settings = settings_of(&args.spec, args.unattended);
        let saved = args
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .load_job(&args.spec.name)?;
        let (machine, follow) = match saved {
            Some((state, follow)) => {
                let follow = follow
                    .and_then(|f| serde_json::from_value::<FollowState>(f).ok())
                    .unwrap_or_default();
                (JobMachine::restore(settings, state), follow)
            }
            None => (JobMachine::new(settings), FollowState::default()),
        };
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let detector = Detector::new(detect_config(&args.spec));
        Ok(Self {
            follower: Follower::new(args.spec.log.clone(), follow),
            detector,
            detector_gen: 0,
            machine,
            store: args.store,
            chat: args.chat,
            handle: None,
            state_root: args.state_root,
            shim: args.shim,
            internal_tx,
            internal_rx,
            ended: args.ended,
            spec: args.spec,
            last_line_at: None,
            baseline: None,
            follow_saved_at: Instant::now(),
            follow_dirty: false,
        })
    }

    pub(crate) fn is_active(&self) -> bool {
        self.machine.is_active()
    }

    fn attempt_dir(&self, run: RunId, attempt: u32) -> PathBuf {
        self.state_root
            .join(self.spec.name.as_str())
            .join(format!("run-{}", run.0))
            .join(format!("attempt-{attempt}"))
    }

    /// Pick up a run that was under way when trainwatch stopped.
    fn readopt(&mut self) {
        let Some(run) = self.machine.run().cloned() else {
            return;
        };
        if run.phase.is_over() {
            return;
        }
        info!(job = %self.spec.name, run = run.id.0, phase = ?run.phase, "re-adopting");
        match run.phase {
            Phase::Starting | Phase::Restarting => {
                let next = self.attempt_dir(run.id, run.attempt + 1);
                match exec::adopt(&next) {
                    Ok(Some(adopted)) => self.adopt_new_attempt(run.attempt + 1, adopted),
                    _ => {
                        // The new process never started: if the old one still runs (a restart
                        // was killing it), finish the kill; otherwise start it now.
                        let old = self.attempt_dir(run.id, run.attempt);
                        match (run.phase, run.alive, exec::adopt(&old)) {
                            (Phase::Restarting, true, Ok(Some(Adopted::Running(h)))) => {
                                let h = Arc::new(h);
                                self.watch_exit(h.clone());
                                self.handle = Some(h);
                                self.kill();
                            }
                            (Phase::Restarting, true, Ok(Some(Adopted::Ended(outcome)))) => {
                                let pid = run.pid.unwrap_or_default();
                                let _ = self.internal_tx.send(Internal::Exited { pid, outcome });
                            }
                            _ => {
                                let append = run.phase == Phase::Restarting;
                                self.spawn(run.id, run.attempt + 1, append, append);
                            }
                        }
                    }
                }
            }
            _ if run.alive => {
                let dir = self.attempt_dir(run.id, run.attempt);
                let pid = run.pid.unwrap_or_default();
                match exec::adopt(&dir) {
                    Ok(Some(Adopted::Running(h))) => {
                        let h = Arc::new(h);
                        self.watch_exit(h.clone());
                        self.handle = Some(h);
                        if run.phase == Phase::Stopping {
                            self.kill();
                        }
                    }
                    Ok(Some(Adopted::Ended(outcome))) => {
                        let _ = self.internal_tx.send(Internal::Exited { pid, outcome });
                    }
                    Ok(None) | Err(_) => {
                        let _ = self.internal_tx.send(Internal::Exited {
                            pid,
                            outcome: ExitOutcome::Unknown,
                        });
                    }
                }
            }
            _ => {}
        }
    }

    fn adopt_new_attempt(&mut self, attempt: u32, adopted: Adopted) {
        match adopted {
            Adopted::Running(h) => {
                let h = Arc::new(h);
                let _ = self.internal_tx.send(Internal::Spawned {
                    attempt,
                    handle: h,
                    checkpoint: None,
                });
            }
            Adopted::Ended(outcome) => {
                // It started and ended while we were away: record both (its PID is not kept
                // once it has ended; 0 stands for "unknown").
                let pid = 0;
                self.step(Event::Spawned {
                    pid,
                    checkpoint: None,
                    previous_log: None,
                });
                let _ = self.internal_tx.send(Internal::Exited { pid, outcome });
            }
        }
    }

    /// The job's task: runs until the supervisor drops its sender.
    pub(crate) async fn run(mut self, mut inbox: mpsc::Receiver<JobMsg>) {
        self.readopt();
        // Catch up on what the log gained while we were away.
        self.read_log();
        loop {
            let deadline = self.machine.next_deadline().map(instant_at);
            let idle_at = self.last_line_at.map(|t| t + IDLE_SETTLE);
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
                Some(internal) = self.internal_rx.recv() => self.internal(internal),
                _ = self.follower.changed(), if self.reading() => self.read_log(),
                _ = sleep_until_opt(deadline) => {
                    self.step(Event::Tick);
                }
                _ = sleep_until_opt(idle_at) => {
                    self.last_line_at = None;
                    let findings = self.detector.idle();
                    self.findings(findings);
                    self.save_follow(true);
                }
            }
        }
        self.save_follow(true);
    }

    /// The log is read except while a process is being started: what it writes then is read
    /// right after the engine knows the process (so its incidents belong to its attempt).
    fn reading(&self) -> bool {
        !self
            .machine
            .run()
            .is_some_and(|r| matches!(r.phase, Phase::Starting | Phase::Restarting) && !r.alive)
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
        let code = if binds && self.machine.run().is_some_and(|r| !r.fixes.is_empty()) {
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
                        text: format!("cannot compute the changes of {}: {why}", self.spec.name),
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

    /// The design expectations bound to this job.
    fn design(&self) -> &[crate::gate::DesignParam] {
        &self.spec.design
    }

    /// Files a fix summary covers: the files named in argv, the configured globs, the
    /// design's sources.
    fn watched(&self) -> Vec<String> {
        let mut w = gate::watch_from_argv(&self.spec.workdir, &self.spec.argv);
        w.extend(self.spec.watch.iter().cloned());
        w
    }

    fn snapshot(&self) -> Result<gate::Snapshot, gate::GateError> {
        gate::take_snapshot(&self.spec.workdir, &self.watched(), self.design())
    }

    /// The CHANGES SUMMARY and comparison table of the code as it is now, against the run's start.
    fn fix_evidence(&self) -> Result<FixEvidence, String> {
        let run = self
            .machine
            .run()
            .filter(|r| !r.phase.is_over())
            .ok_or("no run is under way")?;
        let baseline = run
            .baseline
            .clone()
            .ok_or("the code was not recorded when this run started")?;
        let now = self.snapshot().map_err(|e| e.to_string())?;
        let changes = gate::changes(&baseline, &now, self.design(), &self.spec.workdir);
        let comparison = gate::compare(self.design(), &now);
        Ok(FixEvidence {
            changes,
            comparison,
            reviewed: now,
        })
    }

    fn internal(&mut self, msg: Internal) {
        match msg {
            Internal::Spawned {
                attempt,
                handle,
                checkpoint,
            } => {
                debug!(job = %self.spec.name, attempt, pid = handle.pid, "spawned");
                let previous_log = handle.moved_log.clone();
                self.watch_exit(handle.clone());
                let pid = handle.pid;
                self.handle = Some(handle);
                let new_run = self.machine.run().is_some_and(|r| r.phase == Phase::Starting);
                self.step(Event::Spawned {
                    pid,
                    checkpoint,
                    previous_log,
                });
                if new_run {
                    if let Some(snapshot) = self.baseline.take() {
                        self.step(Event::Baseline { snapshot });
                    }
                }
                self.read_log();
            }
            Internal::SpawnFailed { error } => {
                self.step(Event::SpawnFailed { error });
            }
            Internal::Exited { pid, outcome } => {
                if self.handle.as_ref().is_some_and(|h| h.pid != pid) {
                    return; // a stale waiter from an earlier attempt
                }
                self.handle = None;
                // Everything written before the exit is read and judged first, so the report
                // carries the traceback that explains the exit.
                self.read_log();
                let mut findings = Vec::new();
                let detector = &mut self.detector;
                self.follower.flush_partial(|line| {
                    findings.extend(detector.push_line(line.no, &line.text));
                });
                findings.extend(self.detector.finish(Some(outcome)));
                self.findings(findings);
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

    /// Read what the log gained; feed the detectors; tell the engine.
    fn read_log(&mut self) {
        let mut findings = Vec::new();
        let mut last: Option<(u64, String)> = None;
        let detector = &mut self.detector;
        let res = self.follower.read_available_with(|line| {
            findings.extend(detector.push_line(line.no, line.text));
            let shown = display_segment(line.text);
            if !shown.trim().is_empty() {
                last = Some((line.no, shown.to_string()));
            }
        });
        if let Err(e) = res {
            warn!(job = %self.spec.name, error = %e, "reading the log");
        }
        if last.is_some() || !findings.is_empty() {
            self.last_line_at = Some(Instant::now());
            self.follow_dirty = true;
        }
        self.findings(findings);
        if let Some((line_no, last_line)) = last {
            self.step(Event::LogActivity { last_line, line_no });
        }
        self.save_follow(false);
    }

    fn findings(&mut self, findings: Vec<Finding>) {
        // A burst updates the same incident many times in one read: only the newest matters.
        let mut updates: Vec<(u64, crate::model::Incident)> = Vec::new();
        for f in findings {
            match f {
                Finding::New { index, incident } => {
                    let key = self.key(index);
                    for (k, inc) in updates.drain(..) {
                        self.step(Event::IncidentUpdated {
                            key: k,
                            incident: inc,
                        });
                    }
                    self.step(Event::Incident { key, incident });
                }
                Finding::Updated { index, incident } => {
                    let key = self.key(index);
                    match updates.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = incident,
                        None => updates.push((key, incident)),
                    }
                }
            }
        }
        for (key, incident) in updates {
            self.step(Event::IncidentUpdated { key, incident });
        }
    }

    fn key(&self, index: usize) -> u64 {
        (self.detector_gen << 32) | index as u64
    }

    fn save_follow(&mut self, force: bool) {
        if !self.follow_dirty || (!force && self.follow_saved_at.elapsed() < FOLLOW_SAVE_EVERY) {
            return;
        }
        let Ok(v) = serde_json::to_value(self.follower.state()) else {
            return;
        };
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = store.save_follow(&self.spec.name, &v) {
            warn!(job = %self.spec.name, error = %e, "saving the log position");
        }
        self.follow_saved_at = Instant::now();
        self.follow_dirty = false;
    }

    /// Run one event through the engine and carry out its actions. Returns the replies
    /// meant for whoever sent a command.
    fn step(&mut self, event: Event) -> Vec<Reply> {
        let quiet = matches!(event, Event::LogActivity { .. } | Event::Progress { .. });
        let at = Utc::now();
        let actions = self.machine.handle(Input { at, event });
        if quiet && actions.is_empty() {
            return Vec::new();
        }
        let outgoing: Vec<Outgoing> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Post(m) => Some(Outgoing::Post(m.clone())),
                Action::Update(m) => Some(Outgoing::Update(m.clone())),
                Action::Resolve { run, key, note } => Some(Outgoing::Resolve {
                    job: self.spec.name.clone(),
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
                Some((channel, payload)) => outbox.push(OutboxItem::new(channel, &o, payload)),
                None => direct.push(o),
            }
        }
        let follow = serde_json::to_value(self.follower.state()).ok();
        {
            let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = store.commit_step(
                &self.spec.name,
                at,
                &actions,
                &self.machine.state,
                follow.as_ref(),
                &outbox,
            ) {
                // The run goes on; losing a history row is better than stopping the watch.
                warn!(job = %self.spec.name, error = %e, "could not save to the store");
            } else {
                self.follow_saved_at = Instant::now();
                self.follow_dirty = false;
            }
        }
        if !outbox.is_empty() {
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
                Action::RunEnded { run, success } => {
                    let _ = self.ended.send(RunEnd {
                        job: self.spec.name.clone(),
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
        if !append {
            // A new run: a fresh log (the executor moves an old one aside) read from its start.
            self.follower = Follower::new(self.spec.log.clone(), FollowState::default());
            // What fixes will be compared against: the code as the process starts.
            self.baseline = match self.snapshot() {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!(job = %self.spec.name, error = %e, "recording the code at run start");
                    None
                }
            };
        }
        self.detector = Detector::new(detect_config(&self.spec));
        self.detector_gen += 1;
        let mut argv = self.spec.argv.clone();
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
                        warn!(job = %self.spec.name, error = %e, "looking for a checkpoint; starting from scratch")
                    }
                }
            }
        }
        let spec = SpawnSpec {
            argv,
            workdir: self.spec.workdir.clone(),
            env: self
                .spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            log: self.spec.log.clone(),
            append,
            state_dir: self.attempt_dir(run, attempt),
            shim_program: Some(self.shim.clone()),
        };
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let msg = match exec::spawn(&spec).await {
                Ok(handle) => Internal::Spawned {
                    attempt,
                    handle: Arc::new(handle),
                    checkpoint,
                },
                Err(e) => Internal::SpawnFailed { error: e.to_string() },
            };
            let _ = tx.send(msg);
        });
    }

    fn watch_exit(&self, handle: Arc<JobHandle>) {
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let outcome = handle.wait().await;
            let _ = tx.send(Internal::Exited {
                pid: handle.pid,
                outcome,
            });
        });
    }

    fn kill(&self) {
        let Some(handle) = self.handle.clone() else { return };
        let grace = self.spec.kill_grace;
        let job = self.spec.name.clone();
        tokio::spawn(async move {
            if let Err(e) = handle.kill(grace).await {
                warn!(%job, error = %e, "killing the job");
            }
        });
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

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
    Action, Body, Command, Decision, Event, FixEvidence, Input, JobMachine, JobSettings, Message, MessageKey,
    OutputFile, Phase, Reply,
};
use crate::exec::{self, Adopted, JobHandle, SpawnSpec};
use crate::model::{ExitOutcome, JobName, RunId};
use crate::review;
use crate::store::{OutboxItem, Store};
use crate::watch::detect::{DetectConfig, Detector, Finding};
use crate::watch::follower::{display_segment, FollowState, Follower};
use crate::watch::metrics::{HealthSignal, MetricsTracker};
use crate::watch::progress::StallDetector;

use crate::watch::metric_lines::{self as metrics_feed, LineGate};

/// How long the log must stay quiet before pending detector state is settled.
const IDLE_SETTLE: Duration = Duration::from_secs(2);
/// How often the log position is saved while the log grows without any event worth a commit.
const FOLLOW_SAVE_EVERY: Duration = Duration::from_secs(5);
/// Stall checks run this often relative to the stall timeout, within the bounds below.
const STALL_CHECKS_PER_TIMEOUT: u32 = 4;
const STALL_CHECK_MIN: Duration = Duration::from_millis(50);
const STALL_CHECK_MAX: Duration = Duration::from_secs(5);
/// Incident keys of health signals (loss NaN, diverging) have the top bit set; the
/// detector's keys (`gen << 32 | index`) and exit keys (`u64::MAX - attempt`) never do or
/// stay far above.
const HEALTH_KEY_BIT: u64 = 1 << 63;

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
    baseline: Option<review::Snapshot>,
    follow_saved_at: Instant,
    follow_dirty: bool,
    /// Metrics of the current run, fed the lines the gate lets through.
    tracker: MetricsTracker,
    gate: LineGate,
    /// Watches for a hung process (None: no stall timeout, or no process).
    stall: Option<StallDetector>,
    stall_checked_at: Instant,
    health_seq: u64,
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
        let metrics = metrics_feed::metrics_config(&args.spec);
        Ok(Self {
            gate: LineGate::new(&metrics),
            tracker: MetricsTracker::new(metrics),
            stall: None,
            stall_checked_at: Instant::now(),
            health_seq: 0,
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
                        } else {
                            self.stall = self.new_stall_detector();
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
            let stall_at = self.next_stall_check();
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
                _ = self.follower.changed(), if self.reading() => {
                    self.read_log();
                }
                _ = sleep_until_opt(deadline) => {
                    // Time-based progress moves with the clock: refresh it for the status update.
                    self.send_progress();
                    self.step(Event::Tick);
                }
                _ = sleep_until_opt(stall_at) => self.check_stall(),
                _ = sleep_until_opt(idle_at) => {
                    self.last_line_at = None;
                    let findings = self.detector.idle();
                    self.findings(findings, Vec::new());
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
    fn design(&self) -> &[crate::review::DesignParam] {
        &self.spec.design
    }

    /// Files a fix summary covers: the files named in argv, the configured globs, the
    /// design's sources.
    fn watched(&self) -> Vec<String> {
        let mut w = review::watch_from_argv(&self.spec.workdir, &self.spec.argv);
        w.extend(self.spec.watch.iter().cloned());
        w
    }

    fn snapshot(&self) -> Result<review::Snapshot, review::GateError> {
        review::take_snapshot(&self.spec.workdir, &self.watched(), self.design())
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
        let changes = review::changes(&baseline, &now, self.design(), &self.spec.workdir);
        let comparison = review::compare(self.design(), &now);
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
                self.stall = self.new_stall_detector();
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
                self.stall = None;
                // Everything written before the exit is read and judged first (the whole
                // backlog, past the per-read budget), so the report carries the traceback
                // that explains the exit and the completion report every error.
                while self.read_log() {}
                let mut findings = Vec::new();
                let mut signals = Vec::new();
                let now = Utc::now();
                let (detector, tracker, gate) = (&mut self.detector, &mut self.tracker, &mut self.gate);
                self.follower.flush_partial(|line| {
                    coalesce(&mut findings, detector.push_line(line.no, &line.text));
                    if gate.wants(&line.text) {
                        signals.extend(
                            tracker
                                .push_line(&line.text, now)
                                .into_iter()
                                .map(|s| (line.no, s)),
                        );
                    }
                });
                findings.extend(self.detector.finish(Some(outcome)));
                self.findings(findings, signals);
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

    /// Read what the log gained; feed the detectors and the metrics; tell the engine.
    /// Returns true when the read stopped at its budget with more of the log waiting.
    fn read_log(&mut self) -> bool {
        let mut findings = Vec::new();
        let mut signals: Vec<(u64, HealthSignal)> = Vec::new();
        let mut last_no: Option<u64> = None;
        let mut last_text = String::new();
        let mut fed = false;
        // One clock reading per batch: the lines of a batch arrived together.
        let now = Utc::now();
        let (detector, tracker, gate) = (&mut self.detector, &mut self.tracker, &mut self.gate);
        let res = self.follower.read_available_with(|line| {
            coalesce(&mut findings, detector.push_line(line.no, line.text));
            if gate.wants(line.text) {
                fed = true;
                signals.extend(
                    tracker
                        .push_line(line.text, now)
                        .into_iter()
                        .map(|s| (line.no, s)),
                );
            }
            let shown = display_segment(line.text);
            if !shown.trim().is_empty() {
                // A short copy into a reused buffer (no allocation per line): the line is only
                // lent for the duration of this callback.
                last_text.clear();
                last_text.push_str(shown);
                last_no = Some(line.no);
            }
        });
        let more = match res {
            Ok(stats) => stats.more,
            Err(e) => {
                warn!(job = %self.spec.name, error = %e, "reading the log");
                false
            }
        };
        let last = last_no.map(|no| (no, last_text));
        if last.is_some() || !findings.is_empty() {
            self.last_line_at = Some(Instant::now());
            self.follow_dirty = true;
        }
        if let Some(stall) = &mut self.stall {
            if let Some((_, text)) = &last {
                stall.line_seen(now, text);
            }
            if let Some(step) = self.tracker.step() {
                stall.step_seen(now, step);
            }
        }
        self.findings(findings, signals);
        if let Some((line_no, last_line)) = last {
            self.step(Event::LogActivity { last_line, line_no });
        }
        if fed {
            self.send_progress();
        }
        self.save_follow(false);
        more
    }

    /// Progress and convergence as the tracker sees them now, for the engine.
    fn send_progress(&mut self) {
        let Some(run) = self.machine.run().filter(|r| !r.phase.is_over()) else {
            return;
        };
        let elapsed = (Utc::now() - run.attempt_started_at).to_std().unwrap_or_default();
        let snap = self.tracker.snapshot();
        let progress = metrics_feed::progress_view(
            &snap,
            self.tracker.config(),
            elapsed,
            self.spec.expected,
            self.spec.max,
        );
        let convergence = snap.convergence.as_ref().map(metrics_feed::convergence_view);
        self.step(Event::Progress {
            progress,
            convergence,
        });
    }

    fn new_stall_detector(&self) -> Option<StallDetector> {
        self.spec.stall_timeout.map(|t| StallDetector::new(t, Utc::now()))
    }

    fn next_stall_check(&self) -> Option<Instant> {
        let timeout = self.spec.stall_timeout?;
        self.stall.as_ref()?;
        let every = (timeout / STALL_CHECKS_PER_TIMEOUT).clamp(STALL_CHECK_MIN, STALL_CHECK_MAX);
        Some(self.stall_checked_at + every)
    }

    /// Tell the engine whether the process looks hung (it warns once per episode).
    fn check_stall(&mut self) {
        self.stall_checked_at = Instant::now();
        let Some(detector) = &self.stall else { return };
        let alive =
            self.handle.is_some() && self.machine.run().is_some_and(|r| r.alive && !r.phase.is_over());
        match detector.check(Utc::now(), alive) {
            Some(stall) => {
                self.step(Event::Stalled {
                    since: stall.since,
                    kind: metrics_feed::stall_kind(stall.kind),
                    last_line: stall.last_line,
                });
            }
            None => {
                if self.machine.run().is_some_and(|r| r.stall.is_some()) {
                    self.step(Event::StallEnded);
                }
            }
        }
    }

    /// Detector findings and metric health signals (with their line numbers) as incidents.
    /// A non-finite loss on a line the detector also reported is that incident (the
    /// detector's verdict stands, as `trainwatch triage` gives it), not a second one.
    fn findings(&mut self, findings: Vec<Finding>, signals: Vec<(u64, HealthSignal)>) {
        let mut own = Vec::new();
        for (line, signal) in signals {
            let seen = matches!(signal, HealthSignal::LossNonFinite { .. })
                && findings.iter().any(|f| match f {
                    Finding::New { incident, .. } | Finding::Updated { incident, .. } => {
                        incident.line == line && incident.category == crate::model::Category::Convergence
                    }
                });
            if !seen {
                own.push(health_incident(&signal, line));
            }
        }
        self.detector_findings(findings);
        for incident in own {
            self.health_seq += 1;
            let key = HEALTH_KEY_BIT | self.health_seq;
            self.step(Event::Incident { key, incident });
        }
    }

    fn detector_findings(&mut self, findings: Vec<Finding>) {
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
            // A new run: a fresh log (the executor moves an old one aside) read from its start,
            // and fresh metrics. A restart keeps them: it resumes the same training.
            self.follower = Follower::new(self.spec.log.clone(), FollowState::default());
            let metrics = metrics_feed::metrics_config(&self.spec);
            self.gate = LineGate::new(&metrics);
            self.tracker = MetricsTracker::new(metrics);
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

    /// Status updates and the completion report carry the metrics chart, written under the
    /// run's folder; nothing is attached while no charted metric has a value.
    fn attach_chart(&self, m: &mut Message) {
        let name = match (&m.body, m.key) {
            (Body::StatusUpdate { .. }, MessageKey::Status(n)) => format!("status-{n}.png"),
            (Body::Completed { .. }, _) => "final.png".to_string(),
            _ => return,
        };
        let title = format!("{} — run {}", self.spec.name, m.run);
        let png = match metrics_feed::render(&title, &self.tracker) {
            Ok(png) => png,
            Err(crate::chart::ChartError::NoData) => return,
            Err(e) => {
                warn!(job = %self.spec.name, error = %e, "rendering the metrics chart");
                return;
            }
        };
        let dir = self
            .state_root
            .join(self.spec.name.as_str())
            .join(format!("run-{}", m.run.0))
            .join("charts");
        let path = dir.join(name);
        match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, png)) {
            Ok(()) => m.attachments.push(path),
            Err(e) => {
                warn!(job = %self.spec.name, error = %e, path = %path.display(), "writing the metrics chart")
            }
        }
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

/// Add a line's findings to a batch, folding consecutive updates of one incident into the
/// newest: a burst of 100,000 identical errors in one read keeps one update, not 100,000
/// copies of the incident.
fn coalesce(batch: &mut Vec<Finding>, new: Vec<Finding>) {
    for f in new {
        if let (Finding::Updated { index, .. }, Some(Finding::Updated { index: last, .. })) =
            (&f, batch.last())
        {
            if index == last {
                *batch.last_mut().expect("checked") = f;
                continue;
            }
        }
        batch.push(f);
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

/// A health signal as an incident, with its numbers short enough to read in chat
/// (an exploding loss is 4.6e46, not 46 digits).
fn health_incident(signal: &HealthSignal, line: u64) -> crate::model::Incident {
    let mut incident = signal.to_incident(line);
    if let HealthSignal::LossDiverging {
        key,
        value,
        running_min,
    } = signal
    {
        let ratio = value / running_min;
        let ratio = if ratio < 1e4 {
            format!("{ratio:.1}")
        } else {
            format!("{ratio:.1e}")
        };
        incident.text = format!(
            "{key} is diverging: {} is {ratio}× its lowest value so far ({})",
            crate::chat::render::metric_value(*value),
            crate::chat::render::metric_value(*running_min)
        );
    }
    incident
}

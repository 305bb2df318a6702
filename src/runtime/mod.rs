//! The runtime: the supervisor that wires one engine per job to the edges.
//!
//! - this module: the router that sends each chat command to its job, and the bookkeeping
//!   that tells `trainwatch run` when every job has ended;
//! - `senders`: commands from other terminals (`trainwatch send`) on the control socket, as
//!   the login the kernel names, with the roles of this supervisor's config;
//! - `job`: one task per job — a select loop and the executor of the engine's actions;
//! - `readopt`: what to do about a run found under way at start (a pure, tested plan);
//! - `spec`: what the engine and the log pipeline get from a job's spec.
//!
//! Stopping trainwatch never stops a job: the shim holds it, and the next start re-adopts it.

mod job;
mod readopt;
mod senders;
mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use tokio::sync::mpsc;

use crate::chat::{ChatSink, Inbound};
use crate::config::{JobSpec, Roles};
use crate::control::{self, ControlError};
use crate::engine::Reply;
use crate::model::{Actor, JobName};
use crate::store::pending::Unwritten;
use crate::store::{Store, StoreError};

pub use job::RunEnd;
use job::{JobMsg, JobRuntime, JobRuntimeArgs};

#[derive(Debug, Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unknown job {0:?}")]
    UnknownJob(String),
    #[error(transparent)]
    Control(#[from] ControlError),
}

pub struct Options {
    /// No person can decide: each job's `on_error` policy does.
    pub unattended: bool,
    /// People decide in chat, except for jobs whose `on_error` is `kill` or `restart`: there
    /// the team chose to let the policy act (e.g. overnight) — `trainwatch serve`.
    pub policy_when_set: bool,
    /// Where each attempt's shim keeps its state (PID, exit status).
    pub state_root: PathBuf,
    /// The executable that runs the shim (normally trainwatch itself).
    pub shim: PathBuf,
    /// The roles of this supervisor's config: what a login sending from another terminal may
    /// do (None or empty: only this login may act).
    pub roles: Option<Roles>,
}

/// The running supervisor.
pub struct Supervisor {
    jobs: BTreeMap<JobName, mpsc::Sender<JobMsg>>,
    /// Serves `trainwatch send` on the control socket.
    senders: tokio::task::JoinHandle<()>,
    socket: PathBuf,
    ended_rx: mpsc::UnboundedReceiver<RunEnd>,
    tasks: Vec<tokio::task::JoinHandle<Option<Unwritten>>>,
    active_at_start: BTreeSet<JobName>,
}

impl Supervisor {
    /// Restore every job from the store and start its task (re-adopting running processes).
    pub fn start(
        specs: Vec<JobSpec>,
        store: Arc<Mutex<Store>>,
        chat: Arc<dyn ChatSink>,
        opts: Options,
    ) -> Result<Supervisor, SupervisorError> {
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let mut jobs = BTreeMap::new();
        let mut tasks = Vec::new();
        let mut active_at_start = BTreeSet::new();
        // One poller for all the Slurm jobs: one batched query per interval, whatever their number.
        let slurm = specs
            .iter()
            .any(|s| matches!(s.executor, crate::config::Executor::Slurm(_)))
            .then(|| {
                crate::exec::slurm::SlurmWatcher::start(
                    crate::exec::slurm::SlurmClient::new(),
                    crate::exec::slurm::watcher::DEFAULT_POLL_INTERVAL,
                )
            });
        for spec in specs {
            let name = spec.engine.job.clone();
            let unattended = opts.unattended
                || (opts.policy_when_set && spec.engine.on_error != crate::model::OnError::Wait);
            let rt = JobRuntime::new(JobRuntimeArgs {
                spec,
                unattended,
                store: store.clone(),
                chat: chat.clone(),
                state_root: opts.state_root.clone(),
                shim: opts.shim.clone(),
                slurm: slurm.clone(),
                ended: ended_tx.clone(),
            })?;
            if rt.is_active() {
                active_at_start.insert(name.clone());
            }
            let (tx, rx) = mpsc::channel(64);
            tasks.push(tokio::spawn(rt.run(rx)));
            jobs.insert(name, tx);
        }
        let socket = control::socket_path(&opts.state_root);
        let listener = control::bind(&socket)?;
        let senders = senders::spawn(listener, jobs.clone(), opts.roles);
        Ok(Supervisor {
            jobs,
            senders,
            socket,
            ended_rx,
            tasks,
            active_at_start,
        })
    }

    pub fn job_names(&self) -> Vec<JobName> {
        self.jobs.keys().cloned().collect()
    }

    /// Jobs that had a run under way when we started (re-adopted).
    pub fn readopted(&self) -> &BTreeSet<JobName> {
        &self.active_at_start
    }

    /// Start a new run of `job` unless one is already under way.
    pub async fn start_if_idle(&self, job: &JobName, by: Actor) -> Result<(), SupervisorError> {
        let tx = self
            .jobs
            .get(job)
            .ok_or_else(|| SupervisorError::UnknownJob(job.to_string()))?;
        let _ = tx.send(JobMsg::StartIfIdle(by)).await;
        Ok(())
    }

    /// Route a chat command to its job; an unknown job is answered here.
    pub async fn route(&self, inbound: Inbound) {
        match self.jobs.get(&inbound.job) {
            Some(tx) => {
                if let Err(e) = tx.send(JobMsg::Inbound(inbound)).await {
                    if let JobMsg::Inbound(i) = e.0 {
                        let _ = i.reply.send(vec![Reply {
                            to: i.by,
                            accepted: false,
                            text: "that job's supervisor has stopped".into(),
                        }]);
                    }
                }
            }
            None => {
                let names: Vec<&str> = self.jobs.keys().map(|j| j.as_str()).collect();
                let text = format!(
                    "unknown job {:?}; jobs here: {}",
                    inbound.job.as_str(),
                    names.join(", ")
                );
                let _ = inbound.reply.send(vec![Reply {
                    to: inbound.by,
                    accepted: false,
                    text,
                }]);
            }
        }
    }

    /// Serve commands and wait until each job in `watch` has ended a run; returns how each
    /// ended (true = completed). Returns early (with what is known) when `stop` resolves.
    pub async fn until_ended(
        &mut self,
        watch: &BTreeSet<JobName>,
        inbound: &mut mpsc::Receiver<Inbound>,
        stop: impl std::future::Future<Output = ()>,
    ) -> BTreeMap<JobName, bool> {
        let mut results = BTreeMap::new();
        tokio::pin!(stop);
        let mut inbound_open = true;
        while results.len() < watch.len() {
            tokio::select! {
                Some(end) = self.ended_rx.recv() => {
                    if watch.contains(&end.job) {
                        results.insert(end.job, end.success);
                    }
                }
                msg = inbound.recv(), if inbound_open => match msg {
                    Some(i) => self.route(i).await,
                    None => inbound_open = false,
                },
                _ = &mut stop => break,
            }
        }
        results
    }

    /// Serve commands until `stop` resolves (the bot's main loop).
    pub async fn serve(
        &mut self,
        inbound: &mut mpsc::Receiver<Inbound>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                msg = inbound.recv() => match msg {
                    Some(i) => self.route(i).await,
                    None => break,
                },
                // Run endings need no action here (chat already has the reports); drain them.
                Some(_) = self.ended_rx.recv() => {}
                _ = &mut stop => break,
            }
        }
    }

    /// Stop every job task (the jobs themselves keep running under their shims); what the
    /// store never took, per job that holds such writes (each task tries for a bounded time).
    pub async fn shutdown(self) -> Vec<Unwritten> {
        self.senders.abort();
        let _ = self.senders.await;
        let _ = std::fs::remove_file(&self.socket);
        drop(self.jobs);
        let mut lost = Vec::new();
        for t in self.tasks {
            if let Ok(Some(u)) = t.await {
                lost.push(u);
            }
        }
        lost
    }
}

//! One poller for every Slurm job this supervisor follows. Each followed job gets a
//! `watch` channel of its latest [`JobStatus`]; one task asks Slurm about all of them in one
//! batched call per interval ([`SlurmClient::statuses`]: one `squeue`, plus `scontrol`/`sacct`
//! only for jobs that have just ended), so the load on `slurmctld` does not grow with the
//! number of jobs. A job is dropped from the poll once it has ended or nobody listens.
//!
//! While the controller does not answer, the poll backs off ([`Backoff`], up to
//! [`MAX_BACKOFF`]) and [`Controller`] says so, with the error, until an answer comes: the
//! jobs' tasks tell the chat once, and nothing is concluded about the jobs meanwhile.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::client::{Backoff, JobStatus, SlurmClient};
use super::SlurmJobId;

/// How often the jobs' states are asked for: one `squeue` a second for all jobs, so an end is
/// seen within about a second of Slurm recording it.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between tries while the controller does not answer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Whether slurmctld answers, as the last poll found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Controller {
    #[default]
    Answering,
    NotAnswering {
        error: String,
    },
}

/// The latest status of one job: None until the first poll that includes it.
pub type StatusRx = watch::Receiver<Option<JobStatus>>;

/// A handle on the poller; cheap to clone. The poll task ends when every handle is dropped.
#[derive(Debug, Clone)]
pub struct SlurmWatcher {
    client: SlurmClient,
    follow: mpsc::UnboundedSender<(SlurmJobId, watch::Sender<Option<JobStatus>>)>,
    controller: watch::Receiver<Controller>,
}

impl SlurmWatcher {
    /// Start the poll task (on the current tokio runtime).
    pub fn start(client: SlurmClient, interval: Duration) -> SlurmWatcher {
        let (follow, rx) = mpsc::unbounded_channel();
        let (controller_tx, controller) = watch::channel(Controller::Answering);
        tokio::spawn(poll_loop(client.clone(), interval, rx, controller_tx));
        SlurmWatcher {
            client,
            follow,
            controller,
        }
    }

    /// Follow `id`: its status, updated at every poll until it has ended.
    pub fn follow(&self, id: SlurmJobId) -> StatusRx {
        let (tx, rx) = watch::channel(None);
        // The poll task lives as long as any watcher handle: it is there to receive this.
        let _ = self.follow.send((id, tx));
        rx
    }

    /// Whether the controller answers, as the last poll found.
    pub fn controller(&self) -> watch::Receiver<Controller> {
        self.controller.clone()
    }

    pub fn client(&self) -> &SlurmClient {
        &self.client
    }
}

async fn poll_loop(
    client: SlurmClient,
    interval: Duration,
    mut follow: mpsc::UnboundedReceiver<(SlurmJobId, watch::Sender<Option<JobStatus>>)>,
    controller: watch::Sender<Controller>,
) {
    let mut jobs: HashMap<SlurmJobId, Vec<watch::Sender<Option<JobStatus>>>> = HashMap::new();
    let mut backoff = Backoff::new(interval, MAX_BACKOFF);
    let mut next = Instant::now();
    let mut open = true;
    loop {
        // Wait for the next poll; a job followed anew is polled at once unless the
        // controller is being given time to recover.
        let idle = jobs.is_empty();
        if idle && !open {
            return;
        }
        tokio::select! {
            got = follow.recv(), if open => match got {
                Some((id, tx)) => {
                    jobs.entry(id).or_default().push(tx);
                    if backoff.failures() == 0 {
                        next = next.min(Instant::now());
                    }
                    continue;
                }
                None => {
                    open = false;
                    continue;
                }
            },
            _ = tokio::time::sleep_until(next), if !idle => {}
        }
        jobs.retain(|_, txs| {
            txs.retain(|tx| !tx.is_closed());
            !txs.is_empty()
        });
        if jobs.is_empty() {
            continue;
        }
        let ids: Vec<SlurmJobId> = jobs.keys().copied().collect();
        match client.statuses(&ids).await {
            Ok(statuses) => {
                for (id, status) in statuses {
                    let ended = matches!(status, JobStatus::Ended(_));
                    if let Some(txs) = jobs.get(&id) {
                        for tx in txs {
                            tx.send_replace(Some(status.clone()));
                        }
                    }
                    if ended {
                        debug!(job = %id, "slurm job ended; no longer polled");
                        jobs.remove(&id);
                    }
                }
                let (wait, recovered) = backoff.succeeded();
                if recovered {
                    controller.send_replace(Controller::Answering);
                }
                next = Instant::now() + wait;
            }
            Err(e) => {
                let (wait, first) = backoff.failed();
                if first {
                    warn!(error = %e, "slurm does not answer; retrying with back-off");
                }
                controller.send_replace(Controller::NotAnswering { error: e.to_string() });
                next = Instant::now() + wait;
            }
        }
    }
}

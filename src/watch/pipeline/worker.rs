//! The metrics tracker on a thread of its own, following the log at its own pace.
//!
//! The detector files the error report; the tracker (metrics, loss health, the step) is most
//! of the reading's cost — in a catch-up three quarters of it. So the tracker does not run on
//! the reading thread: it has its own [`Follower`] of the same log, on a thread woken by the
//! job's reads ([`MetricsWorker::poke`]), and reads to the end of the file from wherever it
//! stands. The file is its queue: nothing is buffered between the two, whatever the lag, and
//! the reader never waits for it. The thread runs at a lower priority, so while both have
//! work (a backlog) the detector and the job itself get the CPU first.
//!
//! What it finds comes back in [`Batch`]es, each with the tracker's position after it. The
//! pipeline takes a batch only once its own reading has passed the batch's lines (so that a
//! non-finite loss can be matched with the detector's incident on the same line), and saves
//! the position of the last batch it took with the engine state that holds what the batch
//! raised: after a supervisor crash the tracker resumes there and re-reads whatever it had
//! read but not handed over. Its time stamps are the reads' (`now` of the latest poke), not
//! the thread's clock, so a read's lines are stamped as they were on the reading thread.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::Metrics;
use crate::watch::follower::{FollowOptions, FollowState, Follower};
use crate::watch::metrics::{HealthSignal, MetricsConfig, MetricsTracker};

/// Bytes the worker reads per round: a batch is published after each, so this bounds how
/// much it re-reads after a crash and how stale the progress figures get in a catch-up.
const ROUND_BYTES: u64 = 4 << 20;
/// While it works through a backlog, the job is woken at most this often for the progress
/// figures alone (a batch with health signals wakes it at once).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// The worker thread's nice value (Linux): the detector and the job come first. (A process
/// already niced further stays where it is: the call fails and is ignored.)
const WORKER_NICE: i32 = 10;
/// Batches kept waiting for the reader at most (each is small; a reader that lags behind
/// the worker for this long is folded into fewer, later batches).
const MAX_BATCHES: usize = 256;

/// What the tracker made of one round of reading.
#[derive(Debug)]
pub(super) struct Batch {
    /// Health signals, with their line numbers.
    pub signals: Vec<(u64, HealthSignal)>,
    /// Lines went to the tracker.
    pub fed: bool,
    /// The tracker's step after the round.
    pub step: Option<u64>,
    /// The worker's position after the round.
    pub state: FollowState,
}

/// Requests to the worker and what it hands back, under one lock.
struct Control {
    /// Bumped by every poke; the worker reads until it has seen the latest.
    poked: u64,
    seen: u64,
    /// The time of the latest read (the stamp of the lines the worker reads now).
    now: DateTime<Utc>,
    /// A new run: start again from this position with a fresh tracker.
    reset: Option<FollowState>,
    /// The job's process changed (see [`Follower::set_writer`]).
    writer: Option<Option<u32>>,
    /// The process ended: read to the end and take the unfinished last line as a line.
    finish: bool,
    stop: bool,
    /// The worker is reading (or has a request it has not taken yet).
    busy: bool,
    batches: VecDeque<Batch>,
}

struct Shared {
    ctl: Mutex<Control>,
    /// The worker waits on it for a poke; [`MetricsWorker::settle`] for the worker to idle.
    work: Condvar,
    idle: Condvar,
    /// The tracker, locked per window by the worker and briefly by the progress figures.
    metrics: Mutex<Metrics>,
    /// Wakes the job's task when a batch is ready.
    ready: tokio::sync::Notify,
}

/// The handle the pipeline keeps; the thread stops when it is dropped.
pub(super) struct MetricsWorker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsWorker").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on the worker must not take the job down with it: the data is still whole
    // between windows.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MetricsWorker {
    /// A worker following `log` from `from`, with a fresh tracker.
    pub fn start(log: PathBuf, from: FollowState, cfg: &MetricsConfig) -> Self {
        let shared = Arc::new(Shared {
            ctl: Mutex::new(Control {
                // Read once at start: a supervisor resuming behind the reader has a backlog.
                poked: 1,
                seen: 0,
                now: Utc::now(),
                reset: None,
                writer: None,
                finish: false,
                stop: false,
                busy: true,
                batches: VecDeque::new(),
            }),
            work: Condvar::new(),
            idle: Condvar::new(),
            metrics: Mutex::new(Metrics::new(cfg)),
            ready: tokio::sync::Notify::new(),
        });
        let worker = Worker {
            shared: shared.clone(),
            follower: follower(log.clone(), from),
            log,
            cfg: cfg.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("tw-metrics".into())
            .spawn(move || worker.run())
            .map_err(|e| tracing::warn!(error = %e, "cannot start the metrics thread"))
            .ok();
        Self { shared, thread }
    }

    /// The log may have grown (a read of `now` found bytes): read it.
    pub fn poke(&self, now: DateTime<Utc>) {
        let mut c = lock(&self.shared.ctl);
        c.poked += 1;
        c.now = now;
        c.busy = true;
        self.shared.work.notify_one();
    }

    pub fn set_writer(&self, pid: Option<u32>) {
        let mut c = lock(&self.shared.ctl);
        c.writer = Some(pid);
        c.busy = true;
        self.shared.work.notify_one();
    }

    /// A new run: a fresh tracker from the start of the (new) log; what was not handed over
    /// of the old run is dropped with it.
    pub fn reset(&self) {
        let mut c = lock(&self.shared.ctl);
        c.reset = Some(FollowState::default());
        c.batches.clear();
        c.busy = true;
        self.shared.work.notify_one();
    }

    /// The process ended and the reader is at the end of its log: the worker reads to the
    /// end too and takes the unfinished last line; returns once it has.
    pub fn finish(&self, now: DateTime<Utc>) {
        {
            let mut c = lock(&self.shared.ctl);
            c.finish = true;
            c.now = now;
            c.poked += 1;
            c.busy = true;
            self.shared.work.notify_one();
        }
        self.settle();
    }

    /// Waits until the worker has read everything it was poked for. On the multi-threaded
    /// runtime the wait gives the thread's other tasks to another worker.
    pub fn settle(&self) {
        let wait = || {
            let mut c = lock(&self.shared.ctl);
            while c.busy && self.thread.is_some() {
                c = self.shared.idle.wait(c).unwrap_or_else(|e| e.into_inner());
            }
        };
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi {
            tokio::task::block_in_place(wait)
        } else {
            wait()
        }
    }

    /// The batches whose lines the reader has passed (`reader`: its position), oldest first.
    pub fn take(&self, reader: &FollowState) -> Vec<Batch> {
        let mut c = lock(&self.shared.ctl);
        let mut out = Vec::new();
        while let Some(b) = c.batches.front() {
            // On another file (the reader or the worker moved on after a rotation) the
            // offsets do not compare: handed over.
            let same_file = (b.state.dev, b.state.ino) == (reader.dev, reader.ino);
            if same_file && b.state.offset > reader.offset {
                break;
            }
            out.extend(c.batches.pop_front());
        }
        out
    }

    /// Every batch published, whatever the reader's position (at the process's end).
    pub fn take_all(&self) -> Vec<Batch> {
        lock(&self.shared.ctl).batches.drain(..).collect()
    }

    /// Resolves when a batch may be ready.
    pub async fn ready(&self) {
        self.shared.ready.notified().await
    }

    /// The tracker, for the progress figures and the chart (held briefly: the worker takes
    /// it per window).
    pub fn tracker(&self) -> impl std::ops::Deref<Target = MetricsTracker> + '_ {
        struct Guard<'a>(MutexGuard<'a, Metrics>);
        impl std::ops::Deref for Guard<'_> {
            type Target = MetricsTracker;
            fn deref(&self) -> &MetricsTracker {
                &self.0.tracker
            }
        }
        Guard(lock(&self.shared.metrics))
    }
}

impl Drop for MetricsWorker {
    fn drop(&mut self) {
        lock(&self.shared.ctl).stop = true;
        self.shared.work.notify_one();
        // Not joined: it stops after its current window, and nothing waits for it.
        self.thread.take();
    }
}

fn follower(log: PathBuf, from: FollowState) -> Follower {
    let opts = FollowOptions {
        read_budget: ROUND_BYTES,
        // Woken by the job's reads, never by inotify: no watch, and no buffer held idle.
        inotify: false,
        keep_buffer: false,
        ..FollowOptions::default()
    };
    Follower::with_options(log, from, opts)
}

/// The thread's side.
struct Worker {
    shared: Arc<Shared>,
    follower: Follower,
    log: PathBuf,
    cfg: MetricsConfig,
}

impl Worker {
    fn run(mut self) {
        lower_priority();
        let mut woke_job = Instant::now();
        loop {
            let (now, finish) = {
                let mut c = lock(&self.shared.ctl);
                loop {
                    if c.stop {
                        return;
                    }
                    if c.poked != c.seen || c.reset.is_some() || c.writer.is_some() || c.finish {
                        break;
                    }
                    c.busy = false;
                    self.shared.idle.notify_all();
                    c = self.shared.work.wait(c).unwrap_or_else(|e| e.into_inner());
                }
                if let Some(from) = c.reset.take() {
                    self.follower = follower(self.log.clone(), from);
                    *lock(&self.shared.metrics) = Metrics::new(&self.cfg);
                }
                if let Some(pid) = c.writer.take() {
                    self.follower.set_writer(pid);
                }
                c.seen = c.poked;
                (c.now, std::mem::take(&mut c.finish))
            };
            // Read to the end of the file as it is now, a round at a time.
            loop {
                let mut fed = Default::default();
                let res = self.follower.read_windows(|chunks| {
                    let got = lock(&self.shared.metrics).chunks(chunks, now);
                    merge(&mut fed, got);
                });
                let (more, read) = match res {
                    Ok(stats) => (stats.more, stats.bytes > 0 || stats.lines > 0),
                    Err(e) => {
                        tracing::debug!(log = %self.log.display(), error = %e, "metrics: reading the log");
                        (false, false)
                    }
                };
                if finish && !more {
                    let metrics = &self.shared.metrics;
                    self.follower.flush_partial(|line| {
                        let got = lock(metrics).line(line.no, &line.text, now);
                        merge(&mut fed, got);
                    });
                }
                let urgent = !fed.signals.is_empty();
                let wake = fed.fed || urgent;
                // A round of lines without metrics still moves the position that is saved.
                if wake || read || finish {
                    self.publish(fed);
                }
                if wake && (urgent || !more || woke_job.elapsed() >= PROGRESS_EVERY) {
                    woke_job = Instant::now();
                    self.shared.ready.notify_one();
                }
                if !more || lock(&self.shared.ctl).stop {
                    break;
                }
            }
        }
    }

    fn publish(&self, fed: super::Fed) {
        let step = lock(&self.shared.metrics).tracker.step();
        let batch = Batch {
            signals: fed.signals,
            fed: fed.fed,
            step,
            state: self.follower.state(),
        };
        let mut c = lock(&self.shared.ctl);
        if c.batches.len() >= MAX_BATCHES {
            // The reader lags far behind: fold the newest two (the later position covers both).
            if let Some(mut last) = c.batches.pop_back() {
                last.signals.extend(batch.signals);
                last.fed |= batch.fed;
                last.step = batch.step;
                last.state = batch.state;
                c.batches.push_back(last);
                return;
            }
        }
        c.batches.push_back(batch);
    }
}

fn merge(into: &mut super::Fed, got: super::Fed) {
    into.fed |= got.fed;
    into.signals.extend(got.signals);
}

/// The worker yields the CPU to the reading thread and to the job itself while both have
/// work; on an idle core it runs at full speed.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on this thread's own id; they touch no memory of ours.
        // On Linux a nice value set for a thread id applies to that thread only.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, WORKER_NICE)
        };
        if rc != 0 {
            tracing::debug!("metrics thread: priority not lowered");
        }
    }
}

//! The metrics tracker on a thread of its own, following the log at its own pace.
//!
//! The detector files the error report; the tracker (metrics, loss health, the step) is most
//! of the reading's cost — in a catch-up three quarters of it. So the tracker does not run on
//! the reading thread: it has its own [`Follower`] of the same log, woken by the job's reads
//! ([`MetricsWorker::poke`]), and reads to the end of the file from wherever it stands. The
//! file is its queue: nothing is buffered between the two, whatever the lag, and the reader
//! never waits for it. The trackers of all jobs are read by one pool thread, a round of a few
//! MiB at a time, in turn (a thread per job cost 0.7 MB each for 50 jobs, in stacks and
//! allocator arenas; a second pool thread 1 MB more, for no gain on a catch-up of one job).
//! It runs at a lower priority, so while both have work (a backlog) the detector and the job
//! itself get the CPU first.
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
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{Fed, Metrics};
use crate::watch::follower::{FollowOptions, FollowState, Follower};
use crate::watch::metrics::{HealthSignal, MetricsConfig, MetricsTracker};

/// Bytes a tracker reads per round: a batch is published after each, so this bounds how
/// much it re-reads after a crash, how stale the progress figures get in a catch-up, and how
/// long one job's backlog holds up the others' in the pool.
const ROUND_BYTES: u64 = 4 << 20;
/// While it works through a backlog, the job is woken at most this often for the progress
/// figures alone (a batch with health signals wakes it at once).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// The pool threads' nice value (Linux): the detector and the job come first. (A process
/// already niced further stays where it is: the call fails and is ignored.)
const WORKER_NICE: i32 = 10;
/// Pool threads (see the module's note).
const MAX_THREADS: usize = 1;
/// Longest a round waits for readers in a catch-up (see [`reader_behind`]): a job that
/// always writes faster than it is read still has its tracker read, a round at least this
/// often.
const GIVE_WAY_MAX: Duration = Duration::from_millis(50);
/// A reader at the heels of a job that writes fast ends a read, waits a few microseconds for
/// the next write and reads again: the trackers keep giving way until no reader has been
/// behind for this long (still at most [`GIVE_WAY_MAX`] a round).
const GIVE_WAY_QUIET: Duration = Duration::from_millis(20);
/// Batches kept waiting for the reader at most (each is small; a reader that lags behind
/// the tracker for this long has the newest ones folded together).
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
    /// The tracker's position after the round.
    pub state: FollowState,
}

/// Requests to the tracker and what it hands back, under one lock.
struct Control {
    /// Bumped by every poke; the tracker reads until it has seen the latest.
    poked: u64,
    seen: u64,
    /// The time of the latest read (the stamp of the lines the tracker reads now).
    now: DateTime<Utc>,
    /// A new run: start again from this position with a fresh tracker.
    reset: Option<FollowState>,
    /// Counts the resets: a round of the old run that ends after one publishes nothing.
    run: u64,
    /// The job's process changed (see [`Follower::set_writer`]).
    writer: Option<Option<u32>>,
    /// The process ended: read to the end and take the unfinished last line as a line.
    finish: bool,
    /// The pipeline is gone.
    stop: bool,
    /// In the pool's queue, or being read by one of its threads.
    queued: bool,
    /// It has work (or a request not taken yet).
    busy: bool,
    batches: VecDeque<Batch>,
}

impl Control {
    fn has_work(&self) -> bool {
        self.poked != self.seen || self.reset.is_some() || self.writer.is_some() || self.finish
    }
}

/// The tracker's own reading: only a pool thread touches it, one at a time.
struct Reading {
    follower: Follower,
    log: PathBuf,
    cfg: MetricsConfig,
    /// When the job was last woken for progress alone.
    woke_job: Instant,
}

struct Shared {
    ctl: Mutex<Control>,
    /// [`MetricsWorker::settle`] waits on it for the tracker to have no work.
    idle: Condvar,
    /// The tracker, locked per window by the pool and briefly by the progress figures.
    metrics: Mutex<Metrics>,
    reading: Mutex<Reading>,
    /// Wakes the job's task when a batch is ready, and when the tracker has no work left.
    ready: tokio::sync::Notify,
    idle_async: tokio::sync::Notify,
}

/// The handle the pipeline keeps; its tracker is dropped from the pool with it.
pub(super) struct MetricsWorker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MetricsWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsWorker").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on a pool thread must not take the job down with it: the data is whole
    // between windows.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MetricsWorker {
    /// A tracker following `log` from `from`, fresh.
    pub fn start(log: PathBuf, from: FollowState, cfg: &MetricsConfig) -> Self {
        let shared = Arc::new(Shared {
            ctl: Mutex::new(Control {
                // Read once at start: a supervisor resuming behind the reader has a backlog.
                poked: 1,
                seen: 0,
                now: Utc::now(),
                reset: None,
                run: 0,
                writer: None,
                finish: false,
                stop: false,
                queued: false,
                busy: true,
                batches: VecDeque::new(),
            }),
            idle: Condvar::new(),
            metrics: Mutex::new(Metrics::new(cfg)),
            reading: Mutex::new(Reading {
                follower: follower(log.clone(), from),
                log,
                cfg: cfg.clone(),
                woke_job: Instant::now(),
            }),
            ready: tokio::sync::Notify::new(),
            idle_async: tokio::sync::Notify::new(),
        });
        let w = Self { shared };
        w.request(|_| {});
        w
    }

    /// Changes the request under the lock and puts the tracker in the pool's queue.
    fn request(&self, f: impl FnOnce(&mut Control)) {
        let mut c = lock(&self.shared.ctl);
        f(&mut c);
        c.busy = true;
        if !c.queued {
            c.queued = true;
            pool().push(self.shared.clone());
        }
    }

    /// The log may have grown (a read of `now` found bytes): read it.
    pub fn poke(&self, now: DateTime<Utc>) {
        self.request(|c| {
            c.poked += 1;
            c.now = now;
        });
    }

    pub fn set_writer(&self, pid: Option<u32>) {
        self.request(|c| c.writer = Some(pid));
    }

    /// A new run: a fresh tracker from the start of the (new) log; what was not handed over
    /// of the old run is dropped with it.
    pub fn reset(&self) {
        self.request(|c| {
            c.reset = Some(FollowState::default());
            c.run += 1;
            c.batches.clear();
        });
    }

    /// The process ended and the reader is at the end of its log: the tracker reads to the
    /// end too and takes the unfinished last line; returns once it has.
    pub fn finish(&self, now: DateTime<Utc>) {
        self.request(|c| {
            c.finish = true;
            c.poked += 1;
            c.now = now;
        });
        self.settle();
    }

    /// [`finish`](Self::finish) without blocking the thread: the job's task awaits it when
    /// its process ended, so that the wait in `finish` is over at once. (A blocking wait
    /// there made the runtime start a thread for each job ending at once.)
    pub async fn finished(&self, now: DateTime<Utc>) {
        self.request(|c| {
            c.finish = true;
            c.poked += 1;
            c.now = now;
        });
        loop {
            let idle = self.shared.idle_async.notified();
            if !lock(&self.shared.ctl).busy {
                return;
            }
            idle.await;
        }
    }

    /// Waits until the tracker has read everything it was poked for.
    pub fn settle(&self) {
        let mut c = lock(&self.shared.ctl);
        while c.busy {
            c = self.shared.idle.wait(c).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The batches whose lines the reader has passed (`reader`: its position), oldest first.
    pub fn take(&self, reader: &FollowState) -> Vec<Batch> {
        let mut c = lock(&self.shared.ctl);
        let mut out = Vec::new();
        while let Some(b) = c.batches.front() {
            // On another file (the reader or the tracker moved on after a rotation) the
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

    /// The tracker, for the progress figures and the chart (held briefly: the pool takes it
    /// per window).
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
        // The pool drops it at its next turn (after the round under way, if any).
        let mut c = lock(&self.shared.ctl);
        c.stop = true;
        c.busy = false;
        self.shared.idle.notify_all();
        self.shared.idle_async.notify_one();
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

/// The threads that read every job's tracker, a round at a time, in turn.
struct Pool {
    queue: Mutex<VecDeque<Arc<Shared>>>,
    work: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            queue: Mutex::new(VecDeque::new()),
            work: Condvar::new(),
        }));
        for k in 0..MAX_THREADS {
            let spawned = std::thread::Builder::new()
                .name(format!("tw-metrics-{k}"))
                .spawn(move || pool.run());
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a metrics thread");
            }
        }
        pool
    })
}

impl Pool {
    fn push(&self, job: Arc<Shared>) {
        lock(&self.queue).push_back(job);
        self.work.notify_one();
    }

    fn run(&self) {
        lower_priority();
        loop {
            let job = {
                let mut q = lock(&self.queue);
                loop {
                    if let Some(job) = q.pop_front() {
                        break job;
                    }
                    q = self.work.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            if round(&job) {
                self.push(job);
            }
        }
    }
}

/// Reading threads inside a read of a backlog (a catch-up), and a condition signalled when
/// the last of them is done.
static BEHIND: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());
/// When the last reader to be behind stopped being behind.
static CAUGHT_UP_AT: Mutex<Option<Instant>> = Mutex::new(None);

/// Held by a reading thread while it works through a backlog (see [`reader_behind`]).
pub(super) struct Behind(());

/// A reading thread is working through a backlog until the guard is dropped: the trackers'
/// rounds wait until no reader is (at most [`GIVE_WAY_MAX`] a round). A nice value does not
/// keep the tracker from the cores the reader and the job need (the job is in a scheduling
/// group of its own, and the reader shares this one): in a 256 MB catch-up the tracker took
/// 0.06-0.13 s of CPU time before the error report, beside a reader and a job that each
/// wanted a core. After the catch-up it has them to itself.
pub(super) fn reader_behind() -> Behind {
    *lock(&BEHIND.0) += 1;
    Behind(())
}

impl Drop for Behind {
    fn drop(&mut self) {
        let mut n = lock(&BEHIND.0);
        *n -= 1;
        if *n == 0 {
            *lock(&CAUGHT_UP_AT) = Some(Instant::now());
            BEHIND.1.notify_all();
        }
    }
}

/// Waits while a reader works through a backlog, at most [`GIVE_WAY_MAX`].
fn give_way() {
    let deadline = Instant::now() + GIVE_WAY_MAX;
    let mut n = lock(&BEHIND.0);
    loop {
        let now = Instant::now();
        let Some(left) = deadline.checked_duration_since(now) else {
            return;
        };
        let wait = if *n > 0 {
            left
        } else {
            // Nobody behind now; a reader that was a moment ago is likely to be again.
            let quiet_until = lock(&CAUGHT_UP_AT).map(|t| t + GIVE_WAY_QUIET);
            match quiet_until.and_then(|q| q.checked_duration_since(now)) {
                Some(d) if !d.is_zero() => d.min(left),
                _ => return,
            }
        };
        n = BEHIND
            .1
            .wait_timeout(n, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// One round of a tracker's reading; true when it has more to do (back in the queue).
fn round(job: &Shared) -> bool {
    give_way();
    let (now, finish, reset, writer, run) = {
        let mut c = lock(&job.ctl);
        if c.stop {
            c.queued = false;
            return false;
        }
        c.seen = c.poked;
        (c.now, c.finish, c.reset.take(), c.writer.take(), c.run)
    };
    let mut r = lock(&job.reading);
    let r = &mut *r;
    if let Some(from) = reset {
        r.follower = follower(r.log.clone(), from);
        *lock(&job.metrics) = Metrics::new(&r.cfg);
    }
    if let Some(pid) = writer {
        r.follower.set_writer(pid);
    }
    let mut fed = Fed::default();
    let res = r.follower.read_windows(|chunks| {
        let got = lock(&job.metrics).chunks(chunks, now);
        merge(&mut fed, got);
    });
    let (more, read) = match res {
        Ok(stats) => (stats.more, stats.bytes > 0 || stats.lines > 0),
        Err(e) => {
            tracing::debug!(log = %r.log.display(), error = %e, "metrics: reading the log");
            (false, false)
        }
    };
    let ended = finish && !more;
    if ended {
        r.follower.flush_partial(|line| {
            let got = lock(&job.metrics).line(line.no, &line.text, now);
            merge(&mut fed, got);
        });
    }
    let urgent = !fed.signals.is_empty();
    let wake = fed.fed || urgent;
    let step = lock(&job.metrics).tracker.step();
    let mut c = lock(&job.ctl);
    // A round of lines without metrics still moves the position that is saved.
    if (wake || read || ended) && c.run == run {
        publish(
            &mut c,
            Batch {
                signals: fed.signals,
                fed: fed.fed,
                step,
                state: r.follower.state(),
            },
        );
    }
    if ended {
        c.finish = false;
    }
    if wake && (urgent || !more || r.woke_job.elapsed() >= PROGRESS_EVERY) {
        r.woke_job = Instant::now();
        job.ready.notify_one();
    }
    if !c.stop && (more || c.has_work()) {
        return true;
    }
    c.queued = false;
    c.busy = false;
    job.idle.notify_all();
    job.idle_async.notify_one();
    false
}

fn publish(c: &mut Control, batch: Batch) {
    if c.batches.len() >= MAX_BATCHES {
        // The reader lags far behind: fold into the newest (its later position covers both).
        if let Some(last) = c.batches.back_mut() {
            last.signals.extend(batch.signals);
            last.fed |= batch.fed;
            last.step = batch.step;
            last.state = batch.state;
            return;
        }
    }
    c.batches.push_back(batch);
}

fn merge(into: &mut Fed, got: Fed) {
    into.fed |= got.fed;
    into.signals.extend(got.signals);
}

/// The pool yields the CPU to the reading thread and to the job itself while both have
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

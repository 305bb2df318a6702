//! A second thread for the reading thread's prefilter scan, as `trainwatch triage` has.
//!
//! In a catch-up the reading thread runs the follower and the detector, and the detector's
//! byte scan ([`RegionScan`]: which lines hold a literal) is the larger part of its work. The
//! scan is a function of the bytes, so when a read brings a large window the pipeline cuts
//! its runs of whole lines into regions and lends them here ([`share`]): this thread scans
//! them from the last back while the detector takes them from the first on, each region
//! scanned once by whichever comes to it first ([`ScanSlots`]). The detector's rules still
//! run on the reading thread, in the log's order, so what is reported and when is what the
//! one-thread path gives.
//!
//! One thread serves every job, started at the first large read and asleep on a condition
//! variable between them: a quiet job never wakes it, and a job read a few lines at a time
//! never lends it anything. The read's buffer is lent, not copied: the follower's
//! [`ReadBuf`] is shared, and the reading thread takes it back ([`Shared::release`]) before
//! its callback returns, so the next read finds it free.
//!
//! The same thread reads a catch-up's next window ahead ([`OnScanThread`], the follower's
//! [`ReadAhead`]): while the reader's detector works on window N, this thread copies window
//! N + 1 out of the page cache and counts its newlines — in a catch-up the kernel's copy was
//! a third or more of the reading thread's time. The reader submits that read before it lends
//! window N's regions, so the thread reads first, then scans N's regions from the back.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use crate::watch::detect::{RegionScan, ScanSlots};
use crate::watch::follower::{ReadAhead, ReadBuf};

/// Regions a window's runs are cut into (at a line's end after this many bytes): small
/// enough that both threads get a share of a catch-up's reads, large enough that the lending
/// costs little against the scan (about a tenth of a millisecond of scanning each).
pub(super) const REGION: usize = 128 << 10;
/// Runs shorter than this in all are scanned on the reading thread alone: a job read a few
/// lines at a time lends nothing.
pub(super) const SHARE_FROM: usize = 2 * REGION;

/// A window's regions, lent to the scanning thread.
pub(super) struct Shared {
    /// Offsets of the regions in the buffer, in the log's order.
    regions: Vec<Range<usize>>,
    scans: ScanSlots,
    lent: Mutex<Lent>,
    /// Signalled when the scanning thread lets go of the buffer.
    done: Condvar,
}

struct Lent {
    /// The read's buffer while it is lent (taken back by [`Shared::release`]).
    buf: Option<ReadBuf>,
    /// The scanning thread is going over the regions.
    scanning: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while scanning leaves nothing half-written that matters: a slot is either
    // filled or scanned again by the reader.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lend `regions` of `buf` (the read's buffer) to the scanning thread.
pub(super) fn share(buf: &ReadBuf, regions: Vec<Range<usize>>) -> Arc<Shared> {
    let shared = Arc::new(Shared {
        scans: ScanSlots::new(regions.len()),
        regions,
        lent: Mutex::new(Lent {
            buf: Some(Arc::clone(buf)),
            scanning: false,
        }),
        done: Condvar::new(),
    });
    if let Some(pool) = pool() {
        pool.push(Work::Scan(Arc::clone(&shared)));
    }
    shared
}

/// The follower's read-ahead on the scanning thread (started at the first read-ahead, as at
/// the first lent window).
pub(super) struct OnScanThread;

impl ReadAhead for OnScanThread {
    fn submit(&self, job: Box<dyn FnOnce() + Send>) {
        match pool() {
            Some(pool) => pool.push(Work::Read(job)),
            // No thread: the read is made at once, here, as the follower would make it.
            None => job(),
        }
    }
}

impl Shared {
    /// Region `k`'s scan (`region` is its bytes): the scanning thread's, waited for if it is
    /// under way, or made here.
    pub(super) fn get<'a>(
        &'a self,
        k: usize,
        region: &[u8],
    ) -> impl std::ops::Deref<Target = RegionScan> + 'a {
        debug_assert_eq!(region.len(), self.regions[k].len());
        self.scans.get(k, region)
    }

    /// The reader is done with the window: waits until the scanning thread has let go of the
    /// buffer (it stops at the first region the reader has reached, so at most the scan of
    /// one region is left), and takes it back, so that the follower reads into it again.
    pub(super) fn release(&self) {
        let mut lent = lock(&self.lent);
        while lent.scanning {
            lent = self.done.wait(lent).unwrap_or_else(|e| e.into_inner());
        }
        lent.buf = None;
    }

    /// The scanning thread: the regions from the last back, until one the reader has.
    fn scan(&self) {
        let buf = {
            let mut lent = lock(&self.lent);
            let Some(buf) = lent.buf.clone() else {
                // The reader was done before this thread came to it.
                return;
            };
            lent.scanning = true;
            buf
        };
        for k in (0..self.regions.len()).rev() {
            if !self.scans.ahead(k, &buf[self.regions[k].clone()]) {
                break;
            }
        }
        drop(buf);
        lock(&self.lent).scanning = false;
        self.done.notify_all();
    }
}

/// What the scanning thread is given.
enum Work {
    Scan(Arc<Shared>),
    /// A follower's read ahead.
    Read(Box<dyn FnOnce() + Send>),
}

/// The scanning thread and what is lent to it, oldest first.
struct Pool {
    queue: Mutex<VecDeque<Work>>,
    work: Condvar,
}

/// None when the thread could not be started: the reader then scans every region itself,
/// as it would alone.
fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<&'static Pool>> = OnceLock::new();
    *POOL.get_or_init(|| {
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            queue: Mutex::new(VecDeque::new()),
            work: Condvar::new(),
        }));
        match std::thread::Builder::new()
            .name("tw-scan".into())
            .spawn(move || pool.run())
        {
            Ok(_) => Some(pool),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the scanning thread");
                None
            }
        }
    })
}

impl Pool {
    fn push(&self, work: Work) {
        lock(&self.queue).push_back(work);
        self.work.notify_one();
    }

    fn run(&self) {
        loop {
            let work = {
                let mut q = lock(&self.queue);
                loop {
                    if let Some(s) = q.pop_front() {
                        break s;
                    }
                    q = self.work.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            match work {
                Work::Scan(shared) => shared.scan(),
                Work::Read(job) => job(),
            }
        }
    }
}

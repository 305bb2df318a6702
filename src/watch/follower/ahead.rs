//! Reading the next window of a backlog on another thread while the consumer works on this
//! one (see [`Follower::set_read_ahead`](super::Follower::set_read_ahead)).
//!
//! In a catch-up the kernel's copy of each read out of the page cache is a third or more of
//! the reading thread's time, and the newline count of the window another tenth. Both are
//! functions of the bytes alone, so while the consumer's callback runs on window N, window
//! N + 1 is read (and its newlines counted) by a job handed to a [`ReadAhead`]: a read of the
//! same open file at the offset where window N ends, into a buffer of its own. The follower
//! takes it at its next read, as if it had made that read itself a little earlier, and tops
//! it up in place when it was short (the writer may have written more since). Nothing else
//! moves: the position, the partial line, the line numbers, truncation and rotation are the
//! follower's, checked when it would have checked them.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::FileId;

/// Runs a follower's read-ahead jobs on another thread.
pub trait ReadAhead: Send + Sync {
    /// Run `job` soon, on another thread. A job that has not started when the follower
    /// needs its bytes is given up (its buffer taken back, the read made in place), so a
    /// busy or stopped thread only costs the overlap; a job dropped unrun is given up too.
    fn submit(&self, job: Box<dyn FnOnce() + Send>);
}

/// What a read-ahead job holds, under its lock.
enum State {
    /// Submitted, not started: the buffer it will read into.
    Queued(Vec<u8>),
    Reading,
    Done {
        buf: Vec<u8>,
        read: io::Result<usize>,
        /// `'\n'` in `buf[..n]` of a successful read of `n` bytes.
        newlines: u64,
    },
    /// The follower gave it up (or took it): a job still reading drops what it read.
    Gone,
}

struct Slot {
    state: Mutex<State>,
    done: Condvar,
}

fn lock(slot: &Slot) -> MutexGuard<'_, State> {
    // A panic in a job leaves `Reading`, which the follower then waits on for ever: so
    // nothing in a job may panic while holding the lock, and a poisoned lock is whole.
    slot.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A read of `want` bytes at `offset` of file `id`, submitted ahead of the follower.
pub(super) struct Pending {
    slot: Arc<Slot>,
    pub(super) offset: u64,
    pub(super) id: FileId,
    pub(super) want: usize,
}

/// What [`Pending::take`] found.
pub(super) enum Taken {
    /// The job read: `buf[..n]` holds the bytes of a successful read of `n`.
    Read {
        buf: Vec<u8>,
        read: io::Result<usize>,
        newlines: u64,
    },
    /// It never started: its buffer, for the follower to read into itself.
    NotStarted(Vec<u8>),
}

impl Pending {
    /// Submits a read of `want` bytes of `file` (file `id`) at `offset` into `buf` (at
    /// least `want` long).
    pub(super) fn start(
        ahead: &dyn ReadAhead,
        file: Arc<File>,
        id: FileId,
        offset: u64,
        want: usize,
        buf: Vec<u8>,
    ) -> Self {
        assert!(buf.len() >= want, "a read-ahead buffer of at least the read");
        let slot = Arc::new(Slot {
            state: Mutex::new(State::Queued(buf)),
            done: Condvar::new(),
        });
        let job_slot = Arc::clone(&slot);
        ahead.submit(Box::new(move || run(&job_slot, &file, offset, want)));
        Self {
            slot,
            offset,
            id,
            want,
        }
    }

    /// The job's bytes, waiting for it if it is reading; its buffer back if it has not
    /// started (it will not start any more).
    pub(super) fn take(self) -> Taken {
        let mut state = lock(&self.slot);
        loop {
            match std::mem::replace(&mut *state, State::Gone) {
                State::Queued(buf) => return Taken::NotStarted(buf),
                State::Done { buf, read, newlines } => return Taken::Read { buf, read, newlines },
                State::Reading => {
                    *state = State::Reading;
                    state = self.slot.done.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                State::Gone => unreachable!("a read-ahead is taken once"),
            }
        }
    }
}

impl Drop for Pending {
    /// Given up (the follower moved, or went away): a job not started will not start, one
    /// reading drops its bytes when done.
    fn drop(&mut self) {
        *lock(&self.slot) = State::Gone;
    }
}

/// The job: one read, as the follower would make it (a short read is the end of the data
/// as of now), and the count of its newlines while the bytes are in this core's cache.
fn run(slot: &Slot, file: &File, offset: u64, want: usize) {
    let mut buf = {
        let mut state = lock(slot);
        match std::mem::replace(&mut *state, State::Reading) {
            State::Queued(buf) => buf,
            other => {
                // Given up before it started.
                *state = other;
                return;
            }
        }
    };
    let read = loop {
        match file.read_at(&mut buf[..want], offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r,
        }
    };
    let newlines = match &read {
        Ok(n) => memchr::memchr_iter(b'\n', &buf[..*n]).count() as u64,
        Err(_) => 0,
    };
    let mut state = lock(slot);
    if matches!(*state, State::Reading) {
        *state = State::Done { buf, read, newlines };
        slot.done.notify_all();
    }
}

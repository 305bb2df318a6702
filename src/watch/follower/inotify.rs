//! Linux wake-ups for the follower: an inotify instance, registered with tokio's reactor,
//! that watches the open log file (writes, truncation) and its directory (the log being
//! created, renamed away or deleted). It only says "look again"; the follower's reads
//! decide what actually happened, so a lost or coalesced event costs latency, never data.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::FileId;

/// `AsyncFd` wants `AsRawFd`; nix's `Inotify` only offers `AsFd`.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

struct Armed {
    fd: AsyncFd<InotifyFd>,
    dir_wd: Option<WatchDescriptor>,
    file_wd: Option<(WatchDescriptor, FileId)>,
}

/// What [`Watch::arm`] achieved.
pub(super) struct ArmOutcome {
    /// A watch was just added: a change may have happened before it existed, so the
    /// caller should read again before waiting.
    pub fresh: bool,
    /// Every watch the situation needs is in place (events will arrive).
    pub complete: bool,
}

pub(super) struct Watch {
    armed: Option<Armed>,
    /// inotify is unusable here (no instance left, no reactor): stay on polling.
    disabled: bool,
}

const DIR_MASK: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

const FILE_MASK: AddWatchFlags = AddWatchFlags::IN_MODIFY
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF);

impl Watch {
    pub(super) fn new() -> Self {
        Self {
            armed: None,
            disabled: false,
        }
    }

    /// Makes sure the directory of `path` and the open file (if any) are watched.
    pub(super) fn arm(&mut self, path: &Path, open: Option<(&File, FileId)>) -> ArmOutcome {
        let mut out = ArmOutcome {
            fresh: false,
            complete: false,
        };
        if self.disabled {
            return out;
        }
        if self.armed.is_none() {
            match Self::init() {
                Ok(fd) => {
                    self.armed = Some(Armed {
                        fd,
                        dir_wd: None,
                        file_wd: None,
                    })
                }
                Err(e) => {
                    tracing::warn!(error = %e, "inotify unavailable, following the log by polling");
                    self.disabled = true;
                    return out;
                }
            }
        }
        let Some(armed) = self.armed.as_mut() else {
            return out;
        };
        let inotify = &armed.fd.get_ref().0;

        if armed.dir_wd.is_none() {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            match inotify.add_watch(dir, DIR_MASK) {
                Ok(wd) => {
                    armed.dir_wd = Some(wd);
                    out.fresh = true;
                }
                // Typically the directory does not exist yet; polling covers it.
                Err(e) => {
                    tracing::debug!(
                        dir = %dir.display(),
                        error = %e,
                        "cannot watch the directory yet",
                    )
                }
            }
        }

        let want = open.map(|(_, id)| id);
        if armed.file_wd.map(|(_, id)| id) != want {
            if let Some((wd, _)) = armed.file_wd.take() {
                // Fails harmlessly if the kernel already dropped it (file gone).
                let _ = inotify.rm_watch(wd);
            }
            if let Some((file, id)) = open {
                // Watching through the descriptor targets exactly the inode we read, even
                // when the path already names a newer file or none at all.
                let via_fd = format!("/proc/self/fd/{}", file.as_raw_fd());
                // Without /proc, the path: it names our file except mid-rotation, and the
                // directory watch and the poll cover that moment.
                let added = inotify
                    .add_watch(via_fd.as_str(), FILE_MASK)
                    .or_else(|_| inotify.add_watch(path, FILE_MASK));
                match added {
                    Ok(wd) => {
                        armed.file_wd = Some((wd, id));
                        out.fresh = true;
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot watch the open log file"),
                }
            }
        }
        out.complete = armed.dir_wd.is_some() && armed.file_wd.map(|(_, id)| id) == want;
        out
    }

    fn init() -> io::Result<AsyncFd<InotifyFd>> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        // SAFETY: the descriptor is owned by the `Inotify` inside the `AsyncFd`, and is
        // neither replaced nor closed before the `AsyncFd` is dropped.
        let registered = unsafe { AsyncFd::register_with_interest(InotifyFd(inotify), Interest::READABLE) };
        Ok(registered?)
    }

    /// Resolves when an event concerning the followed log arrives. Never resolves when
    /// not armed. Cancel-safe: events consumed by a cancelled call only mean "look again".
    pub(super) async fn wait(&mut self, name: Option<&OsString>) {
        let Some(armed) = self.armed.as_mut() else {
            return std::future::pending().await;
        };
        let failure = loop {
            let mut guard = match armed.fd.readable().await {
                Ok(g) => g,
                Err(e) => break e,
            };
            let events = match guard.try_io(|fd| fd.get_ref().0.read_events().map_err(io::Error::from)) {
                Ok(Ok(events)) => events,
                Ok(Err(e)) => break e,
                Err(_would_block) => continue,
            };
            drop(guard);
            if armed.relevant(&events, name) {
                return;
            }
        };
        tracing::warn!(error = %failure, "inotify failed, following the log by polling");
        self.armed = None;
        self.disabled = true;
    }
}

impl Drop for Watch {
    /// Closing an inotify instance waits in the kernel for a grace period (10 ms and more
    /// were seen), and a new run's follower replaces the last one just before its job is
    /// started: the instance is closed on a thread of its own, so nobody waits for that.
    fn drop(&mut self) {
        if let Some(armed) = self.armed.take() {
            let closing = std::thread::Builder::new()
                .name("tw-inotify-close".into())
                .spawn(move || drop(armed));
            if let Err(e) = closing {
                tracing::debug!(error = %e, "closing an inotify instance in place");
            }
        }
    }
}

impl Armed {
    /// Whether any event concerns our file; forgets watches the kernel dropped so the
    /// next `arm` re-creates them.
    fn relevant(&mut self, events: &[InotifyEvent], name: Option<&OsString>) -> bool {
        let mut hit = false;
        for e in events {
            if e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                hit = true;
            } else if self.file_wd.map(|(wd, _)| wd) == Some(e.wd) {
                if e.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.file_wd = None;
                }
                hit = true;
            } else if self.dir_wd == Some(e.wd) {
                let dir_gone =
                    AddWatchFlags::IN_IGNORED | AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF;
                if e.mask.intersects(dir_gone) {
                    if e.mask.contains(AddWatchFlags::IN_MOVE_SELF) {
                        // Still valid on the moved directory, which is no longer ours.
                        let _ = self.fd.get_ref().0.rm_watch(e.wd);
                    }
                    self.dir_wd = None;
                    hit = true;
                } else if name.is_some() && e.name.as_ref() == name {
                    hit = true;
                }
            }
        }
        hit
    }
}

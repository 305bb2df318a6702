//! One supervisor per store. `trainwatch run` and `trainwatch serve` hold an exclusive
//! `flock(2)` on a lock file beside the store (and one in the job state folder) for as long
//! as they supervise; the file says who holds it (PID and host) so that a second supervisor
//! can refuse at once and name the holder. The kernel releases a flock when its holder dies,
//! however it dies (SIGKILL, a crash), so a stale lock is never left behind: the next
//! supervisor simply takes it over and re-adopts the jobs. The file itself is never removed
//! (removing it would let two supervisors lock two different files of one name).
//!
//! Read-only commands (`status`, `audit`, `triage`, `check-config`, `send`) never lock.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;

/// How long a refused supervisor waits for a holder that has just locked to write its PID.
const HOLDER_WAIT_TRIES: u32 = 20;
const HOLDER_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(25);

/// Who holds a supervisor lock, as its lock file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PID {} on host {}", self.pid, self.host)
    }
}

#[derive(Debug, Error)]
pub enum LockError {
    #[error(
        "{what} is already supervised by another trainwatch ({}; lock file {}): one supervisor per store — stop that one first (its jobs keep running and are re-adopted), or talk to it with `trainwatch send`",
        holder.as_ref().map_or_else(|| "its PID is not written yet".to_string(), Holder::to_string),
        path.display()
    )]
    Held {
        what: &'static str,
        path: PathBuf,
        holder: Option<Holder>,
    },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An exclusive lock held until dropped (or until the process ends).
#[derive(Debug)]
pub struct SupervisorLock {
    _file: Flock<File>,
    path: PathBuf,
}

impl SupervisorLock {
    /// Take the lock at `path` without waiting, creating the file (and its folder) if need
    /// be, and write our PID and host into it. `what` names what the lock guards, for the
    /// message (e.g. "the store").
    pub fn acquire(path: &Path, what: &'static str) -> Result<SupervisorLock, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        // No truncation on open: until we hold the lock, the holder's PID is in the file.
        // std opens with O_CLOEXEC, so the shim and the jobs never inherit the lock.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => f,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                // The holder writes its PID right after locking: give it a moment (bounded)
                // if we caught it in between.
                let mut holder = read_holder(&mut file);
                for _ in 0..HOLDER_WAIT_TRIES {
                    if holder.is_some() {
                        break;
                    }
                    std::thread::sleep(HOLDER_WAIT_STEP);
                    holder = read_holder(&mut file);
                }
                return Err(LockError::Held {
                    what,
                    path: path.to_path_buf(),
                    holder,
                });
            }
            Err((_, e)) => return Err(io_err(io::Error::from(e))),
        };
        let me = Holder {
            pid: std::process::id(),
            host: hostname(),
        };
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        file.write_all(format!("{} {}\n", me.pid, me.host).as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(io_err)?;
        Ok(SupervisorLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The holder named in a lock file (`PID HOST`), if it has been written.
fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    let (pid, host) = text.trim().split_once(' ')?;
    Some(Holder {
        pid: pid.parse().ok()?,
        host: host.to_string(),
    })
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The locks of one supervisor: the store's and the job state folder's.
#[derive(Debug)]
pub struct SupervisorLocks {
    pub store: SupervisorLock,
    pub state: SupervisorLock,
}

impl SupervisorLocks {
    /// Lock the store at `store_path` (file `<store>.lock` beside it) and the job state
    /// folder `state_root` (file `supervisor.lock` in it), in that order.
    pub fn acquire(store_path: &Path, state_root: &Path) -> Result<SupervisorLocks, LockError> {
        let store = SupervisorLock::acquire(&lock_path_of(store_path), "the store")?;
        let state = SupervisorLock::acquire(&state_root.join("supervisor.lock"), "the job state folder")?;
        Ok(SupervisorLocks { store, state })
    }
}

/// `state.db` → `state.db.lock`, in the same folder.
pub fn lock_path_of(store_path: &Path) -> PathBuf {
    let mut name = store_path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    store_path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_free_again_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db.lock");
        let first = SupervisorLock::acquire(&path, "the store").unwrap();
        // flock locks belong to the open file description: a second open in this same
        // process conflicts just as another process's would.
        match SupervisorLock::acquire(&path, "the store") {
            Err(LockError::Held { holder: Some(h), .. }) => {
                assert_eq!(h.pid, std::process::id());
                assert_eq!(h.host, hostname());
            }
            other => panic!("expected Held with a holder, got {other:?}"),
        }
        drop(first);
        let again = SupervisorLock::acquire(&path, "the store").unwrap();
        assert_eq!(again.path(), path);
    }

    #[test]
    fn the_message_names_pid_and_host() {
        let e = LockError::Held {
            what: "the store",
            path: PathBuf::from("x/state.db.lock"),
            holder: Some(Holder {
                pid: 42,
                host: "gpu1".into(),
            }),
        };
        let m = e.to_string();
        assert!(m.contains("PID 42 on host gpu1"), "{m}");
        assert!(m.starts_with("the store is already supervised"), "{m}");
        assert!(m.contains("lock file x/state.db.lock"), "{m}");
    }

    #[test]
    fn lock_files_sit_beside_the_store() {
        assert_eq!(
            lock_path_of(Path::new("a/.trainwatch/state.db")),
            PathBuf::from("a/.trainwatch/state.db.lock")
        );
    }
}

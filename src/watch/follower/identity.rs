//! Which file is the job's log: the file the job's process holds open (looked up in
//! `/proc/PID/fd`) is the log, a file at the log's path that it does not hold is a swap
//! (refused, never read), and a rotated log is found again among its siblings by identity.

use std::fs::File;
use std::os::unix::fs::DirEntryExt;
use std::path::Path;

use super::{FileId, Follower, OpenLog};

impl Follower {
    /// The PID of the job's process (None: not known, or no process). With it, a file at
    /// the log's path that the process does not hold open (looked up in `/proc/PID/fd`) is
    /// taken for a swap, not a rotation: it is refused, and the file the process does hold
    /// is followed instead, even if its name is gone (a log deleted and replaced while
    /// trainwatch was down).
    pub fn set_writer(&mut self, pid: Option<u32>) {
        self.writer = pid;
    }

    /// Whether the writer holds the file `id` open; None when that cannot be told (no
    /// writer known, or its descriptors unreadable: it ended).
    pub(super) fn writer_holds(&self, id: FileId) -> Option<bool> {
        Some(self.writer_file(id)?.is_some())
    }

    /// The writer's open file with identity `id`, opened afresh through `/proc/PID/fd`;
    /// None when the writer's descriptors cannot be read.
    pub(super) fn writer_file(&self, id: FileId) -> Option<Option<OpenLog>> {
        let pid = self.writer?;
        // A writer that has ended but is not yet reaped (a zombie) holds no file any more:
        // its empty descriptor table says nothing about which file it wrote.
        if ended(pid) {
            return None;
        }
        let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        Some(entries.flatten().find_map(|e| {
            let meta = std::fs::metadata(e.path()).ok()?;
            if !meta.file_type().is_file() || FileId::of(&meta) != id {
                return None;
            }
            let file = File::open(e.path()).ok()?;
            Some(OpenLog::new(file, id))
        }))
    }

    /// The writer's standard output, when it is a regular file: where the shim pointed it,
    /// the log (for a log never read before, so with no identity saved).
    pub(super) fn writer_stdout(&self) -> Option<OpenLog> {
        let fd = format!("/proc/{}/fd/1", self.writer?);
        let meta = std::fs::metadata(&fd).ok().filter(|m| m.file_type().is_file())?;
        let file = File::open(&fd).ok()?;
        Some(OpenLog::new(file, FileId::of(&meta)))
    }

    /// A file at the path other than the one followed: not the job's (a swap) when the
    /// writer does not hold it, or — when the writer cannot be asked — when it was found so
    /// before.
    pub(super) fn is_swap(&mut self, id: FileId) -> bool {
        match self.writer_holds(id) {
            // The job writes it (an inode number reused for the job's own new file, too).
            Some(true) => false,
            Some(false) => {
                if self.swapped != Some(id) {
                    tracing::warn!(
                        path = %self.path.display(),
                        "the log's path names a file the job does not write: not read"
                    );
                    self.swapped = Some(id);
                }
                true
            }
            None => self.swapped == Some(id),
        }
    }

    /// The file with identity `id` in the log's directory (e.g. `train.log.1`).
    pub(super) fn find_sibling(&self, id: FileId) -> Option<OpenLog> {
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let entries = std::fs::read_dir(dir).ok()?;
        for entry in entries.flatten() {
            // The inode from the directory entry spares a stat per entry.
            if entry.ino() != id.ino {
                continue;
            }
            let Ok(file) = File::open(entry.path()) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            if FileId::of(&meta) == id {
                return Some(OpenLog::new(file, id));
            }
        }
        None
    }
}

/// Has process `pid` ended (a zombie, or dead), or is it gone? Read from `/proc/PID/stat`,
/// whose state follows the command name in parentheses.
fn ended(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .map_or(true, |state| matches!(state, 'Z' | 'X' | 'x'))
}

#[cfg(test)]
mod tests {
    use super::ended;

    #[test]
    fn a_zombie_writer_has_ended_a_running_one_has_not() {
        assert!(!ended(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: a zombie once it has exited.
        let mut zombie = false;
        for _ in 0..500 {
            if ended(pid) {
                zombie = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.wait().unwrap();
        assert!(zombie, "an exited, unreaped child is a zombie");
        assert!(ended(pid), "a reaped child is gone");
    }
}

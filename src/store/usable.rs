//! Whether a store can be supervised from, and why not in words a user can act on: the
//! checks `Store::open_to_supervise` makes before a job is started, and the plain reasons
//! given for SQLite and file-system errors (at start and in the chat mid-run).

use std::path::Path;

use rusqlite::{Connection, ErrorCode};

/// Below this much free space on the store's file system a supervisor refuses to start:
/// a run's history, audit log and outbox need room to grow.
pub const MIN_FREE_BYTES: u64 = 1024 * 1024;

/// A store path must not be a folder, and what is above it must be folders.
pub(super) fn check_path(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("it is a folder, not a database file".to_string());
    }
    if let Some(blocker) = path
        .ancestors()
        .skip(1)
        .find(|a| a.exists())
        .filter(|a| !a.is_dir())
    {
        return Err(format!("{} is not a folder", blocker.display()));
    }
    Ok(())
}

/// Take and release a write lock and write one row: a read-only file, folder or file
/// system, or a file that is not a database, fails here rather than after the job started.
pub(super) fn probe_write(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_by_supervisor', datetime('now'));
         COMMIT;",
    )
}

/// The store's file system must have room (see [`MIN_FREE_BYTES`]).
pub(super) fn check_room(path: &Path) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(free) = free_bytes(dir) else {
        return Ok(()); // no answer from statvfs: the writes themselves will tell
    };
    if free < MIN_FREE_BYTES {
        return Err(format!(
            "no space: its file system has {free} bytes free (trainwatch needs at least {MIN_FREE_BYTES})"
        ));
    }
    Ok(())
}

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    #[allow(clippy::useless_conversion)] // the field types differ between platforms
    Some(u64::from(s.blocks_available()) * u64::from(s.fragment_size()))
}

/// A SQLite error in plain words.
pub(super) fn sql_why(e: &rusqlite::Error) -> String {
    let code = e.sqlite_error_code();
    let plain = match code {
        Some(ErrorCode::ReadOnly) => "it is read-only (the file, its folder or its file system)",
        Some(ErrorCode::NotADatabase) => "it is not a SQLite database",
        Some(ErrorCode::DiskFull) => "no space left on its file system",
        Some(ErrorCode::CannotOpen) => "it cannot be opened (a read-only or missing folder?)",
        Some(ErrorCode::SystemIoFailure) => "an I/O error",
        Some(ErrorCode::PermissionDenied) => "permission denied",
        Some(ErrorCode::DatabaseCorrupt) => "it is corrupt",
        _ => return e.to_string(),
    };
    format!("{plain} ({e})")
}

/// An I/O error in plain words.
pub fn io_why(e: &std::io::Error) -> String {
    let plain = match e.raw_os_error() {
        Some(libc::EROFS) => "its file system is read-only",
        Some(libc::EACCES | libc::EPERM) => "permission denied (a read-only or immutable file or folder?)",
        Some(libc::ENOSPC | libc::EDQUOT) => "no space left on its file system",
        Some(libc::ENOTDIR) => "a part of its path is not a folder",
        Some(libc::EISDIR) => "it is a folder, not a database file",
        _ => return e.to_string(),
    };
    format!("{plain} ({e})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_reasons_name_the_cause() {
        let ro = std::io::Error::from_raw_os_error(libc::EROFS);
        assert!(
            io_why(&ro).starts_with("its file system is read-only"),
            "{}",
            io_why(&ro)
        );
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(io_why(&full).starts_with("no space left"));
        let e = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None);
        assert!(sql_why(&e).starts_with("no space left"), "{}", sql_why(&e));
        let e = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB), None);
        assert!(sql_why(&e).starts_with("it is not a SQLite database"));
    }

    #[test]
    fn a_folder_or_a_file_above_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_path(dir.path()).unwrap_err().contains("folder"));
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(check_path(&file.join("state.db"))
            .unwrap_err()
            .contains("is not a folder"));
        assert!(check_path(&dir.path().join("new/state.db")).is_ok());
    }
}

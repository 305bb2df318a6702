//! The run's state folder, shared by the shim (writer) and trainwatch (reader): which process
//! holds the job, how the job ended, or why it could not start. Every file is written whole
//! (temp file + rename), so a reader never sees half a record even if the writer dies.
//! Also the `/proc` probes that tell a live process from a reused PID or a zombie.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::contain::Containment;
use super::ExecError;
use crate::model::ExitOutcome;

/// Written by the shim once the job has started.
pub(crate) const JOB_FILE: &str = "job.json";
/// Written by the shim when the job's main process has ended.
pub(crate) const EXIT_FILE: &str = "exit.json";
/// Written by the shim when the job could not be started at all.
pub(crate) const SPAWN_ERROR_FILE: &str = "spawn-error.json";
/// The shim's own diagnostics (its stderr).
pub(crate) const SHIM_LOG: &str = "shim.log";

/// Who holds the job. PIDs come with their kernel start times so a later reader can tell
/// the original process from an unrelated one that got the same PID after a reboot or wrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobRecord {
    /// The job's PID; also its process group and session id (the job calls setsid).
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks since boot).
    pub starttime: u64,
    pub shim_pid: u32,
    pub shim_starttime: u64,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub argv: Vec<String>,
    pub log: PathBuf,
    /// How the job's processes are held together (older records: the subreaper).
    #[serde(default)]
    pub containment: Containment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExitRecord {
    pub outcome: ExitOutcome,
    pub ended_at_ms: u64,
    /// Processes of the job still running when its main process ended (the shim then
    /// ends them: see `shim`).
    #[serde(default)]
    pub lingering: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SpawnErrorRecord {
    pub message: String,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Write `value` as `dir/name` atomically: a reader sees the old file, or the new one whole.
pub(crate) fn write_atomic<T: Serialize>(dir: &Path, name: &str, value: &T) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    let mut f = fs::File::create(&tmp)?;
    f.write_all(&body)?;
    // The record must survive a power cut as well as a crash: it is the only trace of
    // how a long job ended.
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(name))
}

/// Read `dir/name`; `None` when it does not exist.
pub(crate) fn read<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>, ExecError> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ExecError::State(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ExecError::io(format!("reading {}", path.display()), e)),
    }
}

/// The few fields of `/proc/<pid>/stat` we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub starttime: u64,
}

impl ProcStat {
    /// A zombie or dead entry is a process that has ended but is not yet reaped.
    pub fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parse a `/proc/<pid>/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); field N is fields[N - 3].
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        starttime: fields.get(19)?.parse().ok()?,
    })
}

pub(crate) fn proc_stat(pid: u32) -> Option<ProcStat> {
    let line = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&line)
}

/// True when `pid` is a live (not zombie) process started at `starttime`.
pub(crate) fn is_alive(pid: u32, starttime: u64) -> bool {
    proc_stat(pid).is_some_and(|s| s.is_live() && s.starttime == starttime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgrp, 4242);
        assert_eq!(s.starttime, 987654);
        assert!(s.is_live());
        let z = parse_stat("7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0").unwrap();
        assert!(!z.is_live());
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S"), None);
    }

    #[test]
    fn records_written_before_containment_was_recorded_still_read() {
        let job: JobRecord = serde_json::from_str(
            r#"{"pid":5,"starttime":1,"shim_pid":4,"shim_starttime":1,"started_at_ms":0,"argv":["x"],"log":"l"}"#,
        )
        .unwrap();
        assert_eq!(job.containment, Containment::Subreaper);
        let exit: ExitRecord = serde_json::from_str(r#"{"outcome":{"code":0},"ended_at_ms":3}"#).unwrap();
        assert!(exit.lingering.is_empty());
    }

    #[test]
    fn records_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let rec = ExitRecord {
            outcome: ExitOutcome::Signal(11),
            ended_at_ms: 5,
            lingering: vec![42],
        };
        write_atomic(dir.path(), EXIT_FILE, &rec).unwrap();
        assert_eq!(read::<ExitRecord>(dir.path(), EXIT_FILE).unwrap(), Some(rec));
        assert_eq!(read::<ExitRecord>(dir.path(), JOB_FILE).unwrap(), None);
        fs::write(dir.path().join(JOB_FILE), b"{not json").unwrap();
        assert!(matches!(
            read::<JobRecord>(dir.path(), JOB_FILE),
            Err(ExecError::State(_))
        ));
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2);
    }
}

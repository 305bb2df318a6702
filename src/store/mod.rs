//! The store: one SQLite file holding what must survive a restart of trainwatch — each
//! job's engine state and log position, the history of runs, attempts and incidents, the
//! audit log of every decision (append-only), and the outbox of chat messages.
//!
//! Writes for one engine step go in one transaction, so a crash leaves either the state
//! before the event or the state after it, never half of each.
//!
//! A supervisor opens its store with [`Store::open_to_supervise`], which refuses a store it
//! could not write (read-only, not a database, no space) with the path and the reason. While
//! it runs, every commit first checks that the path still names the file it opened (device
//! and inode): a store deleted or replaced under it is re-created, never written blindly
//! into an unlinked file. Write faults are the [`pending`] writer's: it holds what could not
//! be written, in bounded memory, and retries with backoff.

mod lock;
mod outbox;
pub mod pending;
mod report_threads;
mod usable;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use thiserror::Error;

use crate::engine::{Action, JobState, Record};
use crate::model::{ExitOutcome, JobName, ProcessId};

pub use lock::{lock_path_of, Holder, LockError, SupervisorLock, SupervisorLocks};
pub use outbox::{OutboxEntry, OutboxItem, OutboxKind};
pub use usable::{free_bytes, io_why as plain_io_error, MIN_FREE_BYTES};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the store {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the store's folder {path}: {source}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("store: corrupt record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the store {path} was written by a newer trainwatch (schema {found}, this one knows {known})")]
    Schema { path: PathBuf, found: i64, known: i64 },
    /// The store cannot be supervised from: `why` says what is wrong, in plain words.
    #[error("the store {path} cannot be used: {why}")]
    Unusable { path: PathBuf, why: String },
}

impl StoreError {
    /// What went wrong, in plain words (for the chat): the SQLite or I/O cause's own words
    /// when there is one, with what it means for a store.
    pub fn why(&self) -> String {
        match self {
            StoreError::Sql(e) | StoreError::Open { source: e, .. } => usable::sql_why(e),
            StoreError::Folder { source, .. } => usable::io_why(source),
            StoreError::Unusable { why, .. } => why.clone(),
            other => other.to_string(),
        }
    }
}

/// 2: an attempt records what its number is (`process`: a local PID or a Slurm job id).
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job TEXT PRIMARY KEY,
    state TEXT NOT NULL,          -- engine JobState, JSON
    follow TEXT,                  -- log follower position, JSON
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    job TEXT NOT NULL, run INTEGER NOT NULL,
    started_at TEXT NOT NULL, started_by TEXT NOT NULL,
    ended_at TEXT, state TEXT NOT NULL, detail TEXT,
    PRIMARY KEY (job, run)
);
CREATE TABLE IF NOT EXISTS attempts (
    job TEXT NOT NULL, run INTEGER NOT NULL, attempt INTEGER NOT NULL,
    pid INTEGER NOT NULL, started_at TEXT NOT NULL, checkpoint TEXT,
    ended_at TEXT, outcome TEXT,
    process TEXT NOT NULL DEFAULT 'local', -- what pid is: 'local' (a PID) or 'slurm' (a job id)
    PRIMARY KEY (job, run, attempt)
);
CREATE TABLE IF NOT EXISTS incidents (
    job TEXT NOT NULL, run INTEGER NOT NULL, seq INTEGER NOT NULL,
    at TEXT NOT NULL, category TEXT NOT NULL, severity TEXT NOT NULL,
    line INTEGER NOT NULL, text TEXT NOT NULL, excerpt TEXT NOT NULL, count INTEGER NOT NULL,
    resolution TEXT, resolved_by TEXT, resolved_at TEXT,
    PRIMARY KEY (job, run, seq)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, job TEXT NOT NULL, run INTEGER,
    action TEXT NOT NULL, actor_id TEXT NOT NULL, actor TEXT NOT NULL,
    accepted INTEGER NOT NULL, detail TEXT NOT NULL
);
-- The audit log is never rewritten.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    channel TEXT NOT NULL,
    job TEXT NOT NULL, run INTEGER NOT NULL, key TEXT NOT NULL,
    kind TEXT NOT NULL,           -- post | update | resolve
    payload TEXT NOT NULL,        -- JSON
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (channel, id) WHERE sent_at IS NULL;
CREATE TABLE IF NOT EXISTS posted (
    job TEXT NOT NULL, run INTEGER NOT NULL, key TEXT NOT NULL,
    channel TEXT NOT NULL, message_id TEXT NOT NULL,
    PRIMARY KEY (job, run, key)
);
"#;

/// A handle on the store file.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Device and inode of the file opened: a different pair (or none) at `path` means the
    /// store was deleted or replaced under us.
    identity: Option<FileId>,
    /// How many times the store file was re-created after being deleted or replaced.
    generation: u64,
}

/// Device and inode of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// One engine step's facts, as held until written: the history it recorded and the chat
/// messages it queued, at the step's time.
#[derive(Debug, Clone, PartialEq)]
pub struct StepWrite {
    pub at: DateTime<Utc>,
    pub records: Vec<Record>,
    pub outbox: Vec<OutboxItem>,
}

/// What a job is now, written with every commit: only the newest matters.
#[derive(Debug, Clone, Copy)]
pub struct JobNow<'a> {
    pub at: DateTime<Utc>,
    pub state: &'a JobState,
    pub follow: Option<&'a serde_json::Value>,
}

/// One run as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub job: String,
    pub run: u32,
    pub started_at: String,
    pub started_by: String,
    pub ended_at: Option<String>,
    pub state: String,
    pub detail: Option<String>,
    pub attempts: Vec<AttemptRow>,
    pub incidents: Vec<IncidentRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub attempt: u32,
    pub pid: ProcessId,
    pub started_at: String,
    pub checkpoint: Option<String>,
    pub ended_at: Option<String>,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentRow {
    pub seq: u32,
    pub at: String,
    pub category: String,
    pub severity: String,
    pub line: u64,
    pub text: String,
    pub count: u32,
    pub resolution: Option<String>,
    pub resolved_by: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub job: String,
    pub run: Option<u32>,
    pub action: String,
    pub actor_id: String,
    pub actor: String,
    pub accepted: bool,
    pub detail: String,
}

impl Store {
    /// Open (creating when needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // WAL: readers (`trainwatch status`) never block the supervisor.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(report_threads::SCHEMA)?;
        let found: Option<i64> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .and_then(|v| v.parse().ok());
        match found {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::Schema {
                    path: path.to_path_buf(),
                    found: v,
                    known: SCHEMA_VERSION,
                })
            }
            Some(1) => {
                // Schema 1 stored every attempt's number as a PID: they were all local then
                // (the column's default).
                conn.execute_batch(
                    "ALTER TABLE attempts ADD COLUMN process TEXT NOT NULL DEFAULT 'local';
                     UPDATE meta SET value = '2' WHERE key = 'schema';",
                )?;
            }
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )?;
            }
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            identity: file_id(path),
            generation: 0,
        })
    }

    /// Open the store a supervisor will write to, refusing one it could not use: a folder
    /// or a read-only file or folder, a file that is not a SQLite database, a file system
    /// without room. The error names the path and says why.
    pub fn open_to_supervise(path: &Path) -> Result<Store, StoreError> {
        let unusable = |why: String| StoreError::Unusable {
            path: path.to_path_buf(),
            why,
        };
        usable::check_path(path).map_err(unusable)?;
        let store = Store::open(path).map_err(|e| unusable(e.why()))?;
        usable::probe_write(&store.conn).map_err(|e| unusable(usable::sql_why(&e)))?;
        usable::check_room(path).map_err(unusable)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved engine state and log position of a job.
    pub fn load_job(
        &self,
        job: &JobName,
    ) -> Result<Option<(JobState, Option<serde_json::Value>)>, StoreError> {
        let row: Option<(String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT state, follow FROM jobs WHERE job = ?1",
                params![job.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((state, follow)) => {
                let state = JobState::from_stored(&state)?;
                let follow = follow.map(|f| serde_json::from_str(&f)).transpose()?;
                Ok(Some((state, follow)))
            }
        }
    }

    /// Persist one engine step: the facts it recorded, then its new state and log position,
    /// in one transaction.
    pub fn commit_step(
        &mut self,
        job: &JobName,
        at: DateTime<Utc>,
        actions: &[Action],
        state: &JobState,
        follow: Option<&serde_json::Value>,
        outbox: &[OutboxItem],
    ) -> Result<(), StoreError> {
        let step = StepWrite {
            at,
            records: actions
                .iter()
                .filter_map(|a| match a {
                    Action::Record(r) => Some(r.clone()),
                    _ => None,
                })
                .collect(),
            outbox: outbox.to_vec(),
        };
        self.commit(job, std::slice::from_ref(&step), JobNow { at, state, follow })?;
        Ok(())
    }

    /// Persist steps held in order, then the job's state as it is now, in one transaction.
    /// First checks that the path still names the file opened; if it was deleted or
    /// replaced, a new store is created there (see [`Store::generation`]) and these writes
    /// go to it. Returns the generation written to.
    pub fn commit(&mut self, job: &JobName, steps: &[StepWrite], now: JobNow<'_>) -> Result<u64, StoreError> {
        let recreated = self.ensure_same_file()?;
        let tx = self.conn.transaction()?;
        if recreated {
            restore_run(&tx, job, now.state)?;
        }
        for step in steps {
            for item in &step.outbox {
                outbox::insert(&tx, step.at, job, item)?;
            }
            for record in &step.records {
                write_record(&tx, job, step.at, record)?;
            }
        }
        let state = serde_json::to_string(now.state)?;
        let follow = now.follow.map(serde_json::to_string).transpose()?;
        tx.execute(
            "INSERT INTO jobs (job, state, follow, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(job) DO UPDATE SET state = excluded.state,
                 follow = COALESCE(excluded.follow, jobs.follow), updated_at = excluded.updated_at",
            params![job.as_str(), state, follow, ts(now.at)],
        )?;
        tx.commit()?;
        Ok(self.generation)
    }

    /// How many times the store file was re-created after it was deleted or replaced while
    /// open (0: never).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Re-create the store when its path no longer names the file we opened; true if it did.
    fn ensure_same_file(&mut self) -> Result<bool, StoreError> {
        let now = file_id(&self.path);
        if now.is_some() && now == self.identity {
            return Ok(false);
        }
        tracing::error!(path = %self.path.display(), "the store file was deleted or replaced; creating a new one");
        let mut fresh = Store::open(&self.path)?;
        fresh.generation = self.generation + 1;
        *self = fresh;
        Ok(true)
    }

    /// Runs (newest first), with their attempts and incidents; all jobs or one.
    pub fn runs(&self, job: Option<&str>, limit: usize) -> Result<Vec<RunRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT job, run, started_at, started_by, ended_at, state, detail FROM runs
             WHERE (?1 IS NULL OR job = ?1) ORDER BY started_at DESC, job, run DESC LIMIT ?2",
        )?;
        let mut runs: Vec<RunRow> = stmt
            .query_map(params![job, limit as i64], |r| {
                Ok(RunRow {
                    job: r.get(0)?,
                    run: r.get(1)?,
                    started_at: r.get(2)?,
                    started_by: r.get(3)?,
                    ended_at: r.get(4)?,
                    state: r.get(5)?,
                    detail: r.get(6)?,
                    attempts: Vec::new(),
                    incidents: Vec::new(),
                })
            })?
            .collect::<Result<_, _>>()?;
        for run in &mut runs {
            let mut a = self.conn.prepare(
                "SELECT attempt, pid, started_at, checkpoint, ended_at, outcome, process FROM attempts
                 WHERE job = ?1 AND run = ?2 ORDER BY attempt",
            )?;
            run.attempts = a
                .query_map(params![run.job, run.run], |r| {
                    Ok(AttemptRow {
                        attempt: r.get(0)?,
                        pid: process_id(r.get(1)?, &r.get::<_, String>(6)?),
                        started_at: r.get(2)?,
                        checkpoint: r.get(3)?,
                        ended_at: r.get(4)?,
                        outcome: r.get(5)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut i = self.conn.prepare(
                "SELECT seq, at, category, severity, line, text, count, resolution, resolved_by FROM incidents
                 WHERE job = ?1 AND run = ?2 ORDER BY seq",
            )?;
            run.incidents = i
                .query_map(params![run.job, run.run], |r| {
                    Ok(IncidentRow {
                        seq: r.get(0)?,
                        at: r.get(1)?,
                        category: r.get(2)?,
                        severity: r.get(3)?,
                        line: r.get(4)?,
                        text: r.get(5)?,
                        count: r.get(6)?,
                        resolution: r.get(7)?,
                        resolved_by: r.get(8)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
        }
        Ok(runs)
    }

    /// The audit log, oldest first; all jobs or one.
    pub fn audit(&self, job: Option<&str>) -> Result<Vec<AuditRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at, job, run, action, actor_id, actor, accepted, detail FROM audit
             WHERE (?1 IS NULL OR job = ?1) ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![job], |r| {
                Ok(AuditRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    job: r.get(2)?,
                    run: r.get(3)?,
                    action: r.get(4)?,
                    actor_id: r.get(5)?,
                    actor: r.get(6)?,
                    accepted: r.get::<_, i64>(7)? != 0,
                    detail: r.get(8)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Names of the jobs the store has state for.
    pub fn jobs(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT job FROM jobs ORDER BY job")?;
        let rows = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub(crate) fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn outcome_text(o: &ExitOutcome) -> String {
    o.to_string()
}

/// Into a re-created store, what the engine's state still holds of the run under way: the
/// run, its current attempt and its incidents (so `status` and the run's end find them).
fn restore_run(tx: &rusqlite::Transaction<'_>, job: &JobName, state: &JobState) -> Result<(), StoreError> {
    let Some(run) = &state.run else {
        return Ok(());
    };
    tx.execute(
        "INSERT OR IGNORE INTO runs (job, run, started_at, started_by, state) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            job.as_str(),
            run.id.0,
            ts(run.started_at),
            run.started_by,
            run.phase.as_str()
        ],
    )?;
    if run.attempt > 0 {
        tx.execute(
            "INSERT OR IGNORE INTO attempts (job, run, attempt, pid, started_at, process) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                job.as_str(),
                run.id.0,
                run.attempt,
                run.pid.unwrap_or_default().number(),
                ts(run.attempt_started_at),
                process_kind(run.pid.unwrap_or_default())
            ],
        )?;
    }
    for entry in &run.incidents {
        let record = Record::Incident {
            run: run.id,
            seq: entry.seq,
            incident: entry.incident.clone(),
        };
        write_record(tx, job, entry.at, &record)?;
    }
    Ok(())
}

/// How an attempt's process is stored: its number, and what the number is.
fn process_kind(pid: ProcessId) -> &'static str {
    match pid {
        ProcessId::Local(_) => "local",
        ProcessId::Slurm { .. } => "slurm",
    }
}

/// The attempt's process from its stored number and kind (see [`process_kind`]).
fn process_id(number: u64, kind: &str) -> ProcessId {
    match kind {
        "slurm" => ProcessId::Slurm { slurm_job: number },
        _ => ProcessId::Local(u32::try_from(number).unwrap_or_default()),
    }
}

fn write_record(
    tx: &rusqlite::Transaction<'_>,
    job: &JobName,
    at: DateTime<Utc>,
    record: &Record,
) -> Result<(), StoreError> {
    let job = job.as_str();
    match record {
        Record::RunStarted { run, by } => {
            tx.execute(
                "INSERT OR REPLACE INTO runs (job, run, started_at, started_by, state) VALUES (?1, ?2, ?3, ?4, 'running')",
                params![job, run.0, ts(at), by],
            )?;
        }
        Record::AttemptStarted {
            run,
            attempt,
            pid,
            checkpoint,
        } => {
            tx.execute(
                "INSERT OR REPLACE INTO attempts (job, run, attempt, pid, started_at, checkpoint, process) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![job, run.0, attempt, pid.number(), ts(at), checkpoint.as_ref().map(|c| c.display().to_string()), process_kind(*pid)],
            )?;
        }
        Record::AttemptEnded {
            run,
            attempt,
            outcome,
        } => {
            tx.execute(
                "UPDATE attempts SET ended_at = ?4, outcome = ?5 WHERE job = ?1 AND run = ?2 AND attempt = ?3",
                params![job, run.0, attempt, ts(at), outcome_text(outcome)],
            )?;
        }
        Record::Incident { run, seq, incident } => {
            // An incident is written when found and again when more evidence arrives; its
            // resolution (written separately) is kept.
            tx.execute(
                "INSERT INTO incidents (job, run, seq, at, category, severity, line, text, excerpt, count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(job, run, seq) DO UPDATE SET category = excluded.category,
                     severity = excluded.severity, line = excluded.line, text = excluded.text,
                     excerpt = excluded.excerpt, count = excluded.count",
                params![
                    job,
                    run.0,
                    seq,
                    ts(at),
                    incident.category.as_str(),
                    incident.severity.as_str(),
                    incident.line as i64,
                    incident.text,
                    serde_json::to_string(&incident.excerpt)?,
                    incident.count
                ],
            )?;
        }
        Record::IncidentResolved {
            run,
            seq,
            resolution,
            by,
        } => {
            tx.execute(
                "UPDATE incidents SET resolution = ?4, resolved_by = ?5, resolved_at = ?6 WHERE job = ?1 AND run = ?2 AND seq = ?3",
                params![job, run.0, seq, resolution, by, ts(at)],
            )?;
        }
        Record::Decision {
            run,
            decision,
            by,
            accepted,
            detail,
        } => {
            tx.execute(
                "INSERT INTO audit (at, job, run, action, actor_id, actor, accepted, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![ts(at), job, run.map(|r| r.0), decision, by.id, by.display, *accepted as i64, detail],
            )?;
        }
        Record::RunEnded { run, state, detail } => {
            tx.execute(
                "UPDATE runs SET ended_at = ?3, state = ?4, detail = ?5 WHERE job = ?1 AND run = ?2",
                params![job, run.0, ts(at), state, detail],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

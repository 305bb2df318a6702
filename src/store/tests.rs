//! The store's promises: a step commits state, history and audit together; the audit log
//! cannot be rewritten; the outbox keeps order until sent; a newer schema is refused, an older
//! one upgraded.

use chrono::{TimeZone, Utc};

use super::*;
use crate::engine::{Action, JobState, Record};
use crate::model::ProcessId;
use crate::model::{Actor, Category, Incident, JobName, Persona, RunId, Severity};

fn job() -> JobName {
    JobName::new("model_3").unwrap()
}

/// A new message of run 1 for channel c1, under `key`, numbered `n` in its payload.
fn post(key: &str, n: u32) -> OutboxItem {
    OutboxItem {
        channel: "c1".into(),
        run: RunId(1),
        key: key.into(),
        kind: OutboxKind::Post,
        payload: serde_json::json!({ "n": n }),
    }
}

#[test]
fn a_step_persists_state_history_and_audit_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/state.db");
    let at = Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap();
    let state = JobState {
        last_run: 1,
        run: None,
    };
    {
        let mut store = Store::open(&path).unwrap();
        let actions = vec![
            Action::Record(Record::RunStarted {
                run: RunId(1),
                by: "@dana".into(),
            }),
            Action::Record(Record::AttemptStarted {
                run: RunId(1),
                attempt: 1,
                pid: ProcessId::Local(4242),
                checkpoint: None,
            }),
            Action::Record(Record::Incident {
                run: RunId(1),
                seq: 1,
                incident: Incident {
                    category: Category::Resource,
                    severity: Severity::Fatal,
                    line: 88,
                    text: "MemoryError".into(),
                    excerpt: vec!["Traceback (most recent call last):".into(), "MemoryError".into()],
                    count: 1,
                    reason: String::new(),
                },
            }),
            Action::Record(Record::Decision {
                run: Some(RunId(1)),
                decision: "restart".into(),
                by: Actor::user("u1", "@dana", vec![Persona::Director]),
                accepted: true,
                detail: "restarting model_3".into(),
            }),
            Action::Record(Record::IncidentResolved {
                run: RunId(1),
                seq: 1,
                resolution: "restarted".into(),
                by: Some("@dana".into()),
            }),
        ];
        let follow = serde_json::json!({"offset": 1234, "line_no": 88});
        store
            .commit_step(&job(), at, &actions, &state, Some(&follow), &[])
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let (loaded, follow) = store.load_job(&job()).unwrap().unwrap();
    assert_eq!(loaded, state);
    assert_eq!(follow.unwrap()["offset"], 1234);
    let runs = store.runs(Some("model_3"), 10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].attempts[0].pid, ProcessId::Local(4242));
    assert_eq!(runs[0].incidents[0].text, "MemoryError");
    assert_eq!(runs[0].incidents[0].resolution.as_deref(), Some("restarted"));
    let audit = store.audit(None).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "@dana");
    assert!(audit[0].accepted);
}

#[test]
fn the_audit_log_cannot_be_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    let at = Utc::now();
    let actions = vec![Action::Record(Record::Decision {
        run: None,
        decision: "start".into(),
        by: Actor::user("u1", "@eve", vec![]),
        accepted: false,
        detail: "no role".into(),
    })];
    store
        .commit_step(&job(), at, &actions, &JobState::default(), None, &[])
        .unwrap();
    assert!(store.conn().execute("UPDATE audit SET accepted = 1", []).is_err());
    assert!(store.conn().execute("DELETE FROM audit", []).is_err());
    assert_eq!(store.audit(Some("model_3")).unwrap().len(), 1);
}

#[test]
fn outbox_keeps_order_until_marked_sent_and_remembers_message_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    let at = Utc::now();
    let a = store.enqueue(at, &job(), &post("started", 1)).unwrap();
    let b = store.enqueue(at, &job(), &post("incident-1", 2)).unwrap();
    let pending = store.pending(10).unwrap();
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), vec![a, b]);
    store.mark_failed(a, "503").unwrap();
    assert_eq!(store.pending(10).unwrap()[0].attempts, 1);
    store.mark_sent(a, at, Some("9001")).unwrap();
    assert_eq!(store.pending(10).unwrap().len(), 1);
    assert_eq!(
        store.posted("model_3", 1, "started").unwrap(),
        Some(("c1".into(), "9001".into()))
    );
    // Survives reopening.
    drop(store);
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    assert_eq!(store.pending(10).unwrap()[0].id, b);
}

#[test]
fn a_store_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = Store::open(&path).unwrap();
    store
        .conn()
        .execute("UPDATE meta SET value = '99' WHERE key = 'schema'", [])
        .unwrap();
    drop(store);
    let err = Store::open(&path).err().unwrap();
    assert!(err.to_string().contains("newer trainwatch"), "{err}");
}

/// An attempt says what its number is — a PID or a Slurm job id — and a store written by the
/// schema before that (every attempt a local PID) is upgraded in place, its attempts kept.
#[test]
fn an_attempt_keeps_what_its_number_is_and_an_older_store_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let at = Utc.with_ymd_and_hms(2026, 12, 2, 8, 0, 0).unwrap();
    let state = JobState {
        last_run: 1,
        run: None,
    };
    let attempt = |attempt, pid| {
        Action::Record(Record::AttemptStarted {
            run: RunId(1),
            attempt,
            pid,
            checkpoint: None,
        })
    };
    {
        let mut store = Store::open(&path).unwrap();
        let actions = vec![
            Action::Record(Record::RunStarted {
                run: RunId(1),
                by: "@dana".into(),
            }),
            attempt(1, ProcessId::Local(4242)),
            attempt(2, ProcessId::Slurm { slurm_job: 17 }),
        ];
        store
            .commit_step(&job(), at, &actions, &state, None, &[])
            .unwrap();
    }
    let runs = Store::open(&path).unwrap().runs(None, 10).unwrap();
    let pids: Vec<_> = runs[0].attempts.iter().map(|a| a.pid).collect();
    assert_eq!(pids, [ProcessId::Local(4242), ProcessId::Slurm { slurm_job: 17 }]);
    assert_eq!(pids[1].to_string(), "Slurm job 17");

    // The same store as schema 1 wrote it: no `process` column, schema '1'.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DELETE FROM attempts WHERE attempt = 2;
             ALTER TABLE attempts DROP COLUMN process;
             UPDATE meta SET value = '1' WHERE key = 'schema';",
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let runs = store.runs(None, 10).unwrap();
    assert_eq!(runs[0].attempts[0].pid, ProcessId::Local(4242));
    let schema: String = store
        .conn()
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(schema, SCHEMA_VERSION.to_string());
}

fn step_now(state: &JobState) -> JobNow<'_> {
    JobNow {
        at: Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap(),
        state,
        follow: None,
    }
}

#[test]
fn a_store_deleted_while_open_is_re_created_and_written_to_not_the_unlinked_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut store = Store::open(&path).unwrap();
    let state = JobState {
        last_run: 3,
        run: None,
    };
    assert_eq!(store.commit(&job(), &[], step_now(&state)).unwrap(), 0);
    std::fs::remove_file(&path).unwrap();
    let _ = std::fs::remove_file(dir.path().join("state.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("state.db-shm"));
    assert_eq!(store.commit(&job(), &[], step_now(&state)).unwrap(), 1);
    assert_eq!(store.generation(), 1);
    // What was written is in the file at the path, for the next supervisor.
    let again = Store::open(&path).unwrap();
    assert_eq!(again.load_job(&job()).unwrap().unwrap().0.last_run, 3);
    // A file put in its place is no longer ours either.
    drop(again);
    std::fs::rename(&path, dir.path().join("moved.db")).unwrap();
    Store::open(&path).unwrap();
    assert_eq!(store.commit(&job(), &[], step_now(&state)).unwrap(), 2);
}

#[test]
fn a_supervisor_refuses_a_store_that_is_not_a_database_or_is_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("notes.txt");
    std::fs::write(&junk, "these are my notes, not a database\n".repeat(200)).unwrap();
    let e = Store::open_to_supervise(&junk)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("notes.txt") && e.contains("not a SQLite database"),
        "{e}"
    );
    let e = Store::open_to_supervise(dir.path())
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("is a folder"), "{e}");
    assert!(Store::open_to_supervise(&dir.path().join("ok/state.db")).is_ok());
}

//! Where an investigation request of a run goes in the chat: the latest report of the run
//! that offers decisions, and the thread opened under it once there is one. Kept in the
//! store so that after a restart of trainwatch a request still joins that report's thread
//! instead of landing loose in the channel. The store keeps the report's key as the chat
//! adapter gives it (opaque here).

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS report_threads (
    job TEXT NOT NULL, run INTEGER NOT NULL,
    report TEXT NOT NULL,         -- the latest report with decisions (message key)
    thread TEXT,                  -- the chat's thread under it, once started
    PRIMARY KEY (job, run)
);
"#;

impl Store {
    /// `report` is now the run's latest report with decisions (its thread, if any, was
    /// under the previous one and is forgotten).
    pub fn set_latest_report(&mut self, job: &str, run: u32, report: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO report_threads (job, run, report) VALUES (?1, ?2, ?3)
             ON CONFLICT (job, run) DO UPDATE SET report = excluded.report,
                 thread = CASE WHEN report = excluded.report THEN thread END",
            params![job, run, report],
        )?;
        Ok(())
    }

    /// The run's latest report with decisions, and its thread if one was started.
    pub fn latest_report(
        &mut self,
        job: &str,
        run: u32,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT report, thread FROM report_threads WHERE job = ?1 AND run = ?2",
                params![job, run],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// The thread started under `report` (ignored if `report` is no longer the latest).
    pub fn set_report_thread(
        &mut self,
        job: &str,
        run: u32,
        report: &str,
        thread: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE report_threads SET thread = ?4 WHERE job = ?1 AND run = ?2 AND report = ?3",
            params![job, run, report, thread],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reports_thread_is_kept_until_a_newer_report_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.latest_report("m", 1).unwrap(), None);
        s.set_latest_report("m", 1, "incident-1").unwrap();
        s.set_report_thread("m", 1, "incident-1", "77").unwrap();
        s.set_latest_report("m", 1, "incident-1").unwrap();
        drop(s);
        let mut s = Store::open(&path).unwrap();
        assert_eq!(
            s.latest_report("m", 1).unwrap(),
            Some(("incident-1".into(), Some("77".into()))),
            "survives reopening; the same report keeps its thread"
        );
        s.set_latest_report("m", 1, "timeout-1").unwrap();
        assert_eq!(s.latest_report("m", 1).unwrap(), Some(("timeout-1".into(), None)));
        s.set_report_thread("m", 1, "incident-1", "78").unwrap();
        assert_eq!(
            s.latest_report("m", 1).unwrap(),
            Some(("timeout-1".into(), None)),
            "a thread for an older report changes nothing"
        );
        assert_eq!(s.latest_report("m", 2).unwrap(), None, "per run");
    }
}

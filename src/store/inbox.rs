//! The inbox: commands sent from another terminal (`trainwatch send`) to the supervisor
//! that runs the job, through the store they share. The sender writes a row and waits; the
//! supervisor takes it, runs it as the sender (their OS login, with the personas the
//! config gives it) and writes the answers back. This is how a second person approves a
//! fix at a console: four eyes need two logins.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{ts, Store, StoreError};
use crate::engine::{Command, Reply};
use crate::model::{Actor, JobName};

/// A command waiting for the supervisor.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEntry {
    pub id: i64,
    pub job: JobName,
    pub command: Command,
    pub by: Actor,
}

impl Store {
    /// Queue a command for the supervisor of `job`; returns its id.
    pub fn inbox_push(
        &mut self,
        at: DateTime<Utc>,
        job: &JobName,
        command: &Command,
        by: &Actor,
    ) -> Result<i64, StoreError> {
        self.conn().execute(
            "INSERT INTO inbox (at, job, command, actor) VALUES (?1, ?2, ?3, ?4)",
            params![
                ts(at),
                job.as_str(),
                serde_json::to_string(command)?,
                serde_json::to_string(by)?
            ],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    /// Take the commands nobody has taken yet (oldest first), marking them taken.
    pub fn inbox_take(&mut self, at: DateTime<Utc>, jobs: &[JobName]) -> Result<Vec<InboxEntry>, StoreError> {
        let tx = self.conn().transaction()?;
        let mut out = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT id, job, command, actor FROM inbox WHERE taken_at IS NULL ORDER BY id LIMIT 32",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (id, job, command, actor) in rows {
                // Another supervisor (other jobs, same store) may own it.
                let Some(job) = jobs.iter().find(|j| j.as_str() == job) else {
                    continue;
                };
                tx.execute(
                    "UPDATE inbox SET taken_at = ?2 WHERE id = ?1",
                    params![id, ts(at)],
                )?;
                let parsed = serde_json::from_str::<Command>(&command)
                    .and_then(|c| serde_json::from_str::<Actor>(&actor).map(|a| (c, a)));
                match parsed {
                    Ok((command, by)) => out.push(InboxEntry {
                        id,
                        job: job.clone(),
                        command,
                        by,
                    }),
                    Err(e) => {
                        let reply = vec![Reply {
                            to: Actor::user("", "", vec![]),
                            accepted: false,
                            text: format!("unreadable command: {e}"),
                        }];
                        tx.execute(
                            "UPDATE inbox SET reply = ?2, done_at = ?3 WHERE id = ?1",
                            params![id, serde_json::to_string(&reply)?, ts(at)],
                        )?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Answer a taken command.
    pub fn inbox_reply(&mut self, id: i64, at: DateTime<Utc>, replies: &[Reply]) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE inbox SET reply = ?2, done_at = ?3 WHERE id = ?1",
            params![id, serde_json::to_string(replies)?, ts(at)],
        )?;
        Ok(())
    }

    /// The answers to command `id`, once the supervisor has given them; and whether anyone took it.
    pub fn inbox_answer(&mut self, id: i64) -> Result<(bool, Option<Vec<Reply>>), StoreError> {
        let row: Option<(Option<String>, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT taken_at, reply FROM inbox WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            None => Ok((false, None)),
            Some((taken, reply)) => {
                let replies = reply
                    .map(|r| serde_json::from_str::<Vec<Reply>>(&r))
                    .transpose()?;
                Ok((taken.is_some(), replies))
            }
        }
    }

    /// Withdraw a command nobody took (the sender gave up waiting).
    pub fn inbox_withdraw(&mut self, id: i64) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM inbox WHERE id = ?1 AND taken_at IS NULL",
            params![id],
        )?;
        Ok(n == 1)
    }
}

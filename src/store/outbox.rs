//! The outbox: every chat message is written here before it is sent and marked sent once
//! the chat accepted it, so an outage or a crash of trainwatch loses nothing and sends
//! nothing twice. Order is kept per channel: entries go out in id order.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{ts, Store, StoreError};
use crate::model::{JobName, RunId};

/// What an outbox entry asks the chat to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    /// Post a new message.
    Post,
    /// Replace a posted message's content.
    Update,
    /// Close a posted report's decision (disable its buttons, add a note).
    Resolve,
}

impl OutboxKind {
    fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Post => "post",
            OutboxKind::Update => "update",
            OutboxKind::Resolve => "resolve",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "post" => Some(OutboxKind::Post),
            "update" => Some(OutboxKind::Update),
            "resolve" => Some(OutboxKind::Resolve),
            _ => None,
        }
    }
}

/// A message waiting to be delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub id: i64,
    pub channel: String,
    pub job: String,
    pub run: u32,
    pub key: String,
    pub kind: OutboxKind,
    pub payload: serde_json::Value,
    pub attempts: u32,
}

/// A message to queue, produced by an engine step: where it goes, which report it is
/// (`run`, `key`), what to do, and the chat adapter's payload, opaque to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub channel: String,
    pub run: RunId,
    pub key: String,
    pub kind: OutboxKind,
    pub payload: serde_json::Value,
}

pub(super) fn insert(
    tx: &rusqlite::Transaction<'_>,
    at: DateTime<Utc>,
    job: &JobName,
    item: &OutboxItem,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO outbox (created_at, channel, job, run, key, kind, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            ts(at),
            item.channel,
            job.as_str(),
            item.run.0,
            item.key,
            item.kind.as_str(),
            serde_json::to_string(&item.payload)?
        ],
    )?;
    Ok(())
}

impl Store {
    /// Queue a message outside an engine step; returns its outbox id.
    pub fn enqueue(
        &mut self,
        at: DateTime<Utc>,
        job: &JobName,
        item: &OutboxItem,
    ) -> Result<i64, StoreError> {
        let tx = self.conn().transaction()?;
        insert(&tx, at, job, item)?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// Unsent entries, oldest first (all channels).
    pub fn pending(&mut self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT id, channel, job, run, key, kind, payload, attempts FROM outbox
             WHERE sent_at IS NULL ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt
            .query_map(params![limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, u32>(7)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, channel, job, run, key, kind, payload, attempts) in rows {
            let Some(kind) = OutboxKind::parse(&kind) else {
                continue;
            };
            out.push(OutboxEntry {
                id,
                channel,
                job,
                run,
                key,
                kind,
                payload: serde_json::from_str(&payload)?,
                attempts,
            });
        }
        Ok(out)
    }

    /// The chat accepted entry `id`; for a post, remember the chat's message id so later
    /// updates can edit it.
    pub fn mark_sent(
        &mut self,
        id: i64,
        at: DateTime<Utc>,
        message_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let tx = self.conn().transaction()?;
        tx.execute(
            "UPDATE outbox SET sent_at = ?2 WHERE id = ?1",
            params![id, ts(at)],
        )?;
        if let Some(mid) = message_id {
            tx.execute(
                "INSERT OR REPLACE INTO posted (job, run, key, channel, message_id)
                 SELECT job, run, key, channel, ?2 FROM outbox WHERE id = ?1",
                params![id, mid],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A delivery attempt failed; it stays queued.
    pub fn mark_failed(&mut self, id: i64, error: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// Give up on an entry that can never be delivered (e.g. the chat rejects it as invalid):
    /// marked sent with the error kept, so it does not block its channel forever.
    pub fn mark_abandoned(&mut self, id: i64, at: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE outbox SET sent_at = ?2, last_error = ?3, attempts = attempts + 1 WHERE id = ?1",
            params![id, ts(at), format!("abandoned: {error}")],
        )?;
        Ok(())
    }

    /// Where a message was posted: (channel, chat message id).
    pub fn posted(&mut self, job: &str, run: u32, key: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT channel, message_id FROM posted WHERE job = ?1 AND run = ?2 AND key = ?3",
                params![job, run, key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }
}

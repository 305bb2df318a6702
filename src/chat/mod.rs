//! Chat: where the protocol's messages go and where decisions come from. One trait for
//! outgoing messages, one language for incoming requests (`request`: console lines, slash
//! commands and buttons parse and validate alike); adapters (console, Discord) do the
//! rendering and the transport. Text that comes from a log is untrusted: `sanitize`
//! neutralises mentions, control characters and secrets before any adapter shows it.

pub mod console;
pub mod discord;
pub mod render;
pub mod request;
pub mod sanitize;

use tokio::sync::oneshot;

use crate::engine::{Command, Message, MessageKey, Reply};
use crate::model::{Actor, JobName, RunId};
use crate::store::{OutboxItem, OutboxKind};

/// A message-level change for the chat.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Post(Message),
    Update(Message),
    Resolve {
        job: JobName,
        run: RunId,
        key: MessageKey,
        note: String,
    },
}

impl Outgoing {
    pub fn job(&self) -> &JobName {
        match self {
            Outgoing::Post(m) | Outgoing::Update(m) => &m.job,
            Outgoing::Resolve { job, .. } => job,
        }
    }

    /// The outbox entry that delivers this change to `channel` with an adapter's `payload`.
    pub fn outbox_item(&self, channel: String, payload: serde_json::Value) -> OutboxItem {
        let (run, key, kind) = match self {
            Outgoing::Post(m) => (m.run, m.key, OutboxKind::Post),
            Outgoing::Update(m) => (m.run, m.key, OutboxKind::Update),
            Outgoing::Resolve { run, key, .. } => (*run, *key, OutboxKind::Resolve),
        };
        OutboxItem {
            channel,
            run,
            key: key.to_string(),
            kind,
            payload,
        }
    }
}

/// Delivery of outgoing messages. Adapters with durable delivery return an outbox entry
/// from `to_outbox`: the supervisor stores it in the same transaction as the engine step
/// that produced it, then calls `wake`. Adapters without (the console) return None and get
/// `deliver` called after the step is committed.
pub trait ChatSink: Send + Sync {
    fn to_outbox(&self, _out: &Outgoing) -> Option<OutboxItem> {
        None
    }
    /// New outbox entries are waiting.
    fn wake(&self) {}
    /// Send `item` (from `to_outbox`) now, ahead of the outbox, because the store cannot take
    /// it yet: a store notice while the store refuses writes. The caller still puts the same
    /// entry in the outbox; the adapter delivers it once, whichever path gets there first.
    fn send_ahead(&self, _job: &JobName, _item: &OutboxItem) {}
    /// Show a message now (adapters without an outbox).
    fn deliver(&self, out: &Outgoing);
}

/// A command from a person (or a script), routed to one job.
#[derive(Debug)]
pub struct Inbound {
    pub job: JobName,
    pub command: Command,
    pub by: Actor,
    /// Where the engine's answers go (ephemeral replies).
    pub reply: oneshot::Sender<Vec<Reply>>,
}

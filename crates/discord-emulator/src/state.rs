//! Shared, lock-protected state of a running emulator: recorded requests, channel message
//! store, registered commands, injected interactions, gateway sessions and pending faults.
//! Every mutation bumps a watch counter so test helpers can wait without polling.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::payloads::ValidationError;
use crate::{EmulatorConfig, Fault, RecordedRequest};

/// Milliseconds between the Unix epoch and Discord's epoch (2015-01-01).
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Orders to one live gateway connection.
#[derive(Debug)]
pub(crate) enum GwControl {
    /// Send this frame as is (already sequenced and validated).
    Frame(Value),
    /// Send a close frame with this code and end the connection.
    Close(u16),
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Send op 7 (reconnect).
    Reconnect,
    /// Send op 9 with `d` = resumable.
    InvalidSession(bool),
}

/// A gateway session (survives connections so it can be resumed).
#[derive(Debug)]
pub(crate) struct Session {
    pub seq: u64,
    /// Dispatches sent in this session, replayed on RESUME after the client's seq.
    pub sent: Vec<Value>,
    /// The connection currently carrying the session, if any.
    pub conn: Option<u64>,
    pub valid: bool,
}

/// One interaction the emulator injected.
#[derive(Debug, Clone)]
pub(crate) struct InteractionRecord {
    pub token: String,
    pub kind: u8,
    pub channel_id: u64,
    /// Message a component interaction was clicked on.
    pub component_message: Option<u64>,
    /// Body of the interaction callback, once the bot answered.
    pub callback: Option<Value>,
    /// Message created by the response (type 4 or 5), `@original`.
    pub original_message: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub requests: Vec<RecordedRequest>,
    /// channel id → messages in creation order (edits applied in place, deletes removed).
    pub messages: HashMap<u64, Vec<Value>>,
    /// Channels that exist: channel id → parent (0 for top-level guild channels).
    pub channels: HashMap<u64, u64>,
    pub faults: Vec<Fault>,
    /// Test rules refusing message bodies (`Emulator::refuse`).
    pub refusals: Vec<crate::Refusal>,
    pub interactions: HashMap<u64, InteractionRecord>,
    pub global_commands: Vec<Value>,
    pub guild_commands: HashMap<u64, Vec<Value>>,
    pub validation_errors: Vec<ValidationError>,
    pub attachments: HashMap<u64, Vec<u8>>,
    pub sessions: HashMap<String, Session>,
    /// The most recently identified session.
    pub current_session: Option<String>,
    pub connections: HashMap<u64, mpsc::UnboundedSender<GwControl>>,
    pub gateway: crate::GatewayStats,
}

pub(crate) struct Shared {
    pub cfg: EmulatorConfig,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    next_id: AtomicU64,
    pub shutdown: watch::Sender<bool>,
    pub gateway_url: Mutex<String>,
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl Shared {
    pub fn new(cfg: EmulatorConfig, tls: Option<std::sync::Arc<rustls::ServerConfig>>) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(DISCORD_EPOCH_MS);
        let base = now_ms.saturating_sub(DISCORD_EPOCH_MS) << 22;
        let mut inner = Inner::default();
        for (id, _) in &cfg.channels {
            inner.channels.insert(*id, 0);
        }
        Self {
            cfg,
            inner: Mutex::new(inner),
            changed: watch::channel(0).0,
            next_id: AtomicU64::new(base),
            shutdown: watch::channel(false).0,
            gateway_url: Mutex::new(String::new()),
            tls,
        }
    }

    /// A fresh, increasing snowflake.
    pub fn snowflake(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Read access without signalling a change.
    pub fn read(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock must not wedge every later test assertion.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mutates the state and wakes waiters.
    pub fn update<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let r = {
            let mut g = self.read();
            f(&mut g)
        };
        self.changed.send_modify(|v| *v += 1);
        r
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    }

    pub fn record_validation(&self, e: ValidationError) {
        tracing::error!(error = %e, "emulator payload rejected by serenity's types");
        self.update(|i| i.validation_errors.push(e));
    }
}

/// Spawns `fut` so that it stops when the emulator shuts down.
pub(crate) fn spawn_scoped<F>(shared: &Shared, fut: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let stop = shared.shutdown_signal();
    tokio::spawn(async move {
        tokio::select! {
            _ = fut => {}
            _ = stop => {}
        }
    });
}

//! A local Discord emulator for testing bots built on serenity 0.12.5: REST and gateway
//! WebSocket on 127.0.0.1, a per-channel message store, interaction injection, fault
//! injection (429, 5xx, dropped connections, gateway disconnects), Discord's refusals (no
//! `DiscordBot` User-Agent: 403; more than 100 allowed mentions: 400; bodies a test names
//! with [`Emulator::refuse`]: 400 Invalid Form Body) and waiting helpers.
//!
//! Two ways to point serenity at it:
//! - [`Emulator::proxy_url`] with `HttpBuilder::new(token).proxy(url).ratelimiter_disabled(true)`
//!   (serenity honours the proxy only with its rate limiter off);
//! - [`Emulator::https_proxy_url`] + [`Emulator::ca_cert_pem`] in a reqwest client given to
//!   `HttpBuilder::client(...)`: the emulator accepts `CONNECT discord.com:443` and
//!   terminates TLS with a test certificate, so serenity's rate limiter stays in the loop.
//!
//! In both cases build the client with `ClientBuilder::new_with_http` after the emulator is
//! started: serenity asks `GET /gateway` for the WebSocket URL, which points here.
//!
//! Every payload the emulator sends is checked against serenity's types when
//! [`EmulatorConfig::validate`] is on (the default in debug builds): gateway frames that
//! would become `Event::Unknown` are refused, REST answers that would not deserialize are
//! recorded in [`Emulator::validation_errors`] and make [`Emulator::shutdown`] fail.
//!
//! ```no_run
//! use std::time::Duration;
//! use discord_emulator::{CommandOpt, EmuUser, Emulator, EmulatorConfig};
//! use serenity::all::{ClientBuilder, GatewayIntents, HttpBuilder};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let emu = Emulator::start(EmulatorConfig::default()).await?;
//! let http = HttpBuilder::new("token").proxy(emu.proxy_url()).ratelimiter_disabled(true).build();
//! let mut client = ClientBuilder::new_with_http(http, GatewayIntents::GUILDS).await?;
//! let shards = client.shard_manager.clone();
//! tokio::spawn(async move { let _ = client.start().await; });
//! emu.wait_ready(Duration::from_secs(10)).await?;
//!
//! let alice = EmuUser::new(42, "alice").with_roles([emu.config().roles[0].0]);
//! let channel = emu.config().channels[0].0;
//! let inj = emu.slash_command(channel, &alice, "status", vec![CommandOpt::string("job", "resnet")])?;
//! let reply = emu.wait_callback(&inj, Duration::from_secs(10)).await?;
//! assert_eq!(reply["data"]["flags"], 64); // the bot answered ephemerally
//!
//! shards.shutdown_all().await;
//! emu.shutdown().await?;
//! # Ok(()) }
//! ```

#![recursion_limit = "256"]
#![warn(missing_docs)]

mod faults;
mod gateway;
mod inject;
pub mod payloads;
mod recorded;
mod refuse;
mod rest;
mod server;
mod state;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use faults::{Fault, FaultKind};
pub use inject::{CommandOpt, InjectedInteraction};
pub use payloads::{EmuUser, ValidationError};
pub use recorded::{FilePart, GatewayStats, RecordedRequest, RequestBody};
pub use refuse::{Refusal, MAX_ALLOWED_MENTIONS};
use state::{GwControl, InteractionRecord, Shared};

/// Errors of the emulator API.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Binding or accepting on 127.0.0.1 failed.
    #[error("emulator I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Generating the test certificate or TLS config failed.
    #[error("emulator TLS setup: {0}")]
    Tls(String),
    /// No bot has identified on the gateway yet, so nothing can be dispatched.
    #[error("no gateway session: the bot has not identified yet")]
    NoGatewaySession,
    /// A payload would not deserialize in serenity (it would be dropped silently).
    #[error(transparent)]
    InvalidPayload(ValidationError),
    /// Payloads sent during the run failed validation.
    #[error("{} emulator payload(s) failed validation; first: {}", .0.len(), .0[0])]
    InvalidPayloads(Vec<ValidationError>),
    /// The message a test referred to is not in the channel store.
    #[error("unknown message {message} in channel {channel}")]
    UnknownMessage {
        /// Channel id.
        channel: u64,
        /// Message id.
        message: u64,
    },
    /// The message has no enabled button with this custom id.
    #[error("message {message} has no enabled button with custom_id {custom_id:?}")]
    NoSuchButton {
        /// Message id.
        message: u64,
        /// The custom id looked for.
        custom_id: String,
    },
    /// A wait helper gave up.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

/// How the emulated world looks. `Default` gives one guild with one text channel.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The bot's user id (author of its messages, READY user).
    pub bot_user_id: u64,
    /// The bot's username.
    pub bot_name: String,
    /// Application id announced in READY; commands and webhooks live under it.
    pub application_id: u64,
    /// The single emulated guild.
    pub guild_id: u64,
    /// Its name.
    pub guild_name: String,
    /// Text channels that exist: (id, name). Messages to other ids get 404 Unknown Channel.
    pub channels: Vec<(u64, String)>,
    /// Guild roles: (id, name).
    pub roles: Vec<(u64, String)>,
    /// Send a GUILD_CREATE after READY (fills serenity's cache).
    pub send_guild_create: bool,
    /// Heartbeat interval announced in HELLO.
    pub heartbeat_interval: Duration,
    /// If set, the token the bot must present (else REST 401, gateway close 4004).
    pub token: Option<String>,
    /// Enable the HTTPS proxy mode (CONNECT + TLS with a generated test CA).
    pub https_proxy: bool,
    /// Check outgoing payloads against serenity's types.
    pub validate: bool,
    /// Refuse (403, as Cloudflare does) requests without a `DiscordBot (url, version)` agent.
    pub require_user_agent: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            bot_user_id: 100_000_000_000_000_001,
            bot_name: "trainwatch".into(),
            application_id: 100_000_000_000_000_001,
            guild_id: 200_000_000_000_000_001,
            guild_name: "emulated guild".into(),
            channels: vec![(300_000_000_000_000_001, "training".into())],
            roles: vec![(400_000_000_000_000_001, "operator".into())],
            send_guild_create: true,
            heartbeat_interval: Duration::from_millis(41_250),
            token: None,
            https_proxy: true,
            validate: cfg!(debug_assertions),
            require_user_agent: true,
        }
    }
}

/// A running emulator. Dropping it stops every task; prefer [`Emulator::shutdown`] to also
/// learn about payloads that failed validation.
pub struct Emulator {
    shared: Arc<Shared>,
    http_addr: std::net::SocketAddr,
    gateway_addr: std::net::SocketAddr,
    ca_pem: Option<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Emulator {
    /// Binds REST and gateway on 127.0.0.1 (ephemeral ports) and starts serving.
    pub async fn start(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        let (ca_pem, tls) = if config.https_proxy {
            let (pem, cfg) = server::make_tls()?;
            (Some(pem), Some(cfg))
        } else {
            (None, None)
        };
        let http = TcpListener::bind("127.0.0.1:0").await?;
        let gw = TcpListener::bind("127.0.0.1:0").await?;
        let http_addr = http.local_addr()?;
        let gateway_addr = gw.local_addr()?;
        let shared = Arc::new(Shared::new(config, tls));
        if let Ok(mut g) = shared.gateway_url.lock() {
            // No query: serenity appends `?v=10` itself.
            *g = format!("ws://{gateway_addr}");
        }
        let mut tasks = Vec::new();
        for fut in [
            Box::pin(server::serve(shared.clone(), http))
                as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
            Box::pin(gateway::serve(shared.clone(), gw)),
        ] {
            let stop = shared.shutdown_signal();
            tasks.push(tokio::spawn(async move {
                tokio::select! { _ = fut => {}, _ = stop => {} }
            }));
        }
        Ok(Self {
            shared,
            http_addr,
            gateway_addr,
            ca_pem,
            tasks,
        })
    }

    /// `http://127.0.0.1:PORT` for `HttpBuilder::proxy` (rate limiter disabled).
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// `http://127.0.0.1:PORT` for `reqwest::Proxy::all` in the HTTPS proxy mode (same port
    /// as [`Self::proxy_url`]; CONNECT requests are told apart by method).
    pub fn https_proxy_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The test CA in PEM, to add as a root certificate of the bot's reqwest client.
    /// `None` when [`EmulatorConfig::https_proxy`] is off.
    pub fn ca_cert_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// `ws://127.0.0.1:PORT`, as answered by `GET /gateway`.
    pub fn gateway_url(&self) -> String {
        format!("ws://{}", self.gateway_addr)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.shared.cfg
    }

    /// Every REST request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.read().requests.clone()
    }

    /// Requests that got a 404 for an unknown route (calls the emulator does not know).
    pub fn unexpected_requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .read()
            .requests
            .iter()
            .filter(|r| r.status == 404)
            .cloned()
            .collect()
    }

    /// Messages of a channel, oldest first, edits applied and deletions removed; includes
    /// ephemeral interaction replies (flags 64) so tests can read them too.
    pub fn messages(&self, channel_id: u64) -> Vec<Value> {
        self.shared
            .read()
            .messages
            .get(&channel_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Messages of a channel that every member sees: without ephemeral ones (flag 64,
    /// which only the invoking user sees) and without deferred "thinking" placeholders
    /// (flag 128) that were never filled in.
    pub fn public_messages(&self, channel_id: u64) -> Vec<Value> {
        self.messages(channel_id)
            .into_iter()
            .filter(|m| m["flags"].as_u64().unwrap_or(0) & (64 | 128) == 0)
            .collect()
    }

    /// Bytes of an uploaded attachment, by attachment id.
    pub fn attachment_data(&self, attachment_id: u64) -> Option<Vec<u8>> {
        self.shared.read().attachments.get(&attachment_id).cloned()
    }

    /// Global commands as last registered.
    pub fn global_commands(&self) -> Vec<Value> {
        self.shared.read().global_commands.clone()
    }

    /// Guild commands as last registered.
    pub fn guild_commands(&self, guild_id: u64) -> Vec<Value> {
        self.shared
            .read()
            .guild_commands
            .get(&guild_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The bot's interaction callback body (`{type, data}`), if it answered yet.
    pub fn interaction_callback(&self, interaction: &InjectedInteraction) -> Option<Value> {
        self.shared
            .read()
            .interactions
            .get(&interaction.id)
            .and_then(|r| r.callback.clone())
    }

    /// Gateway counters.
    pub fn gateway_stats(&self) -> GatewayStats {
        self.shared.read().gateway.clone()
    }

    /// Payloads that failed validation against serenity's types so far.
    pub fn validation_errors(&self) -> Vec<ValidationError> {
        self.shared.read().validation_errors.clone()
    }

    /// Adds a REST fault; faults are tried in insertion order.
    pub fn inject_fault(&self, fault: Fault) {
        self.shared.update(|i| i.faults.push(fault));
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.shared.update(|i| i.faults.clear());
    }

    /// Refuse message writes matching `rule` with 400 Invalid Form Body (code 50035), as
    /// Discord refuses a body it finds invalid; rules are tried in insertion order.
    pub fn refuse(&self, rule: Refusal) {
        self.shared.update(|i| i.refusals.push(rule));
    }

    /// Sends a message into a channel as another user would (the bot sees MESSAGE_CREATE);
    /// returns the stored message.
    pub fn post_user_message(
        &self,
        channel_id: u64,
        user: &EmuUser,
        content: &str,
    ) -> Result<Value, EmulatorError> {
        let cfg = &self.shared.cfg;
        let mut member = user.member_json();
        if let Some(m) = member.as_object_mut() {
            m.remove("user");
        }
        let msg = json!({
            "id": self.shared.snowflake().to_string(),
            "channel_id": channel_id.to_string(),
            "guild_id": cfg.guild_id.to_string(),
            "author": user.user_json(),
            "member": member,
            "content": content,
            "timestamp": payloads::now_timestamp(),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": false,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": false,
            "type": 0,
            "flags": 0,
            "components": [],
        });
        self.dispatch("MESSAGE_CREATE", msg.clone())?;
        self.shared
            .update(|i| i.messages.entry(channel_id).or_default().push(msg.clone()));
        Ok(msg)
    }

    /// Injects a slash command (type 2) as `user` (with their roles) in `channel_id`.
    /// The command id is the registered one when a command of that name exists.
    pub fn slash_command(
        &self,
        channel_id: u64,
        user: &EmuUser,
        name: &str,
        options: Vec<CommandOpt>,
    ) -> Result<InjectedInteraction, EmulatorError> {
        self.command_like(2, channel_id, user, name, options)
    }

    /// Injects an autocomplete request (type 4); mark the typed option with
    /// [`CommandOpt::focused_string`].
    pub fn autocomplete(
        &self,
        channel_id: u64,
        user: &EmuUser,
        name: &str,
        options: Vec<CommandOpt>,
    ) -> Result<InjectedInteraction, EmulatorError> {
        self.command_like(4, channel_id, user, name, options)
    }

    fn command_like(
        &self,
        kind: u8,
        channel_id: u64,
        user: &EmuUser,
        name: &str,
        options: Vec<CommandOpt>,
    ) -> Result<InjectedInteraction, EmulatorError> {
        let cfg = &self.shared.cfg;
        let cmd_id = {
            let i = self.shared.read();
            i.guild_commands
                .get(&cfg.guild_id)
                .into_iter()
                .flatten()
                .chain(i.global_commands.iter())
                .find(|c| c["name"] == name)
                .and_then(|c| c["id"].as_str().map(str::to_string))
        }
        .unwrap_or_else(|| self.shared.snowflake().to_string());
        let data = json!({
            "id": cmd_id,
            "name": name,
            "type": 1,
            "options": options.into_iter().map(|o| o.0).collect::<Vec<_>>(),
            "guild_id": cfg.guild_id.to_string(),
        });
        self.inject(kind, channel_id, user, data, None)
    }

    /// Injects a button click (type 3) on a stored message, as `user` with their roles.
    /// Fails if the message has no enabled button with this `custom_id`, since a user could
    /// not click it either.
    pub fn click_button(
        &self,
        channel_id: u64,
        message_id: u64,
        custom_id: &str,
        user: &EmuUser,
    ) -> Result<InjectedInteraction, EmulatorError> {
        let message = self
            .messages(channel_id)
            .into_iter()
            .find(|m| rest::id_is(&m["id"], message_id))
            .ok_or(EmulatorError::UnknownMessage {
                channel: channel_id,
                message: message_id,
            })?;
        let clickable = message["components"].as_array().into_iter().flatten().any(|row| {
            row["components"].as_array().into_iter().flatten().any(|c| {
                c["type"] == 2 && c["custom_id"] == custom_id && !c["disabled"].as_bool().unwrap_or(false)
            })
        });
        if !clickable {
            return Err(EmulatorError::NoSuchButton {
                message: message_id,
                custom_id: custom_id.to_string(),
            });
        }
        let data = json!({"custom_id": custom_id, "component_type": 2});
        self.inject(3, channel_id, user, data, Some(message))
    }

    fn inject(
        &self,
        kind: u8,
        channel_id: u64,
        user: &EmuUser,
        data: Value,
        message: Option<Value>,
    ) -> Result<InjectedInteraction, EmulatorError> {
        let cfg = &self.shared.cfg;
        let id = self.shared.snowflake();
        let token = format!("emu-token-{id}-{}", self.shared.snowflake());
        let mut d = json!({
            "id": id.to_string(),
            "application_id": cfg.application_id.to_string(),
            "type": kind,
            "data": data,
            "guild_id": cfg.guild_id.to_string(),
            "channel_id": channel_id.to_string(),
            "channel": {"id": channel_id.to_string(), "type": 0, "name": "channel", "permissions": "2248473465835073"},
            "member": user.member_json(),
            "token": token,
            "version": 1,
            "app_permissions": "2248473465835073",
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": cfg.guild_id.to_string()},
            "context": 0,
            "attachment_size_limit": 10_485_760,
        });
        let component_message = message.as_ref().and_then(|m| m["id"].as_str()?.parse().ok());
        if let Some(m) = message {
            d["message"] = m;
        }
        // Register before dispatching: the bot may answer before `dispatch` returns.
        self.shared.update(|i| {
            i.interactions.insert(
                id,
                InteractionRecord {
                    token: token.clone(),
                    kind,
                    channel_id,
                    component_message,
                    callback: None,
                    original_message: None,
                },
            )
        });
        if let Err(e) = self.dispatch("INTERACTION_CREATE", d) {
            self.shared.update(|i| i.interactions.remove(&id));
            return Err(e);
        }
        Ok(InjectedInteraction {
            id,
            token,
            channel_id,
        })
    }

    /// Sends a dispatch (`op 0`, event name `t`) on the current gateway session. While the
    /// bot is disconnected it is kept and replayed when the bot RESUMEs.
    pub fn dispatch(&self, t: &str, d: Value) -> Result<(), EmulatorError> {
        let sid = self
            .shared
            .read()
            .current_session
            .clone()
            .ok_or(EmulatorError::NoGatewaySession)?;
        let frame = gateway::sequence_dispatch(&self.shared, &sid, t, d)?;
        let conn = {
            let i = self.shared.read();
            i.sessions
                .get(&sid)
                .and_then(|s| s.conn)
                .and_then(|c| i.connections.get(&c).cloned())
        };
        if let Some(tx) = conn {
            let _ = tx.send(GwControl::Frame(frame));
        }
        Ok(())
    }

    fn control_current(&self, ctl: impl Fn() -> GwControl) -> usize {
        let conns: Vec<_> = self.shared.read().connections.values().cloned().collect();
        conns.iter().filter(|tx| tx.send(ctl()).is_ok()).count()
    }

    /// Closes every gateway connection with this close code (4000 = unknown error, the
    /// client resumes; 4004 = authentication failed, the client gives up). Returns how many
    /// connections were closed.
    pub fn gateway_close(&self, code: u16) -> usize {
        self.control_current(|| GwControl::Close(code))
    }

    /// Drops every gateway TCP connection without a close frame.
    pub fn gateway_drop(&self) -> usize {
        self.control_current(|| GwControl::Drop)
    }

    /// Sends op 7 (reconnect) on every gateway connection.
    pub fn gateway_reconnect(&self) -> usize {
        self.control_current(|| GwControl::Reconnect)
    }

    /// Sends op 9 (invalid session); when not resumable the client must IDENTIFY again.
    pub fn gateway_invalid_session(&self, resumable: bool) -> usize {
        self.control_current(|| GwControl::InvalidSession(resumable))
    }

    /// Waits until `pred` holds on the recorded requests; returns the requests then.
    ///
    /// ```no_run
    /// # async fn demo(emu: &discord_emulator::Emulator) -> Result<(), discord_emulator::EmulatorError> {
    /// let reqs = emu
    ///     .wait_for(|r| r.iter().any(|r| r.method == "POST" && r.path.ends_with("/messages")), std::time::Duration::from_secs(5))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for<F>(&self, pred: F, timeout: Duration) -> Result<Vec<RecordedRequest>, EmulatorError>
    where
        F: Fn(&[RecordedRequest]) -> bool,
    {
        self.wait_state(timeout, "a request predicate", |i| {
            pred(&i.requests).then(|| i.requests.clone())
        })
        .await
    }

    /// Waits for a message in `channel_id` (current state, edits applied) matching `pred`.
    pub async fn wait_message<F>(
        &self,
        channel_id: u64,
        pred: F,
        timeout: Duration,
    ) -> Result<Value, EmulatorError>
    where
        F: Fn(&Value) -> bool,
    {
        self.wait_state(timeout, &format!("a message in channel {channel_id}"), |i| {
            i.messages.get(&channel_id)?.iter().find(|m| pred(m)).cloned()
        })
        .await
    }

    /// Waits for the bot's callback to an injected interaction.
    pub async fn wait_callback(
        &self,
        interaction: &InjectedInteraction,
        timeout: Duration,
    ) -> Result<Value, EmulatorError> {
        self.wait_state(
            timeout,
            &format!("the callback of interaction {}", interaction.id),
            |i| i.interactions.get(&interaction.id)?.callback.clone(),
        )
        .await
    }

    /// Waits until the bot has a live, identified (or resumed) gateway session.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), EmulatorError> {
        self.wait_state(timeout, "a ready gateway session", |i| {
            let sid = i.current_session.as_ref()?;
            i.sessions.get(sid)?.conn.map(|_| ())
        })
        .await
    }

    /// Waits until no gateway connection carries the bot's session (after a close or drop,
    /// before the bot reconnects). Dispatches injected then are replayed on RESUME.
    pub async fn wait_disconnected(&self, timeout: Duration) -> Result<(), EmulatorError> {
        self.wait_state(timeout, "the gateway session to be disconnected", |i| {
            let sid = i.current_session.as_ref()?;
            i.sessions.get(sid)?.conn.is_none().then_some(())
        })
        .await
    }

    /// Waits until the gateway counters satisfy `pred`.
    pub async fn wait_gateway<F>(&self, pred: F, timeout: Duration) -> Result<GatewayStats, EmulatorError>
    where
        F: Fn(&GatewayStats) -> bool,
    {
        self.wait_state(timeout, "a gateway condition", |i| {
            pred(&i.gateway).then(|| i.gateway.clone())
        })
        .await
    }

    async fn wait_state<R>(
        &self,
        timeout: Duration,
        what: &str,
        mut probe: impl FnMut(&state::Inner) -> Option<R>,
    ) -> Result<R, EmulatorError> {
        let mut rx = self.shared.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(r) = probe(&self.shared.read()) {
                return Ok(r);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(EmulatorError::Timeout(timeout, what.to_string())),
            }
        }
    }

    /// Stops every task (servers, connections) and reports payloads that failed validation.
    pub async fn shutdown(mut self) -> Result<(), EmulatorError> {
        self.stop();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        let errs = self.validation_errors();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(EmulatorError::InvalidPayloads(errs))
        }
    }

    fn stop(&self) {
        self.shared.shutdown.send_replace(true);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

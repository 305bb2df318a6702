//! The Discord adapter. Outgoing protocol messages are rendered to Discord message bodies
//! (`embed`) and handed to the supervisor as outbox entries; the `delivery` worker sends
//! them with retries. Incoming slash commands and button clicks arrive over serenity's
//! gateway connection (`handler`; their shapes in `interact`), are validated like any other
//! request (`crate::chat::request`) and go to the supervisor as `Inbound` commands; answers
//! are written with serenity's interaction builders. Buttons carry their target in their
//! `custom_id`, so one global handler serves buttons posted before a restart too. A click
//! only asks: the report is closed by the engine's `Resolve`, through the outbox like every
//! other change, so a decision edits its report exactly once whichever way it was taken.
//! A store notice that cannot wait for the store ("unwritable") is also sent ahead of the
//! outbox (`ahead`), once.

pub mod ahead;
pub mod attach;
pub mod delivery;
pub mod embed;
mod handler;
pub mod interact;
mod plain;
mod register;
pub mod rest;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serenity::all::{ClientBuilder, GatewayIntents, HttpBuilder, ShardManager};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::chat::{ChatSink, Inbound, Outgoing};
use crate::config::StatusMode;
use crate::engine::{Body, MessageKey};
use crate::model::{JobName, Persona, RunId};
use crate::store::{OutboxItem, Store, StoreError};

pub use delivery::{Envelope, RetryPolicy};
use embed::Mentions;
use handler::{Core, Handler};

/// Who holds a persona in Discord: a user, or everyone with a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscordPrincipal {
    User(u64),
    Role(u64),
}

/// Everything the adapter needs, independent of the config file's shape.
#[derive(Clone)]
pub struct DiscordSetup {
    pub token: String,
    /// Slash commands are registered in this guild (instant), else globally.
    pub guild_id: Option<u64>,
    pub default_channel: u64,
    pub job_channels: BTreeMap<JobName, u64>,
    pub jobs: Vec<JobName>,
    /// Each job's log file, for `/train logs`.
    pub job_logs: BTreeMap<JobName, PathBuf>,
    pub personas: Vec<(Persona, Vec<DiscordPrincipal>)>,
    pub status_mode: StatusMode,
    /// Replaces `https://discord.com` (a local proxy or emulator); serenity's rate limiter
    /// is then off and delivery paces itself on 429s.
    pub proxy_url: Option<String>,
    /// An HTTPS proxy for all requests, with `ca_cert_pem` trusted in addition to the roots.
    pub https_proxy: Option<String>,
    pub ca_cert_pem: Option<Vec<u8>>,
    pub retry: RetryPolicy,
}

impl DiscordSetup {
    /// A setup posting everything to `default_channel`, with no jobs or roles yet and the
    /// default status mode and retry policy; fill in the rest.
    pub fn new(token: impl Into<String>, default_channel: u64) -> Self {
        DiscordSetup {
            token: token.into(),
            guild_id: None,
            default_channel,
            job_channels: BTreeMap::new(),
            jobs: Vec::new(),
            job_logs: BTreeMap::new(),
            personas: Vec::new(),
            status_mode: StatusMode::default(),
            proxy_url: None,
            https_proxy: None,
            ca_cert_pem: None,
            retry: RetryPolicy::default(),
        }
    }
}

impl DiscordSetup {
    /// The setup a config file describes: channels, jobs and their logs, the roles' Discord
    /// principals, the proxy settings (reading the CA file). Err when the file has no
    /// `[discord]` section, an id is not a number or the CA file cannot be read.
    pub fn from_config(cfg: &crate::config::Config, token: String) -> Result<Self, DiscordError> {
        let d = cfg
            .discord
            .as_ref()
            .ok_or_else(|| DiscordError::Setup("the config has no [discord] section".into()))?;
        let id = |what: &str, s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| DiscordError::Setup(format!("{what}: {s:?} is not a Discord id")))
        };
        let mut setup = DiscordSetup::new(token, id("discord.channel", &d.channel)?);
        setup.guild_id = d
            .guild_id
            .as_deref()
            .map(|g| id("discord.guild_id", g))
            .transpose()?;
        for job in &cfg.jobs {
            if let Some(c) = &job.channel {
                setup.job_channels.insert(
                    job.engine.job.clone(),
                    id(&format!("{}.channel", job.engine.job), c)?,
                );
            }
            setup.jobs.push(job.engine.job.clone());
            setup
                .job_logs
                .insert(job.engine.job.clone(), job.engine.log.clone());
        }
        for persona in Persona::ALL {
            let principals: Vec<DiscordPrincipal> = cfg
                .roles
                .principals(persona)
                .iter()
                .filter_map(|p| match p {
                    crate::config::Principal::DiscordUser(u) => u.parse().ok().map(DiscordPrincipal::User),
                    crate::config::Principal::DiscordRole(r) => r.parse().ok().map(DiscordPrincipal::Role),
                    crate::config::Principal::Local(_) => None,
                })
                .collect();
            if !principals.is_empty() {
                setup.personas.push((persona, principals));
            }
        }
        setup.status_mode = d.status_mode;
        setup.proxy_url = d.proxy_url.clone();
        setup.https_proxy = d.https_proxy.clone();
        setup.ca_cert_pem = match &d.ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                DiscordError::Setup(format!("cannot read the CA certificate {}: {e}", path.display()))
            })?),
            None => None,
        };
        Ok(setup)
    }
}

impl std::fmt::Debug for DiscordSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is never shown.
        f.debug_struct("DiscordSetup")
            .field("guild_id", &self.guild_id)
            .field("default_channel", &self.default_channel)
            .field("job_channels", &self.job_channels)
            .field("jobs", &self.jobs)
            .field("status_mode", &self.status_mode)
            .field("proxy_url", &self.proxy_url)
            .field("https_proxy", &self.https_proxy)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("Discord setup: {0}")]
    Setup(String),
    #[error("Discord gateway: {0}")]
    Gateway(#[from] Box<serenity::Error>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outgoing side: renders messages into outbox entries.
pub struct DiscordChat {
    default_channel: u64,
    job_channels: BTreeMap<JobName, u64>,
    personas: Vec<(Persona, Vec<DiscordPrincipal>)>,
    status_mode: StatusMode,
    /// Also remembers each run's latest report with buttons, so an investigation request
    /// is threaded under it, after a restart too.
    store: Arc<Mutex<Store>>,
    notify: Arc<Notify>,
    /// Messages to send ahead of the outbox, shared with the delivery worker.
    ahead: Arc<Mutex<ahead::Ahead>>,
}

impl DiscordChat {
    pub fn new(setup: &DiscordSetup, store: Arc<Mutex<Store>>) -> Self {
        DiscordChat {
            default_channel: setup.default_channel,
            job_channels: setup.job_channels.clone(),
            personas: setup.personas.clone(),
            status_mode: setup.status_mode,
            store,
            notify: Arc::new(Notify::new()),
            ahead: Arc::default(),
        }
    }

    pub fn channel_for(&self, job: &JobName) -> u64 {
        self.job_channels
            .get(job)
            .copied()
            .unwrap_or(self.default_channel)
    }

    /// The outbox payload for an outgoing change.
    pub fn envelope(&self, out: &Outgoing) -> Envelope {
        match out {
            Outgoing::Post(m) => {
                let mentions = Mentions::for_personas(&m.to, &self.personas);
                if !m.buttons.is_empty() {
                    self.set_latest_report(&m.job, m.run, m.key);
                }
                let thread_on = match m.body {
                    Body::Investigate { .. } => self.latest_report(&m.job, m.run),
                    _ => None,
                };
                let out = embed::message(m, &mentions);
                // A store notice may be sent ahead of the outbox, before its entry has an id:
                // its nonce is fixed here, the same for both copies.
                let nonce = matches!(m.body, Body::Store { .. }).then(|| {
                    delivery::nonce_from(&format!("{}\n{}\n{}\n{}", m.job, m.run, m.key, m.at.to_rfc3339()))
                });
                Envelope::Post {
                    nonce,
                    body: out.body,
                    texts: out.files,
                    edit_status: self.status_mode == StatusMode::Edit
                        && matches!(m.key, MessageKey::Status(_)),
                    thread_on,
                    thread_name: thread_on.map(|k| format!("Investigate {} run {} ({k})", m.job, m.run)),
                    attachments: m.attachments.clone(),
                }
            }
            Outgoing::Update(m) => {
                // An edit does not ping again, so the mentions stay in the content only.
                let mentions = Mentions::for_personas(&m.to, &self.personas);
                let out = embed::message(m, &mentions);
                Envelope::Update {
                    body: out.body,
                    texts: out.files,
                    attachments: m.attachments.clone(),
                }
            }
            Outgoing::Resolve { note, .. } => Envelope::Resolve { note: note.clone() },
        }
    }

    fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> Result<R, StoreError>) -> Option<R> {
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut store)
            .map_err(|e| tracing::error!(error = %e, "cannot keep track of the reports' threads"))
            .ok()
    }

    fn set_latest_report(&self, job: &JobName, run: RunId, key: MessageKey) {
        let key = serde_json::to_string(&key).expect("message keys serialize");
        self.with_store(|s| s.set_latest_report(job.as_str(), run.0, &key));
    }

    /// The run's latest report with buttons (what an investigation request threads under).
    fn latest_report(&self, job: &JobName, run: RunId) -> Option<MessageKey> {
        let (key, _) = self.with_store(|s| s.latest_report(job.as_str(), run.0))??;
        serde_json::from_str(&key).ok()
    }

    /// The outbox entry for an outgoing change.
    pub fn entry(&self, out: &Outgoing) -> OutboxItem {
        let env = self.envelope(out);
        let payload = serde_json::to_value(&env).expect("envelopes serialize");
        out.outbox_item(self.channel_for(out.job()).to_string(), payload)
    }
}

impl ChatSink for DiscordChat {
    fn to_outbox(&self, out: &Outgoing) -> Option<OutboxItem> {
        Some(self.entry(out))
    }

    fn wake(&self) {
        self.notify.notify_one();
    }

    fn send_ahead(&self, job: &JobName, item: &OutboxItem) {
        let Some(nonce) = item.payload.get("nonce").and_then(|n| n.as_str()) else {
            tracing::warn!(%job, key = %item.key, "a message without a fixed nonce is not sent ahead of the outbox");
            return;
        };
        let entry = crate::store::OutboxEntry {
            id: 0,
            channel: item.channel.clone(),
            job: job.to_string(),
            run: item.run.0,
            key: item.key.clone(),
            kind: item.kind,
            payload: item.payload.clone(),
            attempts: 0,
        };
        self.ahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ahead::Early {
                nonce: nonce.to_string(),
                entry,
            });
        self.wake();
    }

    /// Discord delivers through the outbox; a caller that hands a message over directly
    /// gets it queued there in its own transaction.
    fn deliver(&self, out: &Outgoing) {
        let item = self.entry(out);
        let queued = {
            let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
            store.enqueue(Utc::now(), out.job(), &item)
        };
        match queued {
            Ok(_) => self.wake(),
            Err(e) => tracing::error!(error = %e, job = %out.job(), "cannot queue a Discord message"),
        }
    }
}

/// The running adapter: the gateway client and the delivery worker.
pub struct DiscordRunning {
    gateway: JoinHandle<Result<(), serenity::Error>>,
    delivery: JoinHandle<()>,
    shards: Arc<ShardManager>,
}

impl DiscordRunning {
    /// Close the gateway connection and stop delivery (unsent entries stay in the outbox).
    /// Bounded: a gateway that does not close in time is dropped.
    pub async fn shutdown(mut self) {
        self.delivery.abort();
        let _ = (&mut self.delivery).await;
        if tokio::time::timeout(SHUTDOWN_GRACE, self.shards.shutdown_all())
            .await
            .is_err()
        {
            tracing::warn!("the Discord gateway did not close in time");
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.gateway)
            .await
            .is_err()
        {
            self.gateway.abort();
        }
    }
}

/// Connect to Discord: start the gateway client (which registers the slash commands once
/// ready, when they changed) and the outbox delivery worker.
pub async fn connect(
    setup: DiscordSetup,
    store: Arc<Mutex<Store>>,
    inbound: mpsc::Sender<Inbound>,
) -> Result<(Arc<DiscordChat>, DiscordRunning), DiscordError> {
    if setup.token.trim().is_empty() {
        return Err(DiscordError::Setup("the bot token is empty".into()));
    }
    let client = rest::http_client(setup.https_proxy.as_deref(), setup.ca_cert_pem.as_deref())?;
    let mut hb = HttpBuilder::new(&setup.token);
    if let Some(p) = &setup.proxy_url {
        // serenity's rate limiter ignores the proxy; delivery paces itself on 429s instead.
        hb = hb.proxy(p.trim_end_matches('/')).ratelimiter_disabled(true);
    }
    if setup.https_proxy.is_some() || setup.ca_cert_pem.is_some() {
        hb = hb.client(client.clone());
    }
    let http = hb.build();
    let chat = Arc::new(DiscordChat::new(&setup, store.clone()));
    let handler = Handler {
        core: Arc::new(Core {
            jobs: setup.jobs.clone(),
            job_logs: setup.job_logs.clone(),
            personas: setup.personas.clone(),
            guild_id: setup.guild_id,
            channels: (setup.default_channel, setup.job_channels.clone()),
            inbound,
        }),
    };
    let mut gateway = ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
        .event_handler(handler)
        .await
        .map_err(|e| DiscordError::Gateway(Box::new(e)))?;
    let shards = gateway.shard_manager.clone();
    let gateway = tokio::spawn(async move { gateway.start().await });
    let worker = delivery::Worker {
        rest: Arc::new(rest::Rest::new(client, setup.proxy_url.as_deref(), &setup.token)),
        store,
        notify: chat.notify.clone(),
        policy: setup.retry,
        ahead: chat.ahead.clone(),
    };
    let delivery = tokio::spawn(worker.run());
    chat.wake();
    Ok((
        chat,
        DiscordRunning {
            gateway,
            delivery,
            shards,
        },
    ))
}

/// How long shutting down waits for the gateway to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Button, Decision, DecisionPoint, Message, Progress};
    use crate::model::ProcessId;
    use crate::model::{Category, Incident, Severity};

    fn setup(mode: StatusMode) -> DiscordSetup {
        let job = JobName::new("model_3").unwrap();
        DiscordSetup {
            token: "t".into(),
            guild_id: Some(1),
            default_channel: 100,
            job_channels: [(job.clone(), 200)].into_iter().collect(),
            jobs: vec![job, JobName::new("other").unwrap()],
            job_logs: BTreeMap::new(),
            personas: vec![(Persona::Modeler, vec![DiscordPrincipal::Role(5)])],
            status_mode: mode,
            proxy_url: None,
            https_proxy: None,
            ca_cert_pem: None,
            retry: RetryPolicy::default(),
        }
    }

    fn chat(mode: StatusMode) -> (tempfile::TempDir, DiscordChat) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let chat = DiscordChat::new(&setup(mode), Arc::new(Mutex::new(store)));
        (dir, chat)
    }

    fn msg(job: &str, key: MessageKey, body: Body, buttons: Vec<Button>) -> Message {
        Message {
            job: JobName::new(job).unwrap(),
            run: RunId(1),
            key,
            at: Utc::now(),
            to: vec![],
            body,
            buttons,
            attachments: Vec::new(),
        }
    }

    fn status(n: u32) -> Outgoing {
        Outgoing::Post(msg(
            "model_3",
            MessageKey::Status(n),
            Body::StatusUpdate {
                pid: ProcessId::Local(1),
                log_file: "l".into(),
                elapsed: Duration::from_secs(60),
                attempt: None,
                expected: None,
                progress: Progress::default(),
                last_line: None,
                open: vec![],
            },
            vec![],
        ))
    }

    #[test]
    fn the_setup_follows_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "PEM").unwrap();
        let text = r#"
[roles]
director = ["role:111", "user:7", "alice"]
modeler = ["role:333"]

[jobs.model_3]
argv = ["python", "train.py"]
channel = "222"

[jobs.bert]
argv = ["python", "bert.py"]

[discord]
channel = "100"
guild_id = "9"
status_mode = "new"
proxy_url = "http://127.0.0.1:8080"
ca_cert = "ca.pem"
"#;
        let cfg = crate::config::Config::parse(text, &dir.path().join("tw.toml")).unwrap();
        let s = DiscordSetup::from_config(&cfg, "tok".into()).unwrap();
        assert_eq!((s.default_channel, s.guild_id), (100, Some(9)));
        assert_eq!(
            s.job_channels,
            [(JobName::new("model_3").unwrap(), 222)].into_iter().collect()
        );
        assert_eq!(s.jobs.len(), 2);
        assert_eq!(s.job_logs.len(), 2);
        assert_eq!(
            s.personas,
            vec![
                (
                    Persona::Director,
                    vec![DiscordPrincipal::Role(111), DiscordPrincipal::User(7)]
                ),
                (Persona::Modeler, vec![DiscordPrincipal::Role(333)]),
            ]
        );
        assert_eq!(s.status_mode, StatusMode::New);
        assert_eq!(s.proxy_url.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(s.ca_cert_pem.as_deref(), Some(&b"PEM"[..]));
        assert!(!format!("{s:?}").contains("tok\""), "the token is never shown");
        let no_discord =
            crate::config::Config::parse("[jobs.a]\nargv = [\"x\"]\n", &dir.path().join("t.toml")).unwrap();
        assert!(DiscordSetup::from_config(&no_discord, "t".into()).is_err());
    }

    #[test]
    fn a_direct_delivery_is_queued_in_the_outbox() {
        let (_d, c) = chat(StatusMode::Edit);
        c.deliver(&status(1));
        let pending = c.store.lock().unwrap().pending(10).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (pending[0].channel.as_str(), pending[0].key.as_str()),
            ("200", "status-1")
        );
        assert_eq!(pending[0].kind, crate::store::OutboxKind::Post);
    }

    #[test]
    fn entries_go_to_the_job_channel_and_status_edits_follow_the_mode() {
        let (_d, c) = chat(StatusMode::Edit);
        let item = c.to_outbox(&status(3)).unwrap();
        assert_eq!(
            (item.channel.as_str(), item.run, item.key.as_str(), item.kind),
            ("200", RunId(1), "status-3", crate::store::OutboxKind::Post)
        );
        let env: Envelope = serde_json::from_value(item.payload).unwrap();
        assert!(matches!(
            env,
            Envelope::Post {
                edit_status: true,
                ..
            }
        ));
        let (_d, c) = chat(StatusMode::New);
        let env: Envelope = serde_json::from_value(c.to_outbox(&status(3)).unwrap().payload).unwrap();
        assert!(matches!(
            env,
            Envelope::Post {
                edit_status: false,
                ..
            }
        ));
        let resolve = Outgoing::Resolve {
            job: JobName::new("other").unwrap(),
            run: RunId(1),
            key: MessageKey::Incident(1),
            note: "n".into(),
        };
        let item = c.to_outbox(&resolve).unwrap();
        assert_eq!(
            (item.channel.as_str(), item.key.as_str(), item.kind),
            ("100", "incident-1", crate::store::OutboxKind::Resolve)
        );
    }

    #[test]
    fn the_outbox_keeps_chart_paths_not_their_bytes() {
        let (_d, c) = chat(StatusMode::Edit);
        let Outgoing::Post(mut m) = status(3) else {
            unreachable!()
        };
        m.attachments = vec![PathBuf::from("charts/status-3.png")];
        let payload = c.to_outbox(&Outgoing::Post(m)).unwrap().payload;
        assert_eq!(payload["attachments"], serde_json::json!(["charts/status-3.png"]));
        let env: Envelope = serde_json::from_value(payload).unwrap();
        let Envelope::Post { attachments, .. } = env else {
            panic!("not a post: {env:?}")
        };
        assert_eq!(attachments, vec![PathBuf::from("charts/status-3.png")]);
        // Entries stored before attachments existed still load.
        let mut old = c.to_outbox(&status(4)).unwrap().payload;
        assert!(old.get("attachments").is_none());
        old.as_object_mut().unwrap().remove("attachments");
        assert!(serde_json::from_value::<Envelope>(old).is_ok());
    }

    #[test]
    fn an_investigation_is_threaded_under_the_report_that_asked_for_it_after_a_restart_too() {
        let (_d, c) = chat(StatusMode::Edit);
        let incident = Incident {
            category: Category::Convergence,
            severity: Severity::Fatal,
            line: 3,
            text: "diverged".into(),
            excerpt: vec![],
            count: 1,
            reason: String::new(),
        };
        let report = msg(
            "model_3",
            MessageKey::Incident(2),
            Body::ErrorDetected {
                seq: 2,
                pid: Some(ProcessId::Local(1)),
                log_file: "l".into(),
                incident: incident.clone(),
                exit: None,
                elapsed: Duration::ZERO,
            },
            vec![Button {
                decision: Decision::Investigate,
                point: DecisionPoint::Incident(2),
                label: "Investigate".into(),
            }],
        );
        c.to_outbox(&Outgoing::Post(report));
        // trainwatch restarts between the report and the request: the report is remembered.
        let c = DiscordChat::new(&setup(StatusMode::Edit), c.store.clone());
        let mut ask = msg(
            "model_3",
            MessageKey::Investigate(1),
            Body::Investigate {
                owner: Persona::Modeler,
                requested_by: "@ann".into(),
                incident: Some(incident),
                log_file: "l".into(),
                last_line: None,
            },
            vec![],
        );
        ask.to = vec![Persona::Modeler];
        let env: Envelope =
            serde_json::from_value(c.to_outbox(&Outgoing::Post(ask)).unwrap().payload).unwrap();
        let Envelope::Post { thread_on, body, .. } = env else {
            panic!("a post")
        };
        assert_eq!(thread_on, Some(MessageKey::Incident(2)));
        assert_eq!(body["content"], "<@&5>");
    }
}

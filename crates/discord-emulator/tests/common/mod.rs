//! A small serenity bot (unmodified serenity 0.12.5) wired to the emulator in either proxy
//! mode, reporting what its handler saw over a channel.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use discord_emulator::{Emulator, EmulatorConfig};
use serenity::all::{
    ChannelId, ClientBuilder, CommandDataOptionValue, CommandOptionType, Context, CreateAutocompleteResponse,
    CreateCommand, CreateCommandOption, CreateInteractionResponse, CreateInteractionResponseFollowup,
    CreateInteractionResponseMessage, EditInteractionResponse, EventHandler, GatewayIntents, GuildId, Http,
    HttpBuilder, Interaction, Ready, ShardManager,
};
use tokio::sync::mpsc;

pub const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAx.emulated.token-for-tests";
pub const WAIT: Duration = Duration::from_secs(20);

/// How the bot's HTTP client reaches the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `HttpBuilder::proxy` with the rate limiter disabled.
    PlainProxy,
    /// reqwest client through the CONNECT proxy with the test CA; rate limiter on.
    HttpsProxy,
}

/// What the handler saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Ready {
        user_id: u64,
    },
    CommandsRegistered(Vec<String>),
    Command {
        name: String,
        sub: Option<String>,
        arg: Option<String>,
        user: u64,
        roles: Vec<u64>,
    },
    Button {
        custom_id: String,
        message_id: u64,
        user: u64,
        roles: Vec<u64>,
    },
    Autocomplete {
        partial: String,
    },
    CacheReady(Vec<u64>),
    SlowDone,
    Error(String),
}

struct Handler {
    tx: mpsc::UnboundedSender<Seen>,
    guild: u64,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let _ = self.tx.send(Seen::Ready {
            user_id: ready.user.id.get(),
        });
        let status = CreateCommand::new("status").description("Show a job").add_option(
            CreateCommandOption::new(CommandOptionType::SubCommand, "job", "One job").add_sub_option(
                CreateCommandOption::new(CommandOptionType::String, "name", "Job name")
                    .required(true)
                    .set_autocomplete(true),
            ),
        );
        let ping = CreateCommand::new("ping").description("Liveness");
        let slow = CreateCommand::new("slow").description("Deferred answer");
        match GuildId::new(self.guild)
            .set_commands(&ctx.http, vec![status, ping, slow])
            .await
        {
            Ok(cmds) => {
                let _ = self.tx.send(Seen::CommandsRegistered(
                    cmds.into_iter().map(|c| c.name).collect(),
                ));
            }
            Err(e) => {
                let _ = self.tx.send(Seen::Error(format!("set_commands: {e}")));
            }
        }
    }

    async fn cache_ready(&self, ctx: Context, guilds: Vec<GuildId>) {
        // Only guilds whose GUILD_CREATE deserialized are in the cache.
        let cached = guilds
            .into_iter()
            .filter(|g| ctx.cache.guild(*g).is_some())
            .map(|g| g.get())
            .collect();
        let _ = self.tx.send(Seen::CacheReady(cached));
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Command(cmd) if cmd.data.name == "slow" => {
                // Defer, then fill in the original response, then a follow-up.
                let r = async {
                    cmd.defer_ephemeral(&ctx.http).await?;
                    cmd.edit_response(&ctx.http, EditInteractionResponse::new().content("slow: done"))
                        .await?;
                    cmd.create_followup(
                        &ctx.http,
                        CreateInteractionResponseFollowup::new().content("slow: follow-up"),
                    )
                    .await?;
                    Ok::<_, serenity::Error>(())
                }
                .await;
                let _ = self.tx.send(match r {
                    Ok(()) => Seen::SlowDone,
                    Err(e) => Seen::Error(format!("slow: {e}")),
                });
            }
            Interaction::Command(cmd) => {
                let mut sub = None;
                let mut arg = None;
                for o in &cmd.data.options {
                    if let CommandDataOptionValue::SubCommand(inner) = &o.value {
                        sub = Some(o.name.clone());
                        arg = inner.iter().find_map(|i| i.value.as_str().map(str::to_string));
                    }
                }
                let roles: Vec<u64> = cmd
                    .member
                    .as_ref()
                    .map(|m| m.roles.iter().map(|r| r.get()).collect())
                    .unwrap_or_default();
                let _ = self.tx.send(Seen::Command {
                    name: cmd.data.name.clone(),
                    sub: sub.clone(),
                    arg: arg.clone(),
                    user: cmd.user.id.get(),
                    roles,
                });
                let reply = CreateInteractionResponseMessage::new()
                    .content(format!(
                        "{} {} {}",
                        cmd.data.name,
                        sub.unwrap_or_default(),
                        arg.unwrap_or_default()
                    ))
                    .ephemeral(true);
                if let Err(e) = cmd
                    .create_response(&ctx.http, CreateInteractionResponse::Message(reply))
                    .await
                {
                    let _ = self.tx.send(Seen::Error(format!("command response: {e}")));
                }
            }
            Interaction::Component(c) => {
                let roles: Vec<u64> = c
                    .member
                    .as_ref()
                    .map(|m| m.roles.iter().map(|r| r.get()).collect())
                    .unwrap_or_default();
                let _ = self.tx.send(Seen::Button {
                    custom_id: c.data.custom_id.clone(),
                    message_id: c.message.id.get(),
                    user: c.user.id.get(),
                    roles,
                });
                let reply = CreateInteractionResponseMessage::new()
                    .content(format!("clicked {}", c.data.custom_id))
                    .ephemeral(true);
                if let Err(e) = c
                    .create_response(&ctx.http, CreateInteractionResponse::Message(reply))
                    .await
                {
                    let _ = self.tx.send(Seen::Error(format!("component response: {e}")));
                }
            }
            Interaction::Autocomplete(a) => {
                let partial = a
                    .data
                    .autocomplete()
                    .map(|f| f.value.to_string())
                    .unwrap_or_default();
                let _ = self.tx.send(Seen::Autocomplete {
                    partial: partial.clone(),
                });
                let resp = CreateAutocompleteResponse::new()
                    .add_string_choice(format!("{partial}-1"), format!("{partial}-1"));
                if let Err(e) = a
                    .create_response(&ctx.http, CreateInteractionResponse::Autocomplete(resp))
                    .await
                {
                    let _ = self.tx.send(Seen::Error(format!("autocomplete response: {e}")));
                }
            }
            other => {
                let _ = self
                    .tx
                    .send(Seen::Error(format!("unexpected interaction {:?}", other.kind())));
            }
        }
    }
}

/// serenity's HTTP client for the emulator in the given mode.
pub fn http_for(emu: &Emulator, mode: Mode) -> Http {
    match mode {
        Mode::PlainProxy => HttpBuilder::new(TOKEN)
            .proxy(emu.proxy_url())
            .ratelimiter_disabled(true)
            .build(),
        Mode::HttpsProxy => {
            let ca =
                reqwest::Certificate::from_pem(emu.ca_cert_pem().expect("https proxy mode on").as_bytes())
                    .expect("CA parses");
            let client = reqwest::Client::builder()
                .proxy(reqwest::Proxy::all(emu.https_proxy_url()).expect("proxy url"))
                .add_root_certificate(ca)
                .use_rustls_tls()
                .build()
                .expect("reqwest client");
            HttpBuilder::new(TOKEN).client(client).build()
        }
    }
}

/// A running bot.
pub struct Bot {
    pub http: Arc<Http>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    shards: Arc<ShardManager>,
    task: tokio::task::JoinHandle<()>,
}

impl Bot {
    /// Builds a serenity client against the emulator and starts it.
    pub async fn start(emu: &Emulator, mode: Mode) -> Bot {
        let (tx, seen) = mpsc::unbounded_channel();
        let handler = Handler {
            tx,
            guild: emu.config().guild_id,
        };
        let intents = GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES;
        let mut client = ClientBuilder::new_with_http(http_for(emu, mode), intents)
            .event_handler(handler)
            .await
            .expect("client builds");
        let http = client.http.clone();
        let shards = client.shard_manager.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = client.start().await {
                eprintln!("client stopped: {e}");
            }
        });
        Bot {
            http,
            seen,
            shards,
            task,
        }
    }

    /// Next event the handler saw, skipping none; panics after the timeout.
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("handler event in time")
            .expect("handler alive")
    }

    /// Waits for an event matching `pred`, failing on handler errors.
    pub async fn until(&mut self, pred: impl Fn(&Seen) -> bool) -> Seen {
        // Bounded: each `next` has a timeout and at most 50 events are skipped.
        for _ in 0..50 {
            let s = self.next().await;
            if let Seen::Error(e) = &s {
                panic!("bot handler error: {e}");
            }
            if pred(&s) {
                return s;
            }
        }
        panic!("no matching handler event among 50");
    }

    /// Stops the shards and the client task.
    pub async fn stop(self) {
        self.shards.shutdown_all().await;
        let _ = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("client task ends");
    }
}

pub fn channel(emu: &Emulator) -> ChannelId {
    ChannelId::new(emu.config().channels[0].0)
}

pub async fn start_emulator() -> Emulator {
    Emulator::start(EmulatorConfig {
        token: Some(TOKEN.to_string()),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts")
}

//! The gateway side of the Discord adapter: serenity's event handler. Once connected it
//! registers the slash commands if Discord's differ from ours (`register`); each interaction (slash command, autocomplete, button
//! click) becomes a validated request (`crate::chat::request`), is carried out (the engine
//! asked through the supervisor's `Inbound` channel, or a list or log tail answered here)
//! and answered to the sender only, with serenity's interaction builders. A click only
//! asks: the report is closed by the engine's `Resolve`, through the outbox.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serenity::all::{
    Command as SlashCommand, CommandDataOption, CommandDataOptionValue, CommandInteraction,
    ComponentInteraction, Context, CreateAllowedMentions, CreateAutocompleteResponse,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage,
    EditInteractionResponse, EventHandler, GuildId, Interaction, Ready,
};
use tokio::sync::{mpsc, oneshot};

use crate::chat::request::{self, Request};
use crate::chat::Inbound;
use crate::engine::{Command, Reply};
use crate::model::{Actor, JobName, Persona};

use super::interact::{self, Invocation};
use super::register;
use super::DiscordPrincipal;

/// What the handler needs of the setup, and where requests go.
pub(super) struct Core {
    pub(super) jobs: Vec<JobName>,
    pub(super) job_logs: BTreeMap<JobName, PathBuf>,
    pub(super) personas: Vec<(Persona, Vec<DiscordPrincipal>)>,
    pub(super) guild_id: Option<u64>,
    pub(super) channels: (u64, BTreeMap<JobName, u64>),
    pub(super) inbound: mpsc::Sender<Inbound>,
}

/// How long a command waits for the engine's answer (the interaction is deferred meanwhile).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

impl Core {
    async fn ask(&self, job: JobName, command: Command, by: Actor) -> Result<Vec<Reply>, String> {
        let (tx, rx) = oneshot::channel();
        self.inbound
            .send(Inbound {
                job,
                command,
                by,
                reply: tx,
            })
            .await
            .map_err(|_| "trainwatch is shutting down".to_string())?;
        match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Ok(Ok(replies)) => Ok(replies),
            Ok(Err(_)) => Err("the command was dropped (trainwatch is shutting down?)".into()),
            Err(_) => Err("no answer from the supervisor in time; check the channel for the outcome".into()),
        }
    }

    /// Carry out a validated request; the sender's ephemeral answer, as one message or
    /// more when it does not fit in one.
    async fn answer(&self, request: Request, by: Actor) -> Vec<String> {
        match request {
            Request::Engine { job, command } => match self.ask(job, command, by).await {
                Ok(replies) => interact::reply_pages(&replies),
                Err(why) => vec![why],
            },
            Request::StatusAll => {
                let mut replies = Vec::new();
                for job in &self.jobs {
                    match self.ask(job.clone(), Command::Status, by.clone()).await {
                        Ok(r) => replies.extend(r),
                        Err(why) => return vec![why],
                    }
                }
                interact::reply_pages(&replies)
            }
            Request::List => interact::list_pages(&self.jobs, |j| {
                self.channels.1.get(j).copied().unwrap_or(self.channels.0)
            }),
            Request::Logs { job, lines } => {
                if by.personas.is_empty() {
                    return vec![format!(
                        "{} may not read logs: that needs one of the configured roles",
                        by.display
                    )];
                }
                let path = self.job_logs.get(&job).cloned();
                tokio::task::spawn_blocking(move || interact::logs_text(&job, path.as_ref(), lines))
                    .await
                    .map(|t| vec![t])
                    .unwrap_or_else(|e| vec![format!("cannot read the log: {e}")])
            }
            Request::Help => vec![interact::HELP.into()],
        }
    }

    fn actor_of(&self, user: &serenity::all::User, roles: &[u64]) -> Actor {
        interact::actor(user.id.get(), &user.name, roles, &self.personas)
    }
}

/// serenity's event handler: registers the slash commands once ready, answers interactions.
pub(super) struct Handler {
    pub(super) core: Arc<Core>,
}

impl Handler {
    /// Discord already has exactly `commands` (every new session asks, so a reconnect or a
    /// restart writes nothing). When asking fails, they are written as before.
    async fn commands_registered(&self, ctx: &Context, commands: &[serenity::all::CreateCommand]) -> bool {
        let registered = match self.core.guild_id {
            Some(g) => GuildId::new(g).get_commands(ctx).await,
            None => SlashCommand::get_global_commands(ctx).await,
        };
        let (Ok(ours), Ok(registered)) = (
            serde_json::to_value(commands),
            registered.map_err(|e| tracing::warn!(error = %e, "cannot read the registered slash commands")),
        ) else {
            return false;
        };
        serde_json::to_value(registered).is_ok_and(|theirs| register::up_to_date(&ours, &theirs))
    }
}

/// Answers never ping: the text may quote what someone typed.
fn no_mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new()
}

/// A part of an answer sent after the first, to the sender only.
fn followup(text: String) -> CreateInteractionResponseFollowup {
    CreateInteractionResponseFollowup::new()
        .content(text)
        .ephemeral(true)
        .allowed_mentions(no_mentions())
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        ctx.http.set_application_id(ready.application.id);
        let commands = interact::commands();
        if self.commands_registered(&ctx, &commands).await {
            tracing::info!(guild = ?self.core.guild_id, "Discord connected; slash commands already registered");
            return;
        }
        let done = match self.core.guild_id {
            Some(g) => GuildId::new(g).set_commands(&ctx, commands).await.map(|_| ()),
            None => SlashCommand::set_global_commands(&ctx, commands)
                .await
                .map(|_| ()),
        };
        match done {
            Ok(()) => {
                tracing::info!(guild = ?self.core.guild_id, "Discord connected; slash commands registered")
            }
            Err(e) => tracing::error!(error = %e, "cannot register the slash commands"),
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let core = self.core.clone();
        let result = match interaction {
            Interaction::Command(c) => on_command(&core, &ctx, c).await,
            Interaction::Autocomplete(c) => on_autocomplete(&core, &ctx, c).await,
            Interaction::Component(c) => on_button(&core, &ctx, c).await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot answer an interaction");
        }
    }
}

fn roles_of(member: Option<&serenity::all::Member>) -> Vec<u64> {
    member
        .map(|m| m.roles.iter().map(|r| r.get()).collect())
        .unwrap_or_default()
}

fn option_text(v: &CommandDataOptionValue) -> Option<String> {
    match v {
        CommandDataOptionValue::String(s) => Some(s.clone()),
        CommandDataOptionValue::Integer(i) => Some(i.to_string()),
        CommandDataOptionValue::Number(n) => Some(n.to_string()),
        CommandDataOptionValue::Boolean(b) => Some(b.to_string()),
        CommandDataOptionValue::Autocomplete { value, .. } => Some(value.clone()),
        _ => None,
    }
}

fn invocation(name: &str, options: &[CommandDataOption]) -> Invocation {
    let mut inv = Invocation {
        name: name.to_string(),
        ..Default::default()
    };
    let mut opts = options;
    if let [CommandDataOption {
        name: sub,
        value: CommandDataOptionValue::SubCommand(inner),
        ..
    }] = options
    {
        inv.sub = Some(sub.clone());
        opts = inner;
    }
    for o in opts {
        if let Some(v) = option_text(&o.value) {
            inv.options.insert(o.name.clone(), v);
        }
    }
    inv
}

async fn on_command(core: &Core, ctx: &Context, c: CommandInteraction) -> serenity::Result<()> {
    // Deferred and ephemeral: the engine may take a moment, and answers are for the sender only.
    c.defer_ephemeral(ctx).await?;
    let by = core.actor_of(&c.user, &roles_of(c.member.as_deref()));
    let answer = match invocation(&c.data.name, &c.data.options).request(&core.jobs) {
        Ok(request) => core.answer(request, by).await,
        Err(why) => vec![why.to_string()],
    };
    let mut pages = answer.into_iter();
    c.edit_response(
        ctx,
        EditInteractionResponse::new()
            .content(pages.next().unwrap_or_default())
            .allowed_mentions(no_mentions()),
    )
    .await?;
    // What did not fit follows, in order, to the sender only.
    for page in pages {
        c.create_followup(ctx, followup(page)).await?;
    }
    Ok(())
}

async fn on_autocomplete(core: &Core, ctx: &Context, c: CommandInteraction) -> serenity::Result<()> {
    let typed = c
        .data
        .autocomplete()
        .map(|a| a.value.to_string())
        .unwrap_or_default();
    let choices = interact::complete(&typed, &core.jobs)
        .into_iter()
        .fold(CreateAutocompleteResponse::new(), |r, j| {
            r.add_string_choice(j.clone(), j)
        });
    c.create_response(ctx, CreateInteractionResponse::Autocomplete(choices))
        .await
}

/// A click asks the engine and tells the clicker its answer. It does not touch the report:
/// an accepted decision's `Resolve` closes it through the outbox.
async fn on_button(core: &Core, ctx: &Context, c: ComponentInteraction) -> serenity::Result<()> {
    let request = match request::from_button(&c.data.custom_id, &core.jobs) {
        Ok(r) => r,
        Err(why) => {
            let refusal = CreateInteractionResponseMessage::new()
                .content(why.to_string())
                .ephemeral(true)
                .allowed_mentions(no_mentions());
            return c
                .create_response(ctx, CreateInteractionResponse::Message(refusal))
                .await;
        }
    };
    // Acknowledged without a visible change; the answer follows once the engine gave it.
    c.create_response(ctx, CreateInteractionResponse::Acknowledge)
        .await?;
    let by = core.actor_of(&c.user, &roles_of(c.member.as_ref()));
    for page in core.answer(request, by).await {
        c.create_followup(ctx, followup(page)).await?;
    }
    Ok(())
}

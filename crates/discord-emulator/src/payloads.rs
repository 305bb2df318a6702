//! JSON payloads the emulator sends (gateway events, REST answers) and their validation
//! against serenity's own types: a payload serenity cannot parse would otherwise be dropped
//! silently on the bot side, so every outgoing payload is checked before it leaves.

use serde_json::{json, Value};
use serenity::all::{Channel, Command, Event, GatewayEvent, Message};

/// A user as the emulator presents it in payloads: id, name and (in guilds) role ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmuUser {
    /// Snowflake id of the user.
    pub id: u64,
    /// Username shown in payloads.
    pub name: String,
    /// Role ids the user has in the emulated guild.
    pub roles: Vec<u64>,
}

impl EmuUser {
    /// A user with the given id and name and no roles.
    pub fn new(id: u64, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            roles: Vec::new(),
        }
    }

    /// The same user with these guild role ids.
    pub fn with_roles(mut self, roles: impl IntoIterator<Item = u64>) -> Self {
        self.roles = roles.into_iter().collect();
        self
    }

    /// Discord's user object.
    pub fn user_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": null,
            "bot": false,
        })
    }

    /// Discord's guild member object (as embedded in interactions).
    pub fn member_json(&self) -> Value {
        json!({
            "user": self.user_json(),
            "nick": null,
            "roles": self.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "joined_at": "2024-01-01T00:00:00.000000+00:00",
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "permissions": "2248473465835073",
        })
    }
}

/// The bot's own user object.
pub fn bot_user_json(id: u64, name: &str) -> Value {
    json!({
        "id": id.to_string(),
        "username": name,
        "global_name": null,
        "discriminator": "0",
        "avatar": null,
        "bot": true,
        "verified": true,
        "mfa_enabled": false,
        "flags": 0,
    })
}

/// A role object with every key serenity 0.12.5 requires (`colors` included).
pub fn role_json(id: u64, name: &str, position: i64) -> Value {
    json!({
        "id": id.to_string(),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": position,
        "permissions": "2248473465835073",
        "managed": false,
        "mentionable": false,
        "flags": 0,
    })
}

/// A guild text channel object.
pub fn text_channel_json(id: u64, guild_id: u64, name: &str, position: u64) -> Value {
    json!({
        "id": id.to_string(),
        "type": 0,
        "guild_id": guild_id.to_string(),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "parent_id": null,
        "topic": null,
        "nsfw": false,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "flags": 0,
    })
}

/// A public thread channel object (type 11), as Discord answers thread creation.
pub fn thread_json(
    id: u64,
    guild_id: u64,
    parent_id: u64,
    owner_id: u64,
    name: &str,
    auto_archive: u64,
) -> Value {
    json!({
        "id": id.to_string(),
        "type": 11,
        "guild_id": guild_id.to_string(),
        "parent_id": parent_id.to_string(),
        "owner_id": owner_id.to_string(),
        "name": name,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": false,
            "auto_archive_duration": auto_archive,
            "archive_timestamp": now_timestamp(),
            "locked": false,
        },
    })
}

/// The current time as Discord formats timestamps.
pub fn now_timestamp() -> String {
    serenity::model::Timestamp::now().to_string()
}

/// Parameters of the emulated guild used in READY and GUILD_CREATE.
pub struct GuildSpec<'a> {
    /// Guild id.
    pub id: u64,
    /// Guild name.
    pub name: &'a str,
    /// Owner (the bot's user id is fine).
    pub owner_id: u64,
    /// Roles: (id, name).
    pub roles: &'a [(u64, String)],
    /// Text channels: (id, name).
    pub channels: &'a [(u64, String)],
}

/// A GUILD_CREATE `d` object with every key serenity 0.12.5 requires.
pub fn guild_create_json(g: &GuildSpec<'_>) -> Value {
    let mut roles = vec![role_json(g.id, "@everyone", 0)];
    roles.extend(
        g.roles
            .iter()
            .enumerate()
            .map(|(i, (id, name))| role_json(*id, name, i as i64 + 1)),
    );
    let channels: Vec<Value> = g
        .channels
        .iter()
        .enumerate()
        .map(|(i, (id, name))| text_channel_json(*id, g.id, name, i as u64))
        .collect();
    json!({
        "id": g.id.to_string(),
        "name": g.name,
        "icon": null,
        "icon_hash": null,
        "splash": null,
        "discovery_splash": null,
        "owner_id": g.owner_id.to_string(),
        "afk_channel_id": null,
        "afk_timeout": 300,
        "widget_enabled": false,
        "widget_channel_id": null,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": roles,
        "emojis": [],
        "features": [],
        "mfa_level": 0,
        "application_id": null,
        "system_channel_id": null,
        "system_channel_flags": 0,
        "rules_channel_id": null,
        "max_presences": null,
        "max_members": 500000,
        "vanity_url_code": null,
        "description": null,
        "banner": null,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": null,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "approximate_member_count": null,
        "approximate_presence_count": null,
        "nsfw_level": 0,
        "stickers": [],
        "premium_progress_bar_enabled": false,
        "safety_alerts_channel_id": null,
        "incidents_data": null,
        "joined_at": "2024-01-01T00:00:00.000000+00:00",
        "large": false,
        "unavailable": false,
        "member_count": 1,
        "voice_states": [],
        "members": [],
        "channels": channels,
        "threads": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "lazy": true,
    })
}

/// Why an outgoing payload was rejected by serenity's types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} does not deserialize as serenity would read it: {reason}; payload: {payload}")]
pub struct ValidationError {
    /// Which kind of payload (e.g. `gateway INTERACTION_CREATE`, `REST Message`).
    pub what: String,
    /// serde's message.
    pub reason: String,
    /// The offending payload, truncated.
    pub payload: String,
}

fn verr(what: impl Into<String>, reason: impl ToString, payload: &Value) -> ValidationError {
    let mut p = payload.to_string();
    if p.len() > 2000 {
        let mut cut = 2000;
        while !p.is_char_boundary(cut) {
            cut -= 1;
        }
        p.truncate(cut);
    }
    ValidationError {
        what: what.into(),
        reason: reason.to_string(),
        payload: p,
    }
}

/// Checks a full gateway frame (`{op, d, s, t}`) the way serenity's shard reads it; a
/// dispatch must not come out as `Event::Unknown` (serenity drops those silently).
pub fn check_gateway_frame(frame: &Value) -> Result<(), ValidationError> {
    let what = format!("gateway op {} {}", frame["op"], frame["t"].as_str().unwrap_or(""));
    match serde_json::from_value::<GatewayEvent>(frame.clone()) {
        Ok(GatewayEvent::Dispatch(_, Event::Unknown(u))) => Err(verr(
            what,
            format!("parsed as Event::Unknown ({})", u.kind),
            frame,
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(verr(what, e, frame)),
    }
}

/// Which serenity type a REST answer body must deserialize as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestShape {
    /// A `Message`.
    Message,
    /// A list of `Message`.
    Messages,
    /// A `Channel`.
    Channel,
    /// A list of `Command`.
    Commands,
    /// A `CurrentUser`.
    CurrentUser,
    /// Not checked (error bodies, gateway info, empty bodies).
    Unchecked,
}

/// Checks a REST answer body against serenity's type for its route.
pub fn check_rest_body(shape: RestShape, body: &Value) -> Result<(), ValidationError> {
    let r = match shape {
        RestShape::Message => serde_json::from_value::<Message>(body.clone()).map(drop),
        RestShape::Messages => serde_json::from_value::<Vec<Message>>(body.clone()).map(drop),
        RestShape::Channel => serde_json::from_value::<Channel>(body.clone()).map(drop),
        RestShape::Commands => serde_json::from_value::<Vec<Command>>(body.clone()).map(drop),
        RestShape::CurrentUser => {
            serde_json::from_value::<serenity::all::CurrentUser>(body.clone()).map(drop)
        }
        RestShape::Unchecked => Ok(()),
    };
    r.map_err(|e| verr(format!("REST {shape:?}"), e, body))
}

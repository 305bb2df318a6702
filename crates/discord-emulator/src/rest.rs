//! The emulated REST API: routes a request (already read in full) to an answer, updating
//! the channel store, commands and interactions, and recording the request. Transport
//! (plain HTTP, CONNECT + TLS) lives in `server`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::payloads::{self, check_rest_body, RestShape};
use crate::refuse;
use crate::state::{Inner, Shared};
use crate::{FaultKind, FilePart, RecordedRequest, RequestBody};

mod body;
mod interactions;
use body::parse_body;
use interactions::{followup, interaction_callback, webhook_message};

/// Headers worth recording (others are noise for tests).
const RECORDED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "user-agent",
    "x-audit-log-reason",
    "host",
];

/// What the transport must do.
#[derive(Debug)]
pub(crate) enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Option<Value>,
    },
    DropConnection,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Reply::Respond {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }
    fn no_content() -> Self {
        Reply::Respond {
            status: 204,
            headers: Vec::new(),
            body: None,
        }
    }
    fn error(status: u16, code: u64, message: &str) -> Self {
        Reply::json(status, json!({"message": message, "code": code}))
    }
    fn status(&self) -> u16 {
        match self {
            Reply::Respond { status, .. } => *status,
            Reply::DropConnection => 0,
        }
    }
}

/// An incoming request, transport-independent.
pub(crate) struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    pub tls: bool,
}

/// Handles one REST request end to end: faults, routing, validation, recording.
pub(crate) fn handle(shared: &Shared, req: Incoming<'_>) -> Reply {
    let route = strip_api_prefix(req.path).to_string();
    let headers: BTreeMap<String, String> = req
        .headers
        .iter()
        .filter(|(k, _)| RECORDED_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let body = parse_body(headers.get("content-type").map(String::as_str), req.body);

    let fault = shared.update(|i| take_fault(i, req.method, &route));
    let (reply, shape) = match fault {
        Some(kind) => (fault_reply(&kind), RestShape::Unchecked),
        None => match refusal(shared, req.method, &route, &headers, &body) {
            Some(refused) => (refused, RestShape::Unchecked),
            None => route_request(shared, req.method, &route, req.query, &headers, &body),
        },
    };

    if shared.cfg.validate {
        if let Reply::Respond {
            status: 200..=299,
            body: Some(b),
            ..
        } = &reply
        {
            if let Err(e) = check_rest_body(shape, b) {
                shared.record_validation(e);
            }
        }
    }

    let record = RecordedRequest {
        method: req.method.to_string(),
        path: route,
        raw_path: req.path.to_string(),
        query: req.query.map(str::to_string),
        headers,
        body,
        status: reply.status(),
        tls: req.tls,
    };
    tracing::debug!(method = %record.method, path = %record.path, status = record.status, "emulator REST");
    shared.update(|i| i.requests.push(record));
    reply
}

/// What Discord refuses before routing (see `refuse`): a missing agent, too many allowed
/// mentions, a body a test's rule names.
fn refusal(
    shared: &Shared,
    method: &str,
    route: &str,
    headers: &BTreeMap<String, String>,
    body: &RequestBody,
) -> Option<Reply> {
    if shared.cfg.require_user_agent
        && !refuse::valid_user_agent(headers.get("user-agent").map(String::as_str))
    {
        return Some(Reply::json(403, refuse::no_agent_body()));
    }
    if !refuse::writes_message(method, route) {
        return None;
    }
    let json = body.json()?;
    // An interaction response carries its message under `data`.
    let message = json
        .get("data")
        .filter(|_| route.starts_with("/interactions/"))
        .unwrap_or(json);
    if let Some(e) = refuse::too_many_mentions(message) {
        return Some(Reply::json(400, e));
    }
    shared
        .update(|i| refuse::refused_by_rule(&mut i.refusals, json))
        .map(|e| Reply::json(400, e))
}

fn strip_api_prefix(path: &str) -> &str {
    for p in ["/api/v10", "/api/v9", "/api"] {
        if let Some(rest) = path.strip_prefix(p) {
            if rest.is_empty() || rest.starts_with('/') {
                return if rest.is_empty() { "/" } else { rest };
            }
        }
    }
    path
}

fn take_fault(i: &mut Inner, method: &str, route: &str) -> Option<FaultKind> {
    let now = tokio::time::Instant::now();
    i.faults
        .retain(|f| f.until.is_none_or(|u| now < u) && f.remaining != Some(0));
    let f = i.faults.iter_mut().find(|f| f.matches(method, route))?;
    if let Some(n) = f.remaining.as_mut() {
        *n -= 1;
    }
    Some(f.kind.clone())
}

fn fault_reply(kind: &FaultKind) -> Reply {
    match kind {
        FaultKind::RateLimited { retry_after, global } => {
            let secs = retry_after.as_secs_f64();
            let mut headers = vec![
                ("retry-after".to_string(), format!("{secs}")),
                ("x-ratelimit-limit".to_string(), "5".to_string()),
                ("x-ratelimit-remaining".to_string(), "0".to_string()),
                ("x-ratelimit-reset-after".to_string(), format!("{secs}")),
                ("x-ratelimit-bucket".to_string(), "emulated".to_string()),
                (
                    "x-ratelimit-scope".to_string(),
                    if *global { "global" } else { "user" }.to_string(),
                ),
            ];
            if *global {
                headers.push(("x-ratelimit-global".to_string(), "true".to_string()));
            }
            Reply::Respond {
                status: 429,
                headers,
                body: Some(json!({
                    "message": "You are being rate limited.",
                    "retry_after": secs,
                    "global": global,
                })),
            }
        }
        FaultKind::Status(code) => Reply::json(*code, json!({"message": "emulated server error", "code": 0})),
        FaultKind::DropConnection => Reply::DropConnection,
    }
}

/// Discord sends snowflakes as strings; compare them as numbers.
pub(crate) fn id_is(v: &Value, id: u64) -> bool {
    v.as_str().and_then(|s| s.parse::<u64>().ok()) == Some(id)
}

fn id(seg: &str) -> Option<u64> {
    seg.parse().ok()
}

fn route_request(
    shared: &Shared,
    method: &str,
    route: &str,
    query: Option<&str>,
    headers: &BTreeMap<String, String>,
    body: &RequestBody,
) -> (Reply, RestShape) {
    if let Some(expected) = &shared.cfg.token {
        let ok = headers
            .get("authorization")
            .is_some_and(|a| a == &format!("Bot {expected}") || a == expected);
        let webhook_route = route.starts_with("/webhooks/") || route.starts_with("/interactions/");
        if !ok && !webhook_route && !route.starts_with("/gateway") {
            return (Reply::error(401, 0, "401: Unauthorized"), RestShape::Unchecked);
        }
    }
    let segs: Vec<&str> = route.trim_matches('/').split('/').collect();
    let json = body.json().cloned().unwrap_or(Value::Null);
    let files = body.files();
    let _ = query;
    let cfg = &shared.cfg;
    match (method, segs.as_slice()) {
        ("GET", ["gateway"]) => (
            Reply::json(200, json!({"url": shared.gateway_url()})),
            RestShape::Unchecked,
        ),
        ("GET", ["gateway", "bot"]) => (
            Reply::json(
                200,
                json!({
                    "url": shared.gateway_url(),
                    "shards": 1,
                    "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1},
                }),
            ),
            RestShape::Unchecked,
        ),
        ("GET", ["users", "@me"]) => (
            Reply::json(200, payloads::bot_user_json(cfg.bot_user_id, &cfg.bot_name)),
            RestShape::CurrentUser,
        ),
        ("GET", ["channels", c, "messages"]) => match id(c) {
            Some(c) => shared.update(|i| match i.messages.get(&c) {
                // Discord lists newest first.
                Some(m) => (
                    Reply::json(200, Value::Array(m.iter().rev().cloned().collect())),
                    RestShape::Messages,
                ),
                None if i.channels.contains_key(&c) => (Reply::json(200, json!([])), RestShape::Messages),
                None => unknown_channel(),
            }),
            None => unknown_route(),
        },
        ("POST", ["channels", c, "messages"]) => match id(c) {
            Some(c) => shared.update(|i| {
                if !i.channels.contains_key(&c) {
                    return unknown_channel();
                }
                // Discord's idempotent create: with `enforce_nonce`, a nonce the same author
                // already used returns that message instead of creating another. (Discord
                // forgets nonces after a few minutes; the emulator keeps them for its life.)
                if let Some(n) = enforced_nonce(&json) {
                    let earlier = i.messages.values().flatten().find(|m| m.get("nonce") == Some(&n));
                    if let Some(m) = earlier {
                        return (Reply::json(200, m.clone()), RestShape::Message);
                    }
                }
                let msg = new_message(shared, i, c, &json, &files, None);
                (Reply::json(200, msg), RestShape::Message)
            }),
            None => unknown_route(),
        },
        ("GET", ["channels", c, "messages", m]) => match (id(c), id(m)) {
            (Some(c), Some(m)) => shared.update(|i| match find_message(i, c, m) {
                Some(msg) => (Reply::json(200, msg.clone()), RestShape::Message),
                None => unknown_message(),
            }),
            _ => unknown_route(),
        },
        ("PATCH", ["channels", c, "messages", m]) => match (id(c), id(m)) {
            (Some(c), Some(m)) => shared.update(|i| edit_message(shared, i, c, m, &json, &files)),
            _ => unknown_route(),
        },
        ("DELETE", ["channels", c, "messages", m]) => match (id(c), id(m)) {
            (Some(c), Some(m)) => shared.update(|i| delete_message(i, c, m)),
            _ => unknown_route(),
        },
        ("POST", ["channels", c, "typing"]) => match id(c) {
            Some(c) if shared.read().channels.contains_key(&c) => (Reply::no_content(), RestShape::Unchecked),
            _ => unknown_channel(),
        },
        ("POST", ["channels", c, "messages", m, "threads"]) => match (id(c), id(m)) {
            (Some(c), Some(m)) => shared.update(|i| create_thread(shared, i, c, m, &json)),
            _ => unknown_route(),
        },
        ("POST", ["interactions", iid, token, "callback"]) => match id(iid) {
            Some(iid) => shared.update(|i| interaction_callback(shared, i, iid, token, &json, &files)),
            None => unknown_interaction(),
        },
        ("POST", ["webhooks", app, token]) if id(app) == Some(cfg.application_id) => {
            shared.update(|i| followup(shared, i, token, &json, &files))
        }
        (_, ["webhooks", app, token, "messages", which]) if id(app) == Some(cfg.application_id) => {
            shared.update(|i| webhook_message(shared, i, method, token, which, &json, &files))
        }
        ("GET", ["applications", app, "commands"]) if id(app) == Some(cfg.application_id) => {
            let cmds = shared.read().global_commands.clone();
            (Reply::json(200, Value::Array(cmds)), RestShape::Commands)
        }
        ("PUT", ["applications", app, "commands"]) if id(app) == Some(cfg.application_id) => {
            shared.update(|i| {
                let old = std::mem::take(&mut i.global_commands);
                match overwrite_commands(shared, &old, None, &json) {
                    Ok(new) => {
                        i.global_commands = new.clone();
                        (Reply::json(200, Value::Array(new)), RestShape::Commands)
                    }
                    Err(r) => {
                        i.global_commands = old;
                        r
                    }
                }
            })
        }
        ("GET", ["applications", app, "guilds", g, "commands"]) if id(app) == Some(cfg.application_id) => {
            match id(g) {
                Some(g) => {
                    let cmds = shared.read().guild_commands.get(&g).cloned().unwrap_or_default();
                    (Reply::json(200, Value::Array(cmds)), RestShape::Commands)
                }
                None => unknown_route(),
            }
        }
        ("PUT", ["applications", app, "guilds", g, "commands"]) if id(app) == Some(cfg.application_id) => {
            match id(g) {
                Some(g) if g == cfg.guild_id => shared.update(|i| {
                    let old = i.guild_commands.remove(&g).unwrap_or_default();
                    match overwrite_commands(shared, &old, Some(g), &json) {
                        Ok(new) => {
                            i.guild_commands.insert(g, new.clone());
                            (Reply::json(200, Value::Array(new)), RestShape::Commands)
                        }
                        Err(r) => {
                            i.guild_commands.insert(g, old);
                            r
                        }
                    }
                }),
                _ => (Reply::error(404, 10004, "Unknown Guild"), RestShape::Unchecked),
            }
        }
        _ => unknown_route(),
    }
}

impl Shared {
    pub(crate) fn gateway_url(&self) -> String {
        self.gateway_url.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

fn unknown_route() -> (Reply, RestShape) {
    (Reply::error(404, 0, "404: Not Found"), RestShape::Unchecked)
}
fn unknown_channel() -> (Reply, RestShape) {
    (Reply::error(404, 10003, "Unknown Channel"), RestShape::Unchecked)
}
fn unknown_message() -> (Reply, RestShape) {
    (Reply::error(404, 10008, "Unknown Message"), RestShape::Unchecked)
}
fn unknown_interaction() -> (Reply, RestShape) {
    (
        Reply::error(404, 10062, "Unknown interaction"),
        RestShape::Unchecked,
    )
}
fn unknown_webhook() -> (Reply, RestShape) {
    (Reply::error(404, 10015, "Unknown Webhook"), RestShape::Unchecked)
}

fn find_message(i: &Inner, c: u64, m: u64) -> Option<&Value> {
    i.messages.get(&c)?.iter().find(|v| id_is(&v["id"], m))
}

fn find_message_mut(i: &mut Inner, c: u64, m: u64) -> Option<&mut Value> {
    i.messages.get_mut(&c)?.iter_mut().find(|v| id_is(&v["id"], m))
}

/// Attachment objects for uploaded files, keyed by the `files[n]` index the client used.
fn build_attachments(
    shared: &Shared,
    i: &mut Inner,
    channel: u64,
    json: &Value,
    files: &[FilePart],
) -> Vec<Value> {
    let declared = json
        .get("attachments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for f in files {
        let index: Option<u64> = f
            .field
            .strip_prefix("files[")
            .and_then(|s| s.strip_suffix(']'))
            .and_then(|s| s.parse().ok());
        let decl = declared.iter().find(|a| {
            a.get("id")
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                == index
        });
        let filename = decl
            .and_then(|d| d.get("filename").and_then(Value::as_str))
            .map(str::to_string)
            .or_else(|| f.filename.clone())
            .unwrap_or_else(|| "file".to_string());
        let aid = shared.snowflake();
        i.attachments.insert(aid, f.data.clone());
        let url = format!("https://cdn.discordapp.com/attachments/{channel}/{aid}/{filename}");
        let mut a = json!({
            "id": aid.to_string(),
            "filename": filename,
            "size": f.data.len(),
            "url": url,
            "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net"),
        });
        if let Some(ct) = &f.content_type {
            a["content_type"] = json!(ct);
        }
        if let Some(d) = decl.and_then(|d| d.get("description")) {
            a["description"] = d.clone();
        }
        out.push(a);
    }
    out
}

/// Builds and stores a message as Discord would return it.
/// The nonce of a create-message body that asks Discord to enforce it.
fn enforced_nonce(body: &Value) -> Option<Value> {
    if body.get("enforce_nonce").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    body.get("nonce").filter(|n| n.is_string() || n.is_u64()).cloned()
}

fn new_message(
    shared: &Shared,
    i: &mut Inner,
    channel: u64,
    body: &Value,
    files: &[FilePart],
    webhook: Option<(u64, u64)>, // (application id, interaction id)
) -> Value {
    let cfg = &shared.cfg;
    let mid = shared.snowflake();
    let attachments = build_attachments(shared, i, channel, body, files);
    let embeds: Vec<Value> = body
        .get("embeds")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(normalise_embed)
        .collect();
    let mut msg = json!({
        "id": mid.to_string(),
        "channel_id": channel.to_string(),
        "guild_id": cfg.guild_id.to_string(),
        "author": payloads::bot_user_json(cfg.bot_user_id, &cfg.bot_name),
        "content": body.get("content").and_then(Value::as_str).unwrap_or(""),
        "timestamp": payloads::now_timestamp(),
        "edited_timestamp": null,
        "tts": body.get("tts").and_then(Value::as_bool).unwrap_or(false),
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "mention_channels": [],
        "attachments": attachments,
        "embeds": embeds,
        "reactions": [],
        "pinned": false,
        "type": 0,
        "flags": body.get("flags").and_then(Value::as_u64).unwrap_or(0),
        "components": body.get("components").cloned().unwrap_or_else(|| json!([])),
    });
    if let Some(n) = body.get("nonce").filter(|n| n.is_string() || n.is_u64()) {
        msg["nonce"] = n.clone();
    }
    if let Some(r) = body.get("message_reference") {
        msg["message_reference"] = r.clone();
        msg["type"] = json!(19);
    }
    if let Some((app, _interaction)) = webhook {
        msg["webhook_id"] = json!(app.to_string());
        msg["application_id"] = json!(app.to_string());
    }
    i.messages.entry(channel).or_default().push(msg.clone());
    msg
}

/// Discord stores embeds with `type: "rich"`; serenity reads either.
fn normalise_embed(mut e: Value) -> Value {
    if let Some(o) = e.as_object_mut() {
        o.entry("type").or_insert(json!("rich"));
    }
    e
}

/// Applies an edit body to a stored message (only keys present are replaced).
fn apply_edit(
    shared: &Shared,
    i: &mut Inner,
    channel: u64,
    msg_id: u64,
    body: &Value,
    files: &[FilePart],
) -> Option<Value> {
    let new_attachments = build_attachments(shared, i, channel, body, files);
    let msg = find_message_mut(i, channel, msg_id)?;
    let obj: &Map<String, Value> = match body.as_object() {
        Some(o) => o,
        None => return Some(msg.clone()),
    };
    for key in ["content", "components", "flags"] {
        if let Some(v) = obj.get(key) {
            msg[key] = if v.is_null() && key == "content" {
                json!("")
            } else {
                v.clone()
            };
        }
    }
    if let Some(e) = obj.get("embeds") {
        let embeds: Vec<Value> = e
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(normalise_embed)
            .collect();
        msg["embeds"] = Value::Array(embeds);
    }
    if let Some(keep) = obj.get("attachments").and_then(Value::as_array) {
        // Existing attachments listed by id are kept; the others are removed.
        let keep_ids: Vec<String> = keep
            .iter()
            .filter_map(|a| a.get("id"))
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            .collect();
        let mut kept: Vec<Value> = msg["attachments"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| {
                a["id"]
                    .as_str()
                    .is_some_and(|id| keep_ids.iter().any(|k| k == id))
            })
            .collect();
        kept.extend(new_attachments);
        msg["attachments"] = Value::Array(kept);
    } else if !new_attachments.is_empty() {
        if let Some(a) = msg["attachments"].as_array_mut() {
            a.extend(new_attachments);
        }
    }
    // A deferred ("thinking") response loses its loading flag once edited.
    if let Some(f) = msg["flags"].as_u64() {
        msg["flags"] = json!(f & !128);
    }
    msg["edited_timestamp"] = json!(payloads::now_timestamp());
    Some(msg.clone())
}

fn edit_message(
    shared: &Shared,
    i: &mut Inner,
    c: u64,
    m: u64,
    body: &Value,
    files: &[FilePart],
) -> (Reply, RestShape) {
    let is_bots = find_message(i, c, m).map(|msg| id_is(&msg["author"]["id"], shared.cfg.bot_user_id));
    match is_bots {
        None => unknown_message(),
        Some(false) => (
            Reply::error(403, 50005, "Cannot edit a message authored by another user"),
            RestShape::Unchecked,
        ),
        Some(true) => match apply_edit(shared, i, c, m, body, files) {
            Some(msg) => (Reply::json(200, msg), RestShape::Message),
            None => unknown_message(),
        },
    }
}

fn delete_message(i: &mut Inner, c: u64, m: u64) -> (Reply, RestShape) {
    let Some(list) = i.messages.get_mut(&c) else {
        return unknown_message();
    };
    let before = list.len();
    list.retain(|v| !id_is(&v["id"], m));
    if list.len() == before {
        unknown_message()
    } else {
        (Reply::no_content(), RestShape::Unchecked)
    }
}

fn create_thread(shared: &Shared, i: &mut Inner, c: u64, m: u64, body: &Value) -> (Reply, RestShape) {
    if find_message(i, c, m).is_none() {
        return unknown_message();
    }
    if i.channels.contains_key(&m) {
        return (
            Reply::error(400, 160004, "A thread has already been created for this message"),
            RestShape::Unchecked,
        );
    }
    let Some(name) = body.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
        return (
            Reply::json(
                400,
                json!({"message": "Invalid Form Body", "code": 50035, "errors": {"name": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}}}),
            ),
            RestShape::Unchecked,
        );
    };
    let archive = body
        .get("auto_archive_duration")
        .and_then(Value::as_u64)
        .unwrap_or(1440);
    // Discord gives a thread started from a message the message's id.
    i.channels.insert(m, c);
    let thread = payloads::thread_json(m, shared.cfg.guild_id, c, shared.cfg.bot_user_id, name, archive);
    if let Some(msg) = find_message_mut(i, c, m) {
        msg["thread"] = thread.clone();
    }
    (Reply::json(201, thread), RestShape::Channel)
}

/// Bulk overwrite: commands keep their id when their name is unchanged, as on Discord.
fn overwrite_commands(
    shared: &Shared,
    old: &[Value],
    guild: Option<u64>,
    body: &Value,
) -> Result<Vec<Value>, (Reply, RestShape)> {
    let Some(list) = body.as_array() else {
        return Err((
            Reply::error(400, 50035, "Invalid Form Body"),
            RestShape::Unchecked,
        ));
    };
    let mut out = Vec::new();
    for c in list {
        let Some(name) = c.get("name").and_then(Value::as_str) else {
            return Err((
                Reply::error(400, 50035, "Invalid Form Body: command name is required"),
                RestShape::Unchecked,
            ));
        };
        let kind = c.get("type").and_then(Value::as_u64).unwrap_or(1);
        let id = old
            .iter()
            .find(|o| o["name"] == name && o["type"].as_u64() == Some(kind))
            .and_then(|o| o["id"].as_str().map(str::to_string))
            .unwrap_or_else(|| shared.snowflake().to_string());
        let mut cmd = c.clone();
        let o = cmd
            .as_object_mut()
            .expect("checked above: has a name key, so an object");
        o.insert("id".into(), json!(id));
        o.insert("type".into(), json!(kind));
        o.insert(
            "application_id".into(),
            json!(shared.cfg.application_id.to_string()),
        );
        o.insert("version".into(), json!(shared.snowflake().to_string()));
        o.entry("description").or_insert(json!(""));
        o.entry("default_member_permissions").or_insert(Value::Null);
        o.entry("nsfw").or_insert(json!(false));
        if let Some(g) = guild {
            o.insert("guild_id".into(), json!(g.to_string()));
        }
        out.push(cmd);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parts_are_split() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n--XX\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{\"content\":\"hi\"}\r\n--XX--\r\n";
        match parse_body(Some("multipart/form-data; boundary=XX"), body) {
            RequestBody::Multipart { payload_json, files } => {
                assert_eq!(payload_json, Some(json!({"content": "hi"})));
                assert_eq!(files.len(), 1);
                assert_eq!(files[0].field, "files[0]");
                assert_eq!(files[0].filename.as_deref(), Some("a.png"));
                assert_eq!(files[0].data, b"PNGDATA");
            }
            other => panic!("not multipart: {other:?}"),
        }
    }

    #[test]
    fn garbage_bodies_do_not_panic() {
        for ct in [
            Some("multipart/form-data; boundary=X"),
            Some("application/json"),
            None,
        ] {
            for body in [&b"--X"[..], b"--X\r\n\r\n", b"\xff\xfe", b"--X--", b"{"] {
                let _ = parse_body(ct, body);
            }
        }
    }

    #[test]
    fn api_prefix_is_stripped() {
        assert_eq!(
            strip_api_prefix("/api/v10/channels/1/messages"),
            "/channels/1/messages"
        );
        assert_eq!(strip_api_prefix("/api/v10"), "/");
        assert_eq!(strip_api_prefix("/apix"), "/apix");
    }
}

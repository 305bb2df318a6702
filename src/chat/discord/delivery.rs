//! The outbox worker: sends stored Discord messages in id order per channel, marks each
//! sent right after Discord accepted it, and retries the rest — a 429 after its
//! `retry-after`, a 5xx or network error with capped exponential backoff — so a gateway
//! disconnect, an outage or a restart of the bot loses nothing.
//!
//! A refusal never swallows a message. 401 or 403 means the token or the bot's permissions
//! are wrong: said loudly once (and once when Discord accepts again), the entry kept and
//! retried with backoff until it goes through. Any other refusal (a 4xx Discord finds
//! invalid) is recorded on the entry with what Discord said, and the message is sent once
//! more in its minimal plain-text form (`plain`); only if that is refused too is the entry
//! abandoned (kept in the store with both errors), so it does not block its channel.
//! Every body goes out with at most 100 allowed role and user mentions, Discord's cap.
//!
//! Each time round, what waits in the lane of messages sent ahead of the outbox (`ahead`: a
//! store notice while the store refuses writes) goes first; its outbox copy, reached later,
//! is marked sent without posting again. A `mark_sent` the store refuses (it is full, say)
//! is kept in memory and retried first each time round, and its entry is not sent again.
//!
//! Duplicate window: if the process dies after Discord accepted a message and before
//! `mark_sent` commits (one SQLite write), that entry is sent again after the restart, with
//! the same nonce (see [`nonce_of`]).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::engine::MessageKey;
use crate::model::{JobName, RunId};
use crate::store::{OutboxEntry, Store};

use super::ahead::{Ahead, Early};
use super::embed::TextFile;
use super::rest::{Rest, RestError};
use super::{attach, embed, plain};

/// What an outbox entry for Discord holds: the rendered body plus what delivery must
/// decide when it sends (edit the run's status message, thread under a report). Which
/// report it is (job, run, key) is the entry's row's, not repeated here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Envelope {
    Post {
        body: Value,
        /// Status mode "edit": replace the run's previous status message if there is one.
        #[serde(default)]
        edit_status: bool,
        /// Post in a thread started on this report (investigation requests).
        #[serde(default)]
        thread_on: Option<MessageKey>,
        #[serde(default)]
        thread_name: Option<String>,
        /// Files to upload with it (paths, read at send time: the outbox stays small).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<PathBuf>,
        /// Text files rendered with it (the complete message when it is too long for one).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        texts: Vec<TextFile>,
        /// The nonce it is posted with, fixed when rendered (a message that may be sent
        /// ahead of the outbox, before its entry has an id); else derived from the entry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    Update {
        body: Value,
        /// Replace the message's files with these; none keeps the files it has.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<PathBuf>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        texts: Vec<TextFile>,
    },
    Resolve {
        note: String,
    },
}

/// Backoff for transient failures: doubles from `initial` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// How often the outbox is looked at without a wake-up (entries written by another process).
    pub poll: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            poll: Duration::from_secs(30),
        }
    }
}

/// How far back to look for the run's previous status message.
const STATUS_LOOKBACK: u32 = 32;
const BATCH: usize = 500;

pub(crate) struct Worker {
    pub rest: Arc<Rest>,
    pub store: Arc<Mutex<Store>>,
    pub notify: Arc<Notify>,
    pub policy: RetryPolicy,
    /// Messages to send ahead of the outbox.
    pub ahead: Arc<Mutex<Ahead>>,
}

/// A message Discord accepted whose `mark_sent` the store refused: when, and its id.
type Unmarked = HashMap<i64, (chrono::DateTime<Utc>, Option<String>)>;

/// Per-channel retry state: not before `until`; `delay` is the last backoff used.
struct Blocked {
    until: Instant,
    delay: Option<Duration>,
}

/// How long to wait before the next attempt on a channel after `err`, and the backoff to
/// remember: a 429 waits exactly what Discord asked and leaves the backoff alone; anything
/// else doubles the previous backoff, from `initial` up to `max`.
pub fn retry_after(
    err: &RestError,
    prev: Option<Duration>,
    policy: &RetryPolicy,
) -> (Duration, Option<Duration>) {
    match err {
        RestError::RateLimited { retry_after, .. } => (*retry_after, prev),
        _ => {
            let d = match prev {
                Some(p) => (p * 2).min(policy.max),
                None => policy.initial,
            };
            (d, Some(d))
        }
    }
}

/// Hold `channel` back after `err` (backoff as [`retry_after`] says); how long.
fn hold(
    blocked: &mut HashMap<String, Blocked>,
    channel: &str,
    err: &RestError,
    policy: &RetryPolicy,
) -> Duration {
    let prev = blocked.get(channel).and_then(|b| b.delay);
    let (wait, delay) = retry_after(err, prev, policy);
    let until = Instant::now() + wait;
    blocked.insert(channel.to_string(), Blocked { until, delay });
    wait
}

impl Worker {
    fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        // A panic elsewhere while holding the lock must not stop delivery.
        let mut guard = self.store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    fn lane(&self) -> std::sync::MutexGuard<'_, Ahead> {
        self.ahead.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mark entry `id` sent; a refusal is kept in `unmarked`, retried before anything else.
    fn mark(&self, unmarked: &mut Unmarked, id: i64, at: chrono::DateTime<Utc>, mid: Option<String>) {
        if let Err(err) = self.with_store(|s| s.mark_sent(id, at, mid.as_deref())) {
            tracing::error!(error = %err, id, "sent but could not mark the outbox entry; will mark it again");
            unmarked.insert(id, (at, mid));
        }
    }

    /// Send what waits in the lane ahead of the outbox, under the same per-channel holds.
    async fn send_ahead(&self, blocked: &mut HashMap<String, Blocked>, global_until: &mut Option<Instant>) {
        let waiting = self.lane().waiting();
        for early in waiting {
            let Early { nonce, entry } = early;
            if global_until.is_some_and(|g| g > Instant::now()) {
                return;
            }
            if blocked
                .get(&entry.channel)
                .is_some_and(|b| b.until > Instant::now())
            {
                continue;
            }
            match self.deliver(&entry).await {
                Ok(mid) => {
                    tracing::info!(job = %entry.job, key = %entry.key, "sent ahead of the outbox");
                    match mid {
                        Some(mid) => self.lane().sent(&nonce, mid),
                        None => self.lane().withdraw(&nonce),
                    }
                    match self.rest.take_pause() {
                        Some(p) => {
                            blocked.insert(
                                entry.channel.clone(),
                                Blocked {
                                    until: Instant::now() + p,
                                    delay: None,
                                },
                            );
                        }
                        None => {
                            blocked.remove(&entry.channel);
                        }
                    }
                }
                Err(RestError::Permanent { status, body }) => {
                    tracing::warn!(job = %entry.job, key = %entry.key, status, discord_said = %body, "Discord refused a message sent ahead of the outbox; its outbox copy will deliver it");
                    self.lane().withdraw(&nonce);
                }
                Err(err) => {
                    let wait = hold(blocked, &entry.channel, &err, &self.policy);
                    if let RestError::RateLimited { global: true, .. } = err {
                        *global_until = Some(Instant::now() + wait);
                    }
                    tracing::warn!(job = %entry.job, key = %entry.key, error = %err, retry_in = ?wait, "sending ahead of the outbox failed; will retry");
                }
            }
        }
    }

    pub async fn run(self) {
        let mut blocked: HashMap<String, Blocked> = HashMap::new();
        // A global 429 holds every channel.
        let mut global_until: Option<Instant> = None;
        // Said once until Discord accepts a request again.
        let mut auth_alarm = false;
        let mut unmarked: Unmarked = HashMap::new();
        loop {
            for (id, (at, mid)) in std::mem::take(&mut unmarked) {
                self.mark(&mut unmarked, id, at, mid);
            }
            self.send_ahead(&mut blocked, &mut global_until).await;
            let entries = match self.with_store(|s| s.pending(BATCH)) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    Vec::new()
                }
            };
            let full = entries.len() == BATCH;
            let mut progressed = false;
            let mut stuck: HashSet<String> = HashSet::new();
            for e in entries {
                if unmarked.contains_key(&e.id) {
                    continue; // sent: only its mark is missing
                }
                if global_until.is_some_and(|g| g > Instant::now()) {
                    break;
                }
                if stuck.contains(&e.channel) {
                    continue;
                }
                if blocked.get(&e.channel).is_some_and(|b| b.until > Instant::now()) {
                    stuck.insert(e.channel.clone());
                    continue;
                }
                if let Some(mid) = payload_nonce(&e).and_then(|n| self.lane().claim(&n)) {
                    // Sent ahead of the outbox already: this copy is only marked.
                    self.mark(&mut unmarked, e.id, Utc::now(), Some(mid.to_string()));
                    progressed = true;
                    continue;
                }
                let result = self.deliver(&e).await;
                let now = Utc::now();
                if auth_alarm && result.is_ok() {
                    auth_alarm = false;
                    tracing::warn!("Discord accepts the bot's requests again; delivering the kept messages");
                }
                match result {
                    Ok(mid) => {
                        self.mark(&mut unmarked, e.id, now, mid.map(|m| m.to_string()));
                        match self.rest.take_pause() {
                            // The channel's bucket is empty: wait for its reset, not for a 429.
                            Some(p) => {
                                blocked.insert(
                                    e.channel.clone(),
                                    Blocked {
                                        until: Instant::now() + p,
                                        delay: None,
                                    },
                                );
                            }
                            None => {
                                blocked.remove(&e.channel);
                            }
                        }
                        progressed = true;
                    }
                    Err(RestError::Permanent { status, body }) if is_auth_refusal(status) => {
                        let why = format!("{status}: {body}");
                        if !auth_alarm {
                            auth_alarm = true;
                            tracing::error!(status, discord_said = %body, "{AUTH_ALARM}");
                        }
                        let wait = hold(
                            &mut blocked,
                            &e.channel,
                            &RestError::Transient(why.clone()),
                            &self.policy,
                        );
                        tracing::debug!(id = e.id, channel = %e.channel, error = %why, retry_in = ?wait, "refused for the token or permissions; kept");
                        let _ =
                            self.with_store(|s| s.mark_failed(e.id, &format!("refused by Discord: {why}")));
                        stuck.insert(e.channel.clone());
                        continue;
                    }
                    // Not Discord's answer: an entry this version cannot read or address.
                    Err(RestError::Permanent { status: 0, body }) => {
                        tracing::error!(id = e.id, job = %e.job, key = %e.key, error = %body, "an outbox entry cannot be sent; abandoned (kept in the store)");
                        if let Err(err) = self.with_store(|s| s.mark_abandoned(e.id, now, &body)) {
                            tracing::error!(error = %err, id = e.id, "could not mark an outbox entry abandoned");
                        }
                        progressed = true;
                    }
                    Err(RestError::Permanent { status, body }) => {
                        let why = format!("{status}: {body}");
                        tracing::error!(id = e.id, job = %e.job, key = %e.key, channel = %e.channel, discord_said = %why, "Discord refused a message; sending its plain-text form");
                        let refused = format!("refused by Discord: {why}");
                        let _ = self.with_store(|s| s.mark_failed(e.id, &refused));
                        match self.deliver_plain(&e, &why).await {
                            Ok(mid) => {
                                let _ = self.with_store(|s| {
                                    s.mark_failed(e.id, &format!("{refused}; delivered as plain text"))
                                });
                                self.mark(&mut unmarked, e.id, now, Some(mid.to_string()));
                                tracing::warn!(id = e.id, job = %e.job, key = %e.key, "the refused message was delivered as plain text");
                            }
                            Err(RestError::Permanent { status, body }) => {
                                let both = format!("{why}; its plain-text form too: {status}: {body}");
                                tracing::error!(id = e.id, job = %e.job, key = %e.key, discord_said = %both, "Discord refused a message and its plain-text form; abandoned (kept in the store)");
                                if let Err(err) = self.with_store(|s| s.mark_abandoned(e.id, now, &both)) {
                                    tracing::error!(error = %err, id = e.id, "could not mark an outbox entry abandoned");
                                }
                            }
                            Err(err) => {
                                // Not delivered yet: the entry stays, and is tried again whole.
                                let wait = hold(&mut blocked, &e.channel, &err, &self.policy);
                                tracing::warn!(id = e.id, error = %err, retry_in = ?wait, "the plain-text form failed; will retry");
                                stuck.insert(e.channel.clone());
                                continue;
                            }
                        }
                        progressed = true;
                    }
                    Err(err) => {
                        let prev = blocked.get(&e.channel).and_then(|b| b.delay);
                        let (wait, delay) = retry_after(&err, prev, &self.policy);
                        let until = Instant::now() + wait;
                        if let RestError::RateLimited { global: true, .. } = err {
                            global_until = Some(until);
                        }
                        tracing::warn!(id = e.id, channel = %e.channel, error = %err, retry_in = ?wait, "delivery failed; will retry");
                        let _ = self.with_store(|s| s.mark_failed(e.id, &err.to_string()));
                        blocked.insert(e.channel.clone(), Blocked { until, delay });
                        stuck.insert(e.channel.clone());
                    }
                }
            }
            if full && progressed {
                continue;
            }
            let wake_at = blocked
                .values()
                .map(|b| b.until)
                .chain(global_until)
                .filter(|u| *u > Instant::now())
                .min()
                .unwrap_or_else(|| Instant::now() + self.policy.poll)
                .min(Instant::now() + self.policy.poll);
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    fn posted(&self, job: &JobName, run: RunId, key: MessageKey) -> Option<(u64, u64)> {
        let found = self.with_store(|s| s.posted(job.as_str(), run.0, &key.to_string()));
        match found {
            Ok(Some((ch, mid))) => Some((ch.parse().ok()?, mid.parse().ok()?)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "cannot read posted messages");
                None
            }
        }
    }

    /// The thread under `report` (posted as `message` in `channel`): the one recorded for
    /// it, else a new one (recorded, so requests after a restart join it). None when no
    /// thread is possible (no permission…): the request goes to the channel.
    async fn thread_for(
        &self,
        job: &JobName,
        run: RunId,
        report: MessageKey,
        (channel, message): (u64, u64),
        name: &str,
    ) -> Result<Option<u64>, RestError> {
        let key = serde_json::to_string(&report).expect("message keys serialize");
        let known = match self.with_store(|s| s.latest_report(job.as_str(), run.0)) {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the reports' threads");
                None
            }
        };
        if let Some(thread) = known
            .filter(|(r, _)| *r == key)
            .and_then(|(_, t)| t?.parse().ok())
        {
            return Ok(Some(thread));
        }
        let thread = match self
            .rest
            .start_thread(channel, message, &embed::cut16(name, 100))
            .await
        {
            Ok(thread) => thread,
            // Started before, its record lost (a crash in between): Discord gives a thread
            // started on a message that message's id.
            Err(RestError::Permanent { status: 400, body }) if discord_code(&body) == Some(THREAD_EXISTS) => {
                message
            }
            Err(RestError::Permanent { status, body: why }) => {
                tracing::info!(status, error = %why, "cannot start a thread; posting in the channel");
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        if let Err(e) =
            self.with_store(|s| s.set_report_thread(job.as_str(), run.0, &key, &thread.to_string()))
        {
            tracing::error!(error = %e, "cannot record a report's thread");
        }
        Ok(Some(thread))
    }

    /// Post the minimal plain-text form of a refused entry in its channel (not in a thread:
    /// the channel is where it is seen). Same nonce as the full form, which Discord never
    /// created, so a crash before `mark_sent` still posts it once.
    async fn deliver_plain(&self, e: &OutboxEntry, why: &str) -> Result<u64, RestError> {
        let (channel, env) = unpack(e)?;
        // Which report this is lives in the entry's row, once.
        let (job, run, key) = (&e.job, e.run, &e.key);
        let body = match env {
            Envelope::Post { body, .. } | Envelope::Update { body, .. } => plain::fallback(&body, job, why),
            Envelope::Resolve { note } => serde_json::json!({
                "content": embed::cut16(&format!("**{job} run {run}, {key}**: {note}"), embed::MAX_CONTENT),
                "allowed_mentions": {"parse": []},
            }),
        };
        let body = with_nonce(capped_mentions(body), &nonce_of(e));
        self.rest.post_message_with(channel, &body, &[]).await
    }

    /// Send one entry; the message id to remember for later edits.
    async fn deliver(&self, e: &OutboxEntry) -> Result<Option<u64>, RestError> {
        let body_of = |body: Value| with_nonce(capped_mentions(body), &nonce_of(e));
        let bad = |why: String| RestError::Permanent { status: 0, body: why };
        let (channel, env) = unpack(e)?;
        // Which report this is lives in the entry's row, once (the payload says only what to show).
        let job = JobName::new(e.job.clone()).map_err(|err| bad(format!("outbox entry's job: {err}")))?;
        let run = RunId(e.run);
        let key: MessageKey = e.key.parse().map_err(bad)?;
        match env {
            Envelope::Post {
                body,
                edit_status,
                thread_on,
                thread_name,
                attachments,
                texts,
                nonce: _,
            } => {
                let files = uploads(&attachments, &texts);
                let post = body_of(attach::describe(body.clone(), &files, false));
                if let (true, MessageKey::Status(n)) = (edit_status, key) {
                    let previous = (n.saturating_sub(STATUS_LOOKBACK).max(1)..n)
                        .rev()
                        .find_map(|m| self.posted(&job, run, MessageKey::Status(m)));
                    if let Some((ch, mid)) = previous {
                        // The edited status shows this update's chart, never the last one's.
                        let edit = capped_mentions(attach::describe(body, &files, true));
                        match self.rest.edit_message_with(ch, mid, &edit, &files).await {
                            Ok(id) => return Ok(Some(id)),
                            // Deleted by someone: post a fresh one below.
                            Err(RestError::Permanent { status: 404, .. }) => {}
                            Err(err) => return Err(err),
                        }
                    }
                }
                if let Some(report) = thread_on {
                    if let Some((ch, mid)) = self.posted(&job, run, report) {
                        let name = thread_name.unwrap_or_else(|| format!("{job} run {run}"));
                        if let Some(thread) = self.thread_for(&job, run, report, (ch, mid), &name).await? {
                            match self.rest.post_message_with(thread, &post, &files).await {
                                // The thread was deleted: the channel will do.
                                Err(RestError::Permanent { status: 404, .. }) => {}
                                sent => return sent.map(Some),
                            }
                        }
                    }
                }
                self.rest
                    .post_message_with(channel, &post, &files)
                    .await
                    .map(Some)
            }
            Envelope::Update {
                body,
                attachments,
                texts,
            } => {
                let files = uploads(&attachments, &texts);
                let body = capped_mentions(attach::describe(body, &files, false));
                if let Some((ch, mid)) = self.posted(&job, run, key) {
                    match self.rest.edit_message_with(ch, mid, &body, &files).await {
                        Ok(id) => return Ok(Some(id)),
                        Err(RestError::Permanent { status: 404, .. }) => {}
                        Err(err) => return Err(err),
                    }
                }
                // Never posted (abandoned) or deleted: the newer version is posted instead.
                self.rest
                    .post_message_with(channel, &body_of(body), &files)
                    .await
                    .map(Some)
            }
            Envelope::Resolve { note } => {
                let Some((ch, mid)) = self.posted(&job, run, key) else {
                    return Err(bad(format!("report {key} of {job} run {run} was never posted")));
                };
                let current = self.rest.get_message(ch, mid).await?;
                let edit = embed::resolved_edit(&current, &note);
                self.rest.edit_message(ch, mid, &edit).await.map(Some)
            }
        }
    }
}

/// An entry's channel and what to send; an entry that cannot be read is a permanent error
/// (nothing Discord could ever accept).
fn unpack(e: &OutboxEntry) -> Result<(u64, Envelope), RestError> {
    let bad = |why: String| RestError::Permanent { status: 0, body: why };
    let channel: u64 = e
        .channel
        .parse()
        .map_err(|_| bad(format!("invalid channel id {:?}", e.channel)))?;
    let env: Envelope = serde_json::from_value(e.payload.clone())
        .map_err(|err| bad(format!("unreadable outbox payload: {err}")))?;
    Ok((channel, env))
}

/// The files to send with a message: its charts, then its rendered text files.
fn uploads(attachments: &[PathBuf], texts: &[TextFile]) -> Vec<super::rest::Upload> {
    let mut files = attach::load(attachments);
    files.extend(texts.iter().map(TextFile::upload));
    files
}

/// Discord's error code for "a thread has already been created for this message".
const THREAD_EXISTS: u64 = 160_004;

/// The `code` of a Discord error body.
fn discord_code(body: &str) -> Option<u64> {
    serde_json::from_str::<Value>(body).ok()?.get("code")?.as_u64()
}

/// What the token-or-permissions alarm says, once.
const AUTH_ALARM: &str = "DISCORD REFUSES THE BOT: the token or the bot's permissions are wrong \
(check the token and the bot's access to the channel). Nothing is lost: messages stay in the \
outbox and are delivered once Discord accepts them";

/// 401 (the token) or 403 (the bot's permissions, or a request blocked before the API):
/// the request is fine, the credentials are not, so the message is kept for when they are.
fn is_auth_refusal(status: u16) -> bool {
    matches!(status, 401 | 403)
}

/// Discord refuses a message allowing more than this many role (or user) mentions.
pub const MAX_ALLOWED_MENTIONS: usize = 100;

/// `body` with at most [`MAX_ALLOWED_MENTIONS`] allowed roles and users (the first ones:
/// the config's order), so a persona mapped to many roles cannot get its report refused.
/// `check-config` warns about such a mapping.
fn capped_mentions(mut body: Value) -> Value {
    for kind in ["roles", "users"] {
        if let Some(ids) = body
            .get_mut("allowed_mentions")
            .and_then(|a| a.get_mut(kind))
            .and_then(Value::as_array_mut)
        {
            if ids.len() > MAX_ALLOWED_MENTIONS {
                tracing::warn!(
                    kind,
                    allowed = ids.len(),
                    cap = MAX_ALLOWED_MENTIONS,
                    "more mentions than Discord allows; only the first ones ping"
                );
                ids.truncate(MAX_ALLOWED_MENTIONS);
            }
        }
    }
    body
}

/// The nonce an entry's posts carry, the same on every attempt and after a restart: a
/// crash between Discord's answer and `mark_sent` makes the next process send the entry
/// again, and Discord's `enforce_nonce` then returns the first message instead of posting
/// a duplicate. The one its payload fixed when rendered (a message sent ahead of the
/// outbox), else derived from the entry's id and payload (which holds the message's time),
/// so entries of another store never share it.
fn nonce_of(e: &OutboxEntry) -> String {
    payload_nonce(e).unwrap_or_else(|| {
        nonce_from(&format!(
            "{}\n{}\n{}\n{}\n{}",
            e.id, e.job, e.run, e.key, e.payload
        ))
    })
}

/// The nonce an entry's payload fixed when it was rendered.
fn payload_nonce(e: &OutboxEntry) -> Option<String> {
    e.payload.get("nonce")?.as_str().map(String::from)
}

/// A nonce from `seed`: 25 hex characters, Discord's limit.
pub(crate) fn nonce_from(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(seed.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..25].to_string()
}

/// A create-message body asking Discord to post it at most once per nonce. (Edits are
/// idempotent already and do not take a nonce.)
fn with_nonce(mut body: Value, nonce: &str) -> Value {
    if let Some(o) = body.as_object_mut() {
        o.insert("nonce".into(), Value::String(nonce.into()));
        o.insert("enforce_nonce".into(), Value::Bool(true));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_429_waits_as_told() {
        let p = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            poll: Duration::from_secs(30),
        };
        let t = RestError::Transient("503".into());
        let mut prev = None;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let (w, d) = retry_after(&t, prev, &p);
            waits.push(w.as_secs());
            prev = d;
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        let limited = RestError::RateLimited {
            retry_after: Duration::from_millis(7500),
            global: false,
        };
        let (w, d) = retry_after(&limited, Some(Duration::from_secs(4)), &p);
        assert_eq!(w, Duration::from_millis(7500));
        assert_eq!(d, Some(Duration::from_secs(4)));
    }

    #[test]
    fn allowed_mentions_are_capped_at_discords_limit() {
        let ids: Vec<String> = (0..150).map(|i| i.to_string()).collect();
        let body = serde_json::json!({"content": "x", "allowed_mentions": {"parse": [], "roles": ids, "users": ["1"]}});
        let capped = capped_mentions(body);
        let roles = capped["allowed_mentions"]["roles"].as_array().unwrap();
        assert_eq!(roles.len(), MAX_ALLOWED_MENTIONS);
        assert_eq!(roles[0], "0", "the first ones (the config's order) stay");
        assert_eq!(capped["allowed_mentions"]["users"], serde_json::json!(["1"]));
        assert_eq!(
            capped_mentions(serde_json::json!({"content": "y"})),
            serde_json::json!({"content": "y"})
        );
    }

    #[test]
    fn only_401_and_403_keep_a_refused_message_for_later() {
        assert!(is_auth_refusal(401) && is_auth_refusal(403));
        for s in [0, 400, 404, 413] {
            assert!(!is_auth_refusal(s), "{s}");
        }
    }

    #[test]
    fn envelopes_survive_the_outbox() {
        let env = Envelope::Resolve {
            note: "Killed by @x at 14:02 UTC".into(),
        };
        let v = serde_json::to_value(&env).unwrap();
        assert_eq!(v["op"], "resolve");
        assert_eq!(serde_json::from_value::<Envelope>(v).unwrap(), env);
    }

    #[test]
    fn an_entry_names_its_report_once_in_its_row_and_every_key_reads_back() {
        use crate::engine::MessageKey as K;
        for key in [
            K::Started,
            K::Incident(2),
            K::Warning(3),
            K::Status(4),
            K::Timeout(5),
            K::Restarting(6),
            K::Investigate(7),
            K::Notice(8),
            K::Fix(9),
            K::Gate(10),
            K::Verdict(11),
            K::Stall(12),
            K::Overrun,
            K::Final,
            K::Store(13),
        ] {
            assert_eq!(key.to_string().parse::<K>(), Ok(key));
        }
        assert!("status-x".parse::<K>().is_err() && "nope".parse::<K>().is_err());
        let env = Envelope::Update {
            body: serde_json::json!({"content": "x"}),
            attachments: Vec::new(),
            texts: Vec::new(),
        };
        let v = serde_json::to_value(env).unwrap();
        for field in ["job", "run", "key"] {
            assert!(v.get(field).is_none(), "{field} is the row's: {v}");
        }
        // Entries queued before, with the report named in the payload too, still load.
        let old =
            serde_json::json!({"op": "resolve", "job": "m", "run": 1, "key": "incident-1", "note": "n"});
        assert!(serde_json::from_value::<Envelope>(old).is_ok());
    }

    #[test]
    fn a_post_carries_the_same_enforced_nonce_on_every_attempt() {
        let entry = |id: i64| OutboxEntry {
            id,
            channel: "1".into(),
            job: "m".into(),
            run: 1,
            key: "started".into(),
            kind: crate::store::OutboxKind::Post,
            payload: serde_json::json!({"op": "post", "at": "2026-01-01T00:00:00Z"}),
            attempts: 0,
        };
        let n = nonce_of(&entry(7));
        assert_eq!(n.len(), 25, "Discord's limit");
        assert_eq!(
            n,
            nonce_of(&entry(7)),
            "a retry (or the next process) sends the same"
        );
        assert_ne!(n, nonce_of(&entry(8)));
        let body = with_nonce(serde_json::json!({"content": "x"}), &n);
        assert_eq!(body["nonce"], n.as_str());
        assert_eq!(body["enforce_nonce"], true);
    }
}

//! The outbox worker: sends stored Discord messages in id order per channel, marks each
//! sent right after Discord accepted it, and retries the rest — a 429 after its
//! `retry-after`, a 5xx or network error with capped exponential backoff — so a gateway
//! disconnect, an outage or a restart of the bot loses nothing. A request Discord rejects
//! as invalid (other 4xx) is abandoned with the error so it does not block its channel.
//!
//! Duplicate window: if the process dies after Discord accepted a message and before
//! `mark_sent` commits (one SQLite write), that entry is sent again after the restart.

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

use super::embed::TextFile;
use super::rest::{Rest, RestError};
use super::{attach, embed};

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
}

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

impl Worker {
    fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        // A panic elsewhere while holding the lock must not stop delivery.
        let mut guard = self.store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub async fn run(self) {
        let mut blocked: HashMap<String, Blocked> = HashMap::new();
        // A global 429 holds every channel.
        let mut global_until: Option<Instant> = None;
        loop {
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
                let result = self.deliver(&e).await;
                let now = Utc::now();
                match result {
                    Ok(mid) => {
                        let mid = mid.map(|m| m.to_string());
                        if let Err(err) = self.with_store(|s| s.mark_sent(e.id, now, mid.as_deref())) {
                            tracing::error!(error = %err, id = e.id, "sent but could not mark the outbox entry");
                        }
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
                    Err(RestError::Permanent { status, body }) => {
                        let why = format!("{status}: {body}");
                        tracing::error!(id = e.id, channel = %e.channel, error = %why, "Discord rejected an outbox entry; abandoned");
                        if let Err(err) = self.with_store(|s| s.mark_abandoned(e.id, now, &why)) {
                            tracing::error!(error = %err, id = e.id, "could not mark an outbox entry abandoned");
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

    /// Send one entry; the message id to remember for later edits.
    async fn deliver(&self, e: &OutboxEntry) -> Result<Option<u64>, RestError> {
        let body_of = |body: Value| with_nonce(body, &nonce_of(e));
        let bad = |why: String| RestError::Permanent { status: 0, body: why };
        let channel: u64 = e
            .channel
            .parse()
            .map_err(|_| bad(format!("invalid channel id {:?}", e.channel)))?;
        let env: Envelope = serde_json::from_value(e.payload.clone())
            .map_err(|err| bad(format!("unreadable outbox payload: {err}")))?;
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
            } => {
                let files = uploads(&attachments, &texts);
                let post = body_of(attach::describe(body.clone(), &files, false));
                if let (true, MessageKey::Status(n)) = (edit_status, key) {
                    let previous = (n.saturating_sub(STATUS_LOOKBACK).max(1)..n)
                        .rev()
                        .find_map(|m| self.posted(&job, run, MessageKey::Status(m)));
                    if let Some((ch, mid)) = previous {
                        // The edited status shows this update's chart, never the last one's.
                        let edit = attach::describe(body, &files, true);
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
                        match self.rest.start_thread(ch, mid, &embed::cut16(&name, 100)).await {
                            Ok(thread) => {
                                return self.rest.post_message_with(thread, &post, &files).await.map(Some)
                            }
                            // No thread possible (already one, no permission): the channel will do.
                            Err(RestError::Permanent { status, body: why }) => {
                                tracing::info!(status, error = %why, "cannot start a thread; posting in the channel");
                            }
                            Err(err) => return Err(err),
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
                let body = attach::describe(body, &files, false);
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

/// The files to send with a message: its charts, then its rendered text files.
fn uploads(attachments: &[PathBuf], texts: &[TextFile]) -> Vec<super::rest::Upload> {
    let mut files = attach::load(attachments);
    files.extend(texts.iter().map(TextFile::upload));
    files
}

/// The nonce an entry's posts carry, the same on every attempt and after a restart: a
/// crash between Discord's answer and `mark_sent` makes the next process send the entry
/// again, and Discord's `enforce_nonce` then returns the first message instead of posting
/// a duplicate. Derived from the entry's id and payload (which holds the message's time),
/// so entries of another store never share it; 25 characters is Discord's limit.
fn nonce_of(e: &OutboxEntry) -> String {
    use sha2::{Digest, Sha256};
    let digest =
        Sha256::digest(format!("{}\n{}\n{}\n{}\n{}", e.id, e.job, e.run, e.key, e.payload).as_bytes());
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

//! A small Discord REST client for the outbox worker. serenity's `Http` drops the status
//! line's details that delivery needs (a 429's `retry-after`, telling 5xx from 4xx) and
//! never retries 5xx, so delivery talks to the REST API itself, through the same proxy
//! settings as serenity, and classifies every failure for the retry policy.

use std::time::Duration;

use reqwest::{multipart, Method, StatusCode};
use serde_json::Value;
use serenity::all::{AutoArchiveDuration, CreateThread};

use super::DiscordError;

/// Discord's API root when no proxy replaces it.
pub const DISCORD_ORIGIN: &str = "https://discord.com";

/// The agent Discord asks every bot to send (`DiscordBot ($url, $version)`); requests
/// without a valid one may be blocked before they reach the API (a Cloudflare 403).
pub const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/trainwatch/trainwatch, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Why a request failed, as the retry policy sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestError {
    /// 429: wait this long, then try again; `global` holds every route, not just this one.
    #[error("rate limited for {retry_after:?}{}", if *global { " (global)" } else { "" })]
    RateLimited { retry_after: Duration, global: bool },
    /// 5xx, timeouts, connection errors: retry with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// Any other 4xx: the request itself is wrong and retrying will not help. Status 0:
    /// the request could not even be made (an unreadable entry, a bad attachment).
    #[error("rejected with {status}: {body}")]
    Permanent { status: u16, body: String },
}

/// A file to upload with a message, read at send time.
#[derive(Clone, PartialEq, Eq)]
pub struct Upload {
    /// The name Discord shows and `attachment://<filename>` refers to.
    pub filename: String,
    pub content_type: &'static str,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bytes are noise in logs and test failures.
        f.debug_struct("Upload")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("len", &self.data.len())
            .finish()
    }
}

pub struct Rest {
    client: reqwest::Client,
    base: String,
    auth: String,
    /// Set when a successful answer said its bucket is exhausted: how long until it resets.
    pause: std::sync::Mutex<Option<Duration>>,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never show the token.
        f.debug_struct("Rest")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Rest {
    /// `origin` replaces `https://discord.com` (a local proxy or emulator), as serenity's
    /// `HttpBuilder::proxy` does.
    pub fn new(client: reqwest::Client, origin: Option<&str>, token: &str) -> Self {
        let origin = origin.unwrap_or(DISCORD_ORIGIN).trim_end_matches('/');
        Rest {
            client,
            base: format!("{origin}/api/v10"),
            auth: format!("Bot {}", token.trim_start_matches("Bot ")),
            pause: std::sync::Mutex::new(None),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, RestError> {
        self.call_with(method, path, body, &[]).await
    }

    /// A request whose body is JSON, or `multipart/form-data` (`payload_json` plus
    /// `files[n]`) when there are files to upload.
    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        files: &[Upload],
    ) -> Result<Value, RestError> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .header(reqwest::header::USER_AGENT, USER_AGENT)
            .timeout(Duration::from_secs(30));
        if files.is_empty() {
            if let Some(b) = body {
                req = req.json(b);
            }
        } else {
            let payload = body.cloned().unwrap_or_else(|| Value::Object(Default::default()));
            let mut form = multipart::Form::new().text("payload_json", payload.to_string());
            for (i, f) in files.iter().enumerate() {
                let part = multipart::Part::bytes(f.data.clone())
                    .file_name(f.filename.clone())
                    .mime_str(f.content_type)
                    .map_err(|e| RestError::Permanent {
                        status: 0,
                        body: format!("attachment {}: {e}", f.filename),
                    })?;
                form = form.part(format!("files[{i}]"), part);
            }
            req = req.multipart(form);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| RestError::Transient(e.without_url().to_string()))?;
        let status = resp.status();
        let global_header = resp.headers().get("x-ratelimit-global").is_some();
        if status.is_success() {
            let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
            let hint = pause_hint(header("x-ratelimit-remaining"), header("x-ratelimit-reset-after"));
            *self.pause.lock().unwrap_or_else(|p| p.into_inner()) = hint;
        }
        let retry_header = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok());
        let text = resp
            .text()
            .await
            .map_err(|e| RestError::Transient(e.without_url().to_string()))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .map_err(|e| RestError::Transient(format!("bad JSON from Discord: {e}")));
        }
        let body: Option<Value> = serde_json::from_str(&text).ok();
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                let secs = retry_header
                    .or_else(|| {
                        body.as_ref()
                            .and_then(|b| b.get("retry_after"))
                            .and_then(Value::as_f64)
                    })
                    .unwrap_or(1.0);
                let global = global_header
                    || body
                        .as_ref()
                        .and_then(|b| b.get("global"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                Err(RestError::RateLimited {
                    retry_after: secs_to_duration(secs),
                    global,
                })
            }
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                Err(RestError::Transient(format!("{s}")))
            }
            s => Err(RestError::Permanent {
                status: s.as_u16(),
                body: crate::chat::sanitize::cut(&text, 300),
            }),
        }
    }

    /// The pause the last successful request asked for (its rate-limit bucket is empty),
    /// so the next request on that route waits instead of drawing a 429.
    pub fn take_pause(&self) -> Option<Duration> {
        self.pause.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Create a message with files; `body` refers to `files[n]` as attachment id `n`.
    pub async fn post_message_with(
        &self,
        channel: u64,
        body: &Value,
        files: &[Upload],
    ) -> Result<u64, RestError> {
        let v = self
            .call_with(
                Method::POST,
                &format!("/channels/{channel}/messages"),
                Some(body),
                files,
            )
            .await?;
        id_of(&v)
    }

    pub async fn edit_message(&self, channel: u64, message: u64, body: &Value) -> Result<u64, RestError> {
        self.edit_message_with(channel, message, body, &[]).await
    }

    /// Edit a message, uploading `files`; Discord keeps only the attachments `body` lists.
    pub async fn edit_message_with(
        &self,
        channel: u64,
        message: u64,
        body: &Value,
        files: &[Upload],
    ) -> Result<u64, RestError> {
        let v = self
            .call_with(
                Method::PATCH,
                &format!("/channels/{channel}/messages/{message}"),
                Some(body),
                files,
            )
            .await?;
        id_of(&v).or(Ok(message))
    }

    pub async fn get_message(&self, channel: u64, message: u64) -> Result<Value, RestError> {
        self.call(
            Method::GET,
            &format!("/channels/{channel}/messages/{message}"),
            None,
        )
        .await
    }

    /// Start a thread on a message; returns the thread's channel id.
    pub async fn start_thread(&self, channel: u64, message: u64, name: &str) -> Result<u64, RestError> {
        let thread = CreateThread::new(name).auto_archive_duration(AutoArchiveDuration::OneDay);
        let body = serde_json::to_value(thread).expect("thread builders serialize");
        let v = self
            .call(
                Method::POST,
                &format!("/channels/{channel}/messages/{message}/threads"),
                Some(&body),
            )
            .await?;
        id_of(&v)
    }
}

/// `x-ratelimit-remaining: 0` with `x-ratelimit-reset-after: secs` means: wait that long.
pub fn pause_hint(remaining: Option<&str>, reset_after: Option<&str>) -> Option<Duration> {
    let remaining: u64 = remaining?.trim().parse().ok()?;
    let secs: f64 = reset_after?.trim().parse().ok()?;
    (remaining == 0 && secs > 0.0).then(|| secs_to_duration(secs))
}

fn secs_to_duration(secs: f64) -> Duration {
    // A hostile or broken header must neither park delivery for days nor panic (NaN).
    let secs = if secs.is_nan() {
        1.0
    } else {
        secs.clamp(0.0, 3600.0)
    };
    Duration::from_secs_f64(secs)
}

fn id_of(v: &Value) -> Result<u64, RestError> {
    v.get("id")
        .and_then(|i| i.as_str().and_then(|s| s.parse().ok()).or_else(|| i.as_u64()))
        .ok_or_else(|| RestError::Transient("Discord's answer has no id".into()))
}

/// The HTTP client for a setup: plain, or through an HTTPS proxy trusting an extra CA.
pub fn http_client(
    https_proxy: Option<&str>,
    ca_cert_pem: Option<&[u8]>,
) -> Result<reqwest::Client, DiscordError> {
    let mut b = reqwest::Client::builder().use_rustls_tls();
    if let Some(p) = https_proxy {
        b = b.proxy(reqwest::Proxy::all(p).map_err(|e| DiscordError::Setup(format!("https_proxy: {e}")))?);
    }
    if let Some(pem) = ca_cert_pem {
        let cert =
            reqwest::Certificate::from_pem(pem).map_err(|e| DiscordError::Setup(format!("ca_cert: {e}")))?;
        b = b.add_root_certificate(cert);
    }
    b.build()
        .map_err(|e| DiscordError::Setup(format!("HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_bucket_asks_for_a_pause() {
        assert_eq!(
            pause_hint(Some("0"), Some("1.5")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(pause_hint(Some("3"), Some("1.5")), None);
        assert_eq!(pause_hint(Some("0"), None), None);
        assert_eq!(pause_hint(Some("x"), Some("1")), None);
        // A hostile value is capped at an hour, a negative or NaN one ignored.
        assert_eq!(
            pause_hint(Some("0"), Some("1e12")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(pause_hint(Some("0"), Some("-4")), None);
        assert_eq!(pause_hint(Some("0"), Some("NaN")), None);
        assert_eq!(secs_to_duration(f64::NAN), Duration::from_secs(1));
        assert_eq!(secs_to_duration(f64::INFINITY), Duration::from_secs(3600));
    }

    #[test]
    fn the_token_is_never_shown() {
        let r = Rest::new(
            reqwest::Client::new(),
            Some("http://127.0.0.1:9/"),
            "secret-token",
        );
        assert!(!format!("{r:?}").contains("secret-token"));
        assert_eq!(r.base, "http://127.0.0.1:9/api/v10");
    }
}

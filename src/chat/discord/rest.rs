//! A small Discord REST client for the outbox worker. serenity's `Http` drops the status
//! line's details that delivery needs (a 429's `retry-after`, telling 5xx from 4xx) and
//! never retries 5xx, so delivery talks to the REST API itself, through the same proxy
//! settings as serenity, and classifies every failure for the retry policy.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::DiscordError;

/// Discord's API root when no proxy replaces it.
pub const DISCORD_ORIGIN: &str = "https://discord.com";

/// Why a request failed, as the retry policy sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestError {
    /// 429: wait this long, then try again; `global` holds every route, not just this one.
    #[error("rate limited for {retry_after:?}{}", if *global { " (global)" } else { "" })]
    RateLimited { retry_after: Duration, global: bool },
    /// 5xx, timeouts, connection errors: retry with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// Any other 4xx: the request itself is wrong and retrying will not help.
    #[error("rejected with {status}: {body}")]
    Permanent { status: u16, body: String },
}

pub struct Rest {
    client: reqwest::Client,
    base: String,
    auth: String,
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
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, RestError> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| RestError::Transient(e.without_url().to_string()))?;
        let status = resp.status();
        let global_header = resp.headers().get("x-ratelimit-global").is_some();
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

    /// Create a message; returns its id.
    pub async fn post_message(&self, channel: u64, body: &Value) -> Result<u64, RestError> {
        let v = self
            .call(Method::POST, &format!("/channels/{channel}/messages"), Some(body))
            .await?;
        id_of(&v)
    }

    pub async fn edit_message(&self, channel: u64, message: u64, body: &Value) -> Result<u64, RestError> {
        let v = self
            .call(
                Method::PATCH,
                &format!("/channels/{channel}/messages/{message}"),
                Some(body),
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
        let body = serde_json::json!({ "name": name, "auto_archive_duration": 1440 });
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

fn secs_to_duration(secs: f64) -> Duration {
    // A hostile or broken header must not park delivery for days.
    Duration::from_secs_f64(secs.clamp(0.0, 3600.0))
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

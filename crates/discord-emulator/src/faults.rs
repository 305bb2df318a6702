//! Faults a test injects into the REST API: rate limits (per route or global), error
//! statuses, dropped connections, for a number of requests or a while, on chosen routes.

use std::time::Duration;

/// What a fault does to the request it hits.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// 429 with `retry-after` (seconds, fractional) and Discord's JSON body.
    RateLimited {
        /// How long the client is told to wait.
        retry_after: Duration,
        /// Global rate limit (`x-ratelimit-global`).
        global: bool,
    },
    /// An error status (e.g. 500, 502, 503) with a JSON body.
    Status(u16),
    /// Close the connection without answering.
    DropConnection,
}

/// A REST fault to inject: which requests it hits and for how long.
/// By default it hits the next single request of any route.
#[derive(Debug, Clone)]
pub struct Fault {
    pub(crate) kind: FaultKind,
    pub(crate) path_contains: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) remaining: Option<u32>,
    pub(crate) until: Option<tokio::time::Instant>,
}

impl Fault {
    pub(crate) fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            path_contains: None,
            method: None,
            remaining: Some(1),
            until: None,
        }
    }
    /// 429 with this `retry-after`.
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self::new(FaultKind::RateLimited {
            retry_after,
            global: false,
        })
    }
    /// Global 429 with this `retry-after`.
    pub fn global_rate_limited(retry_after: Duration) -> Self {
        Self::new(FaultKind::RateLimited {
            retry_after,
            global: true,
        })
    }
    /// An error status such as 503.
    pub fn status(code: u16) -> Self {
        Self::new(FaultKind::Status(code))
    }
    /// Drop the connection.
    pub fn drop_connection() -> Self {
        Self::new(FaultKind::DropConnection)
    }
    /// Hit the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }
    /// Hit every matching request for this long (from now, tokio time), instead of a count.
    pub fn for_duration(mut self, d: Duration) -> Self {
        self.remaining = None;
        self.until = Some(tokio::time::Instant::now() + d);
        self
    }
    /// Only requests whose API path (without `/api/v10`) contains this.
    pub fn on_path(mut self, fragment: impl Into<String>) -> Self {
        self.path_contains = Some(fragment.into());
        self
    }
    /// Only requests with this method (e.g. "POST").
    pub fn on_method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into().to_ascii_uppercase());
        self
    }
    pub(crate) fn matches(&self, method: &str, route: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self.path_contains.as_deref().is_none_or(|p| route.contains(p))
            // The gateway URL lookup is part of connecting, not of the API under test.
            && !route.starts_with("/gateway")
    }
}

//! What the emulator records of each REST request it received, for tests to read: method,
//! path, body (JSON or multipart with its files), answer; and the gateway's counters.

use std::collections::BTreeMap;

use serde_json::Value;

/// An uploaded file part of a multipart request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    /// Form field name, e.g. `files[0]`.
    pub field: String,
    /// File name from the part header.
    pub filename: Option<String>,
    /// Part content type.
    pub content_type: Option<String>,
    /// Raw bytes.
    pub data: Vec<u8>,
}

/// Body of a recorded request.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestBody {
    /// No body.
    Empty,
    /// A JSON body.
    Json(Value),
    /// `multipart/form-data`: `payload_json` and file parts.
    Multipart {
        /// The parsed `payload_json` part.
        payload_json: Option<Value>,
        /// The other parts.
        files: Vec<FilePart>,
    },
    /// Anything else.
    Other(Vec<u8>),
}

impl RequestBody {
    /// The JSON payload: the body itself, or `payload_json` of a multipart body.
    pub fn json(&self) -> Option<&Value> {
        match self {
            RequestBody::Json(v) => Some(v),
            RequestBody::Multipart { payload_json, .. } => payload_json.as_ref(),
            _ => None,
        }
    }
    /// The file parts (empty unless multipart).
    pub fn files(&self) -> Vec<FilePart> {
        match self {
            RequestBody::Multipart { files, .. } => files.clone(),
            _ => Vec::new(),
        }
    }
}

/// One REST request the emulator received (every one is recorded, including faulted and
/// unknown routes).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// API path without the `/api/v10` prefix, e.g. `/channels/1/messages`.
    pub path: String,
    /// Path as received.
    pub raw_path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Headers of interest (lower-case names): authorization, content-type, user-agent,
    /// x-audit-log-reason, host.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: RequestBody,
    /// Status answered (0 when the connection was dropped).
    pub status: u16,
    /// Came through the HTTPS proxy mode.
    pub tls: bool,
}

/// Counters of gateway activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// WebSocket connections accepted.
    pub connections: u32,
    /// IDENTIFY received.
    pub identifies: u32,
    /// READY sent.
    pub ready_sent: u32,
    /// Successful RESUMEs.
    pub resumes: u32,
    /// Heartbeats received.
    pub heartbeats: u32,
}

//! A request's body as the bot sent it: JSON, or multipart (a `payload_json` part and the
//! uploaded files), parsed by hand from the bytes so that what is recorded is what came.

use super::*;

pub(super) fn parse_body(content_type: Option<&str>, body: &[u8]) -> RequestBody {
    if body.is_empty() {
        return RequestBody::Empty;
    }
    let ct = content_type.unwrap_or("");
    if ct.starts_with("multipart/form-data") {
        if let Some(b) = ct
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
        {
            return parse_multipart(b.trim_matches('"'), body);
        }
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => RequestBody::Json(v),
        Err(_) => RequestBody::Other(body.to_vec()),
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Minimal multipart/form-data reader: enough for what HTTP clients send (no nesting).
fn parse_multipart(boundary: &str, body: &[u8]) -> RequestBody {
    let delim = format!("--{boundary}");
    let mut files = Vec::new();
    let mut payload_json = None;
    let mut pos = match find(body, delim.as_bytes(), 0) {
        Some(p) => p + delim.len(),
        None => return RequestBody::Other(body.to_vec()),
    };
    loop {
        if body[pos..].starts_with(b"--") {
            break;
        }
        let Some(hdr_end) = find(body, b"\r\n\r\n", pos) else {
            break;
        };
        let head = String::from_utf8_lossy(&body[pos..hdr_end]).to_string();
        let data_start = hdr_end + 4;
        let Some(next) = find(body, format!("\r\n{delim}").as_bytes(), data_start) else {
            break;
        };
        let data = body[data_start..next].to_vec();
        pos = next + 2 + delim.len();

        let mut name = String::new();
        let mut filename = None;
        let mut content_type = None;
        for line in head.lines() {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                name = disposition_param(line, "name").unwrap_or_default();
                filename = disposition_param(line, "filename");
            } else if lower.starts_with("content-type:") {
                content_type = Some(line["content-type:".len()..].trim().to_string());
            }
        }
        if name == "payload_json" {
            payload_json = serde_json::from_slice(&data).ok();
        } else {
            files.push(FilePart {
                field: name,
                filename,
                content_type,
                data,
            });
        }
    }
    RequestBody::Multipart { payload_json, files }
}

fn disposition_param(line: &str, key: &str) -> Option<String> {
    line.split(';').map(str::trim).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

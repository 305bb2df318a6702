//! Files sent with a Discord message (the supervisor's metric charts). The outbox keeps
//! only their paths; they are read when the message is sent, bounded in size and count,
//! and a file that is gone or too big is left out with a warning — the message itself is
//! never held back by a chart. The first image is shown inside the message's embed.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::rest::Upload;

/// Larger files are skipped: Discord's smallest upload limit per file (8 MiB for bots
/// in unboosted guilds was the long-standing value) and a bound on what is read.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Discord accepts at most 10 files per message.
pub const MAX_FILES: usize = 10;

/// Read the files to send; the ones missing, unreadable or too big are left out.
pub fn load(paths: &[PathBuf]) -> Vec<Upload> {
    let mut out: Vec<Upload> = Vec::new();
    for path in paths {
        if out.len() == MAX_FILES {
            tracing::warn!(path = %path.display(), "more than {MAX_FILES} attachments; the rest are left out");
            break;
        }
        let data = match read_bounded(path) {
            Ok(d) => d,
            Err(why) => {
                tracing::warn!(path = %path.display(), error = %why, "attachment left out; sending the message without it");
                continue;
            }
        };
        let mut filename = safe_name(path);
        if out.iter().any(|u| u.filename == filename) {
            filename = format!("{}-{filename}", out.len());
        }
        out.push(Upload {
            content_type: content_type(&filename),
            filename,
            data,
        });
    }
    out
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut data = Vec::new();
    // `take` rather than the file's metadata: the file may grow while it is read.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| e.to_string())?;
    if data.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(data)
}

/// The file's name restricted to what `attachment://` URLs accept (letters, digits,
/// `.`, `-`, `_`), so the embed can refer to it.
pub fn safe_name(path: &Path) -> String {
    let raw = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if name.trim_matches(|c| c == '.' || c == '_').is_empty() {
        "chart.png".to_string()
    } else {
        name
    }
}

fn content_type(filename: &str) -> &'static str {
    let ext = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("txt" | "log") => "text/plain",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// `body` describing `uploads` to Discord: `attachments: [{id: n, filename}]` for
/// `files[n]`, and the first image shown as the first embed's image. With `replace`
/// (an edit that must show only these files) an empty list is sent too, which removes the
/// message's earlier files; without it and without uploads, the body is left as it is.
pub fn describe(mut body: Value, uploads: &[Upload], replace: bool) -> Value {
    if uploads.is_empty() && !replace {
        return body;
    }
    let Some(obj) = body.as_object_mut() else {
        return body;
    };
    let listed: Vec<Value> = uploads
        .iter()
        .enumerate()
        .map(|(i, u)| json!({ "id": i, "filename": u.filename }))
        .collect();
    obj.insert("attachments".into(), Value::Array(listed));
    let image = uploads.iter().find(|u| u.content_type.starts_with("image/"));
    if let Some(embed) = obj
        .get_mut("embeds")
        .and_then(Value::as_array_mut)
        .and_then(|e| e.first_mut())
        .and_then(Value::as_object_mut)
    {
        match image {
            Some(u) => {
                embed.insert(
                    "image".into(),
                    json!({ "url": format!("attachment://{}", u.filename) }),
                );
            }
            // An edit that drops the files must not keep pointing at one of them.
            None => {
                embed.remove("image");
            }
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(name: &str) -> Upload {
        Upload {
            filename: name.into(),
            content_type: content_type(name),
            data: vec![1, 2, 3],
        }
    }

    #[test]
    fn missing_and_oversized_files_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("status-3.png");
        std::fs::write(&small, b"png bytes").unwrap();
        let big = dir.path().join("big.png");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let gone = dir.path().join("gone.png");
        let got = load(&[gone, big, small.clone(), small]);
        let names: Vec<&str> = got.iter().map(|u| u.filename.as_str()).collect();
        assert_eq!(names, vec!["status-3.png", "1-status-3.png"]);
        assert_eq!(got[0].data, b"png bytes");
        assert_eq!(got[0].content_type, "image/png");
    }

    #[test]
    fn names_are_fit_for_attachment_urls() {
        assert_eq!(safe_name(Path::new("/x/run 1/état #2.png")), "_tat__2.png");
        assert_eq!(safe_name(Path::new("/")), "chart.png");
        assert_eq!(safe_name(Path::new("..")), "chart.png");
    }

    #[test]
    fn the_first_image_is_shown_in_the_embed_and_listed_by_index() {
        let body = json!({"content": "x", "embeds": [{"title": "Status"}]});
        let b = describe(body.clone(), &[upload("log.txt"), upload("final.png")], false);
        assert_eq!(
            b["attachments"],
            json!([{"id": 0, "filename": "log.txt"}, {"id": 1, "filename": "final.png"}])
        );
        assert_eq!(b["embeds"][0]["image"]["url"], "attachment://final.png");
        assert_eq!(describe(body.clone(), &[], false), body, "no files: unchanged");
        let cleared = describe(
            json!({"embeds": [{"image": {"url": "attachment://old.png"}}]}),
            &[],
            true,
        );
        assert_eq!(cleared["attachments"], json!([]));
        assert!(cleared["embeds"][0].get("image").is_none());
    }
}

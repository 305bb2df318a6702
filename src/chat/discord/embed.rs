//! Discord rendering: a protocol `Message` becomes a message body (content with the
//! addressed mentions, one embed, decision buttons, `allowed_mentions` limited to exactly
//! those mentions). Log text arrives sanitized from `render` (mentions defused, secrets
//! redacted) and is fenced so it cannot break out of its code block. Discord's size limits
//! are met by trimming the traceback excerpt first, never by dropping the error line; a
//! message whose own lines do not fit (a 30-row gate table, 42 output files) shows the
//! whole lines that fit — the protocol's verdict comes first — says so, and carries the
//! complete message as an attached markdown file. Nothing a decision depends on is cut
//! silently.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use serenity::all::{
    ButtonStyle, CreateActionRow, CreateAllowedMentions, CreateButton, CreateEmbed, CreateEmbedFooter,
    Timestamp,
};

use crate::chat::render::{self, line};
use crate::engine::{Body, Button, Decision, Message};
use crate::model::{Persona, Severity};

use super::rest::Upload;
use super::{attach, DiscordPrincipal};
use crate::chat::request::button::ButtonId;

pub const MAX_CONTENT: usize = 2000;
pub const MAX_TITLE: usize = 256;
pub const MAX_DESCRIPTION: usize = 4096;
pub const MAX_FIELDS: usize = 25;
pub const MAX_FIELD_NAME: usize = 256;
pub const MAX_FIELD_VALUE: usize = 1024;
pub const MAX_FOOTER: usize = 2048;
pub const MAX_EMBED_TOTAL: usize = 6000;
/// Buttons per action row, rows per message.
const ROW: usize = 5;
const ROWS: usize = 5;

/// Discord counts UTF-16 code units; counting them never undercounts.
pub fn len16(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Cut to at most `max` UTF-16 units, keeping the start, marking the cut with `…`.
pub fn cut16(s: &str, max: usize) -> String {
    if len16(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        if used + c.len_utf16() + 1 > max {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// `text` as messages of at most `max` UTF-16 units, split at line ends, in order. A line
/// longer than a message is split across messages, each later piece marked `↪`: nothing
/// is dropped, so a long answer becomes several messages rather than a cut one.
pub fn pages(text: &str, max: usize) -> Vec<String> {
    const MORE: &str = "↪ ";
    let max = max.max(len16(MORE) + 2);
    let mut pieces: Vec<String> = Vec::new();
    for l in text.lines() {
        if len16(l) <= max {
            pieces.push(l.to_string());
            continue;
        }
        let mut piece = String::new();
        for c in l.chars() {
            if len16(&piece) + c.len_utf16() > max {
                pieces.push(std::mem::take(&mut piece));
                piece.push_str(MORE);
            }
            piece.push(c);
        }
        pieces.push(piece);
    }
    let mut out: Vec<String> = Vec::new();
    let mut page = String::new();
    for p in pieces {
        if !page.is_empty() && len16(&page) + 1 + len16(&p) > max {
            out.push(std::mem::take(&mut page));
        }
        if !page.is_empty() {
            page.push('\n');
        }
        page.push_str(&p);
    }
    if !page.is_empty() || out.is_empty() {
        out.push(page);
    }
    out
}

/// Keep log text inside its code block: a ``` in the text would close the fence.
fn fence_safe(s: &str) -> String {
    s.replace("```", "`\u{200B}`\u{200B}`")
}

fn block(s: &str) -> String {
    format!("```\n{}\n```", fence_safe(s))
}

/// Who a message pings: the principals mapped to the personas it addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    pub roles: Vec<u64>,
    pub users: Vec<u64>,
}

impl Mentions {
    pub fn for_personas(to: &[Persona], map: &[(Persona, Vec<DiscordPrincipal>)]) -> Self {
        let mut m = Mentions::default();
        for (_, principals) in map.iter().filter(|(p, _)| to.contains(p)) {
            for p in principals {
                match *p {
                    DiscordPrincipal::Role(id) if !m.roles.contains(&id) => m.roles.push(id),
                    DiscordPrincipal::User(id) if !m.users.contains(&id) => m.users.push(id),
                    _ => {}
                }
            }
        }
        m
    }

    fn content(&self) -> String {
        let mut parts: Vec<String> = self.roles.iter().map(|r| format!("<@&{r}>")).collect();
        parts.extend(self.users.iter().map(|u| format!("<@{u}>")));
        parts.join(" ")
    }

    /// Only these ids may ping; `parse: []` disables @everyone/@here and any other mention.
    pub fn allowed(&self) -> Value {
        json!({ "parse": [], "roles": self.roles, "users": self.users, "replied_user": false })
    }
}

fn colour(m: &Message) -> u32 {
    match &m.body {
        Body::ErrorDetected { incident, .. } if incident.severity == Severity::Fatal => 0xE74C3C,
        Body::ErrorDetected { .. } | Body::WarningNoticed { .. } => 0xF1C40F,
        Body::TimeoutWarning { .. }
        | Body::LimitWarning { .. }
        | Body::StallWarning { .. }
        | Body::OverrunWarning { .. }
        | Body::ExtendFailed { .. } => 0xE67E22,
        Body::Queued { .. } | Body::SchedulerStarted { .. } | Body::LimitExtended { .. } => 0x3498DB,
        Body::Resubmitted { .. } => 0x3498DB,
        Body::Scheduler { .. } => 0xE67E22,
        Body::StatusUpdate { .. } | Body::Restarting { .. } => 0x3498DB,
        Body::TrainingStarted { .. } | Body::Completed { .. } => 0x2ECC71,
        Body::DecisionTaken { .. } => 0x95A5A6,
        Body::Investigate { .. } => 0x9B59B6,
        Body::FixSubmitted { .. } => 0x3498DB,
        Body::RevalidationRequired { .. } => 0xE67E22,
        Body::ValidationDecided { approved: true, .. } => 0x2ECC71,
        Body::ValidationDecided { approved: false, .. } => 0xE74C3C,
        Body::Failed { .. } => 0xE74C3C,
        Body::Killed { .. } => 0x992D22,
        Body::Store { .. } => 0xE67E22,
    }
}

/// A text file sent with a message, built when it is rendered (so the outbox holds it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextFile {
    pub filename: String,
    pub text: String,
}

impl TextFile {
    pub fn upload(&self) -> Upload {
        Upload {
            filename: self.filename.clone(),
            content_type: "text/markdown",
            data: self.text.as_bytes().to_vec(),
        }
    }
}

/// A message as Discord receives it: the body and the files rendered with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    pub body: Value,
    /// The complete message as markdown, when its lines do not all fit in the embed.
    pub files: Vec<TextFile>,
}

/// An embed under construction, before the limits are applied.
struct Draft {
    title: String,
    /// Description lines that must stay (the error line, the message's lines), in order:
    /// when they do not all fit, the first whole ones are shown and the rest go to a file.
    head: Vec<String>,
    /// Traceback / context lines: trimmed first when the message is too large.
    excerpt: Vec<String>,
    fields: Vec<(String, String, bool)>,
    footer: Option<String>,
}

fn field(name: &str, value: impl Into<String>, inline: bool) -> (String, String, bool) {
    (name.to_string(), value.into(), inline)
}

fn draft(m: &Message) -> Draft {
    let r = render::render(m);
    let mut footer = r.footer;
    if let Body::StatusUpdate { .. } = m.body {
        // In edit mode this message is replaced every interval: say when it was last.
        let updated = format!("updated {}", m.at.format("%H:%M UTC"));
        footer = Some(match footer {
            Some(f) => format!("{f} · {updated}"),
            None => updated,
        });
    }
    let mut d = Draft {
        title: r.title,
        head: r.lines,
        excerpt: r.excerpt,
        fields: Vec::new(),
        footer,
    };
    match &m.body {
        Body::ErrorDetected { .. } => {
            let f = render::error_facts(&m.body).expect("an error report has its facts");
            d.fields = vec![
                field("Job", format!("{} · error #{}", m.job, f.seq), true),
                field(f.process_label, f.process, true),
                field("Category", f.incident.category.as_str(), true),
                field("Line", line_no(f.incident.line), true),
                field("Elapsed", f.elapsed, true),
                field("Severity", f.severity, true),
                field("Log file", f.log_file, false),
            ];
            if f.incident.count > 1 {
                d.fields
                    .push(field("Occurrences", f.incident.count.to_string(), true));
            }
            d.head = vec![format!("**Error**\n{}", block(&line(&f.incident.text)))];
            d.head.extend(render::why(f.incident));
        }
        Body::WarningNoticed {
            seq,
            log_file,
            incident,
        } => {
            d.fields = vec![
                field("Job", format!("{} · warning #{seq}", m.job), true),
                field("Category", incident.category.as_str(), true),
                field("Line", line_no(incident.line), true),
                field("Log file", log_file.display().to_string(), false),
            ];
            if incident.count > 1 {
                d.fields
                    .push(field("Occurrences", incident.count.to_string(), true));
            }
            d.head = vec![format!(
                "**Warning** (the run goes on)\n{}",
                block(&line(&incident.text))
            )];
            d.head.extend(render::why(incident));
        }
        _ => {}
    }
    d
}

fn line_no(n: u64) -> String {
    if n > 0 {
        n.to_string()
    } else {
        "-".into()
    }
}

/// The excerpt's tail lines that fit in `budget` units as a code block, with a marker for
/// what was cut (the end of a traceback is where the error is).
fn fit_excerpt(lines: &[String], budget: usize) -> Option<String> {
    const HEADING: &str = "\n**Traceback / context**\n";
    let overhead = len16(HEADING) + len16("```\n\n```");
    if lines.is_empty() || budget <= overhead + 40 {
        return None;
    }
    let room = budget - overhead;
    let safe: Vec<String> = lines.iter().map(|l| fence_safe(l)).collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut used = 0;
    for l in safe.iter().rev() {
        // Leave room for the marker line.
        let need = len16(l) + 1;
        if used + need + 40 > room {
            break;
        }
        used += need;
        kept.push(l);
    }
    kept.reverse();
    let cut = safe.len() - kept.len();
    let mut text = String::new();
    if cut > 0 {
        text.push_str(&format!("… {cut} earlier line(s) cut\n"));
    }
    if kept.is_empty() {
        // A single huge last line: show its start.
        text.push_str(&cut16(safe.last().map(String::as_str).unwrap_or(""), room - 40));
    } else {
        text.push_str(&kept.join("\n"));
    }
    Some(format!("{HEADING}```\n{text}\n```"))
}

fn embed_total(title: &str, description: &str, fields: &[(String, String, bool)], footer: &str) -> usize {
    len16(title)
        + len16(description)
        + len16(footer)
        + fields.iter().map(|(n, v, _)| len16(n) + len16(v)).sum::<usize>()
}

/// The first whole `lines` that fit in `room` units, joined, and how many they are; when
/// not even the first fits, its start (counted as not shown).
fn pack(lines: &[String], room: usize) -> (String, usize) {
    let mut out = String::new();
    let mut n = 0;
    for l in lines {
        let sep = usize::from(n > 0);
        if len16(&out) + sep + len16(l) > room {
            break;
        }
        if n > 0 {
            out.push('\n');
        }
        out.push_str(l);
        n += 1;
    }
    if n == 0 {
        if let Some(first) = lines.first() {
            out = cut16(first, room);
        }
    }
    (out, n)
}

/// Apply every embed limit. The head's lines are shown whole, in order, as many as fit;
/// whether some did not (then the note names `file`, which carries them all).
fn finish(d: Draft, colour: u32, at: DateTime<Utc>, file: &str) -> (Value, bool) {
    let title = cut16(&d.title, MAX_TITLE);
    let footer = d.footer.map(|f| cut16(&f, MAX_FOOTER)).unwrap_or_default();
    let mut fields: Vec<(String, String, bool)> = d
        .fields
        .into_iter()
        .take(MAX_FIELDS)
        .map(|(n, v, i)| {
            let v = if v.is_empty() { "-".to_string() } else { v };
            (cut16(&n, MAX_FIELD_NAME), cut16(&v, MAX_FIELD_VALUE), i)
        })
        .collect();
    let full = d.head.join("\n");
    let sized = cut16(&full, MAX_DESCRIPTION);
    // Fields give way before the head: halve the longest value until the fixed part fits
    // with room to spare (bounded: each round shortens a value).
    for _ in 0..64 {
        if embed_total(&title, &sized, &fields, &footer) <= MAX_EMBED_TOTAL - 200 {
            break;
        }
        let Some(longest) = fields.iter_mut().max_by_key(|f| len16(&f.1)) else {
            break;
        };
        if len16(&longest.1) <= 16 {
            break;
        }
        let half = len16(&longest.1) / 2;
        longest.1 = cut16(&longest.1, half);
    }
    let footer = if embed_total(&title, &sized, &fields, &footer) > MAX_EMBED_TOTAL {
        cut16(&footer, 100)
    } else {
        footer
    };
    let room = MAX_DESCRIPTION.min(MAX_EMBED_TOTAL.saturating_sub(embed_total(&title, "", &fields, &footer)));
    let (head, overflow) = if len16(&full) <= room {
        (full, false)
    } else {
        let rest = |shown: usize| d.head.len() - shown;
        let note = |shown: usize| {
            format!(
                "**⚠️ {} more line(s) did not fit in this message: the complete message is attached as `{file}`.**",
                rest(shown)
            )
        };
        // The note's length depends on the count only through its digits: reserve for the
        // longest count.
        let reserve = len16(&note(0)) + 1;
        let (shown, n) = pack(&d.head, room.saturating_sub(reserve));
        (format!("{shown}\n{}", note(n)), true)
    };
    let fixed = embed_total(&title, &head, &fields, &footer);
    let budget = MAX_DESCRIPTION
        .saturating_sub(len16(&head))
        .min(MAX_EMBED_TOTAL.saturating_sub(fixed));
    let mut description = head;
    if let Some(ex) = fit_excerpt(&d.excerpt, budget) {
        description.push_str(&ex);
    }
    let mut embed = CreateEmbed::new()
        .title(title)
        .description(description)
        .colour(colour)
        .fields(fields);
    if let Ok(at) = Timestamp::from_millis(at.timestamp_millis()) {
        embed = embed.timestamp(at);
    }
    if !footer.is_empty() {
        embed = embed.footer(CreateEmbedFooter::new(footer));
    }
    (serde_json::to_value(embed).expect("embeds serialize"), overflow)
}

/// The name of the file that carries the complete message `m`.
fn file_name(m: &Message) -> String {
    attach::safe_name(std::path::Path::new(&format!(
        "{}-run{}-{}.md",
        m.job, m.run, m.key
    )))
}

/// The embed of a message, and the complete message as a file when its lines do not fit.
fn embed_and_file(m: &Message) -> (Value, Option<TextFile>) {
    let filename = file_name(m);
    let (embed, overflow) = finish(draft(m), colour(m), m.at, &filename);
    let file = overflow.then(|| TextFile {
        filename,
        text: render::render(m).markdown(),
    });
    (embed, file)
}

/// The embed of a message.
pub fn embed(m: &Message) -> Value {
    embed_and_file(m).0
}

fn style(d: Decision) -> ButtonStyle {
    match d {
        Decision::Restart => ButtonStyle::Primary,
        Decision::Kill | Decision::Reject => ButtonStyle::Danger,
        Decision::Continue | Decision::Approve => ButtonStyle::Success,
        Decision::Investigate => ButtonStyle::Secondary,
        Decision::Extend => ButtonStyle::Primary,
    }
}

/// Action rows of buttons; a button whose id would be too long is left out (and logged).
pub fn components(m: &Message, disabled: bool) -> Vec<CreateActionRow> {
    let buttons: Vec<CreateButton> = m
        .buttons
        .iter()
        .filter_map(|b: &Button| {
            let id = ButtonId {
                decision: b.decision,
                job: m.job.clone(),
                run: m.run,
                point: b.point,
            };
            let Some(custom_id) = id.encode() else {
                tracing::warn!(job = %m.job, run = %m.run, "button id too long; button left out (use /decide)");
                return None;
            };
            Some(
                CreateButton::new(custom_id)
                    .style(style(b.decision))
                    .label(cut16(&b.label, 80))
                    .disabled(disabled),
            )
        })
        .take(ROW * ROWS)
        .collect();
    buttons
        .chunks(ROW)
        .map(|row| CreateActionRow::Buttons(row.to_vec()))
        .collect()
}

/// The full body to create (or replace) a message, and its files. Not a serialized
/// `CreateMessage`: that always carries `attachments: []`, which on an edit would drop the
/// message's files.
pub fn message(m: &Message, mentions: &Mentions) -> Outbound {
    let (embed, file) = embed_and_file(m);
    Outbound {
        body: json!({
            "content": cut16(&mentions.content(), MAX_CONTENT),
            "embeds": [embed],
            "components": components(m, false),
            "allowed_mentions": mentions.allowed(),
        }),
        files: file.into_iter().collect(),
    }
}

/// An edit that closes a decided report: every button disabled, the note as footer.
/// Built from the message as Discord has it, so applying it twice changes nothing.
pub fn resolved_edit(current: &Value, note: &str) -> Value {
    let note = cut16(note, MAX_FOOTER);
    let mut embeds: Vec<Value> = current
        .get("embeds")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(first) = embeds.first_mut().and_then(Value::as_object_mut) {
        first.insert("footer".into(), json!({ "text": note }));
        // A longer footer may push a full embed past the total: the description gives way.
        let total = embed_len(&Value::Object(first.clone()));
        if total > MAX_EMBED_TOTAL {
            let desc = first.get("description").and_then(Value::as_str).unwrap_or("");
            let keep = len16(desc).saturating_sub(total - MAX_EMBED_TOTAL);
            first.insert("description".into(), json!(cut16(desc, keep)));
        }
    }
    let components: Vec<Value> = current
        .get("components")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut row| {
            if let Some(items) = row.get_mut("components").and_then(Value::as_array_mut) {
                for c in items {
                    c["disabled"] = json!(true);
                }
            }
            row
        })
        .collect();
    json!({
        "embeds": embeds,
        "components": components,
        "allowed_mentions": CreateAllowedMentions::new(),
    })
}

/// Size of an embed as Discord counts it toward the 6000 total.
pub fn embed_len(e: &Value) -> usize {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(len16).unwrap_or(0);
    let fields = e
        .get("fields")
        .and_then(Value::as_array)
        .map(|fs| fs.iter().map(|f| s(f.get("name")) + s(f.get("value"))).sum())
        .unwrap_or(0);
    s(e.get("title"))
        + s(e.get("description"))
        + s(e.get("footer").and_then(|f| f.get("text")))
        + s(e.get("author").and_then(|a| a.get("name")))
        + fields
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;
    use crate::engine::DecisionPoint;
    use crate::model::ProcessId;
    use crate::model::{Category, Incident, JobName, RunId};

    fn error_report(text: &str, excerpt: Vec<String>, log: &str, job: &str) -> Message {
        Message {
            job: JobName::new(job).unwrap(),
            run: RunId(4),
            key: crate::engine::MessageKey::Incident(2),
            at: chrono::Utc.with_ymd_and_hms(2026, 1, 2, 14, 2, 0).unwrap(),
            to: vec![Persona::Director, Persona::CodeTranslator],
            body: Body::ErrorDetected {
                seq: 2,
                pid: Some(ProcessId::Local(4242)),
                log_file: PathBuf::from(log),
                incident: Incident {
                    category: Category::Implementation,
                    severity: Severity::Fatal,
                    line: 1234,
                    text: text.into(),
                    excerpt,
                    count: 1,
                    reason: String::new(),
                },
                exit: None,
                elapsed: Duration::from_secs(3725),
            },
            buttons: [
                Decision::Restart,
                Decision::Kill,
                Decision::Continue,
                Decision::Investigate,
            ]
            .iter()
            .map(|d| Button {
                decision: *d,
                point: DecisionPoint::Incident(2),
                label: d.as_str().into(),
            })
            .collect(),
            attachments: Vec::new(),
        }
    }

    fn map() -> Vec<(Persona, Vec<DiscordPrincipal>)> {
        vec![
            (
                Persona::Director,
                vec![DiscordPrincipal::Role(111), DiscordPrincipal::User(7)],
            ),
            (Persona::CodeTranslator, vec![DiscordPrincipal::Role(222)]),
            (Persona::Modeler, vec![DiscordPrincipal::Role(333)]),
        ]
    }

    fn assert_within_limits(body: &Value) {
        assert!(len16(body["content"].as_str().unwrap()) <= MAX_CONTENT);
        for e in body["embeds"].as_array().unwrap() {
            assert!(len16(e["title"].as_str().unwrap()) <= MAX_TITLE);
            assert!(len16(e["description"].as_str().unwrap()) <= MAX_DESCRIPTION);
            // A serialized embed has no `fields` key when it has none.
            let fields = e
                .get("fields")
                .map_or(Vec::new(), |f| f.as_array().unwrap().clone());
            assert!(fields.len() <= MAX_FIELDS);
            for f in &fields {
                assert!(len16(f["name"].as_str().unwrap()) <= MAX_FIELD_NAME);
                let v = f["value"].as_str().unwrap();
                assert!(!v.is_empty() && len16(v) <= MAX_FIELD_VALUE);
            }
            if let Some(f) = e.get("footer") {
                assert!(len16(f["text"].as_str().unwrap()) <= MAX_FOOTER);
            }
            assert!(embed_len(e) <= MAX_EMBED_TOTAL, "embed is {} long", embed_len(e));
        }
    }

    #[test]
    fn error_report_shows_the_protocol_fields_and_pings_only_the_addressed() {
        let m = error_report(
            "RuntimeError: CUDA out of memory @everyone <@&999>",
            vec![
                "Traceback (most recent call last):".into(),
                "  File \"train.py\", line 3".into(),
            ],
            "/data/logs/model_3.log",
            "model_3",
        );
        let body = message(&m, &Mentions::for_personas(&m.to, &map())).body;
        assert_eq!(body["content"], "<@&111> <@&222> <@7>");
        assert_eq!(
            body["allowed_mentions"],
            json!({"parse": [], "roles": [111, 222], "users": [7], "replied_user": false})
        );
        let e = &body["embeds"][0];
        assert_eq!(e["color"], 0xE74C3C);
        let names: Vec<&str> = e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        for n in ["Job", "PID", "Category", "Line", "Elapsed", "Log file"] {
            assert!(names.contains(&n), "missing field {n}: {names:?}");
        }
        let desc = e["description"].as_str().unwrap();
        assert!(desc.contains("RuntimeError: CUDA out of memory"));
        assert!(desc.contains("Traceback (most recent call last)"));
        let text = body.to_string();
        assert!(
            !text.contains("@everyone") && !text.contains("<@&999>"),
            "log text must not ping"
        );
        let row = &body["components"][0]["components"];
        assert_eq!(row.as_array().unwrap().len(), 4);
        assert_eq!(row[0]["custom_id"], "tw1:restart:model_3:4:i2");
        assert_eq!(row[0]["disabled"], false);
        assert_within_limits(&body);
    }

    /// The embed says why the incident got its category, as one line after the error.
    #[test]
    fn error_report_embed_says_why() {
        let mut m = error_report("RuntimeError: CUDA out of memory", vec![], "l", "model_3");
        let Body::ErrorDetected { incident, .. } = &mut m.body else {
            unreachable!()
        };
        incident.reason = "CUDA ran out of memory (resource) <@&999>".into();
        let body = message(&m, &Mentions::default()).body;
        let desc = body["embeds"][0]["description"].as_str().unwrap();
        let why: Vec<&str> = desc.lines().filter(|l| l.starts_with("Why: ")).collect();
        assert_eq!(why.len(), 1, "{desc}");
        assert!(
            why[0].starts_with("Why: CUDA ran out of memory (resource)"),
            "{desc}"
        );
        assert!(!body.to_string().contains("<@&999>"), "the reason must not ping");
        assert_within_limits(&body);
    }

    /// A scheduler's messages are short embeds (a phone shows them whole); the timeout
    /// warning ahead of the limit carries the protocol's buttons and Extend; what the
    /// scheduler says cannot ping.
    #[test]
    fn scheduler_messages_fit_and_the_limit_warning_offers_extend() {
        let m = error_report("x", vec![], "l", "model_3");
        let said = format!("held @everyone {}", "r".repeat(20_000));
        for body in render::scheduler_samples(m.at, &said) {
            let mut s = m.clone();
            s.to = vec![];
            s.body = body;
            s.buttons = vec![];
            let out = message(&s, &Mentions::default()).body;
            assert_within_limits(&out);
            assert!(!out.to_string().contains("@everyone"));
        }
        let mut w = m.clone();
        w.to = vec![Persona::Director];
        w.key = crate::engine::MessageKey::Timeout(1);
        w.body = render::scheduler_samples(m.at, "Priority")
            .into_iter()
            .find(|b| matches!(b, Body::LimitWarning { .. }))
            .unwrap();
        w.buttons = [
            Decision::Continue,
            Decision::Investigate,
            Decision::Restart,
            Decision::Extend,
        ]
        .iter()
        .map(|d| Button {
            decision: *d,
            point: DecisionPoint::Timeout(1),
            label: d.as_str().into(),
        })
        .collect();
        let out = message(&w, &Mentions::for_personas(&w.to, &map())).body;
        let e = &out["embeds"][0];
        assert!(e["title"].as_str().unwrap().starts_with("⚠️ TIMEOUT WARNING"));
        assert_eq!(e["color"], 0xE67E22);
        let row = out["components"][0]["components"].as_array().unwrap();
        assert_eq!(row.len(), 4);
        assert_eq!(row[3]["custom_id"], "tw1:extend:model_3:4:t1");
        assert_eq!(row[3]["style"], 1, "primary");
        assert_eq!(out["content"], "<@&111> <@7>");
    }

    /// Discord and the console word an ended process and its severity alike.
    #[test]
    fn the_embed_states_the_same_facts_as_the_console() {
        let mut m = error_report("Killed", Vec::new(), "/data/logs/model_3.log", "model_3");
        if let Body::ErrorDetected { exit, .. } = &mut m.body {
            *exit = Some(crate::model::ExitOutcome::Signal(9));
        }
        let e = embed(&m);
        let field = |name: &str| {
            e["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == name)
                .map(|f| f["value"].as_str().unwrap().to_string())
                .unwrap()
        };
        assert_eq!(field("PID"), "4242 (killed by SIGKILL (137))");
        assert_eq!(field("Severity"), "CRITICAL (training halted)");
        assert_eq!(
            field("Elapsed"),
            crate::config::format_duration(Duration::from_secs(3725))
        );
        let lines = render::render(&m).lines;
        assert!(
            lines.contains(&"Process ID: 4242 (killed by SIGKILL (137))".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"Severity: CRITICAL (training halted)".to_string()),
            "{lines:?}"
        );
    }

    #[test]
    fn nobody_is_pinged_when_nobody_is_addressed() {
        let mut m = error_report("x", vec![], "l", "j");
        m.to.clear();
        let body = message(&m, &Mentions::for_personas(&m.to, &map())).body;
        assert_eq!(body["content"], "");
        assert_eq!(body["allowed_mentions"]["parse"], json!([]));
        assert_eq!(body["allowed_mentions"]["roles"], json!([]));
        assert_eq!(body["allowed_mentions"]["users"], json!([]));
    }

    #[test]
    fn huge_inputs_fit_every_limit_and_keep_the_error_line() {
        let error = format!("ValueError: bad shape {}", "é".repeat(100_000));
        let excerpt: Vec<String> = (0..20_000)
            .map(|i| format!("frame {i} {}", "🔥".repeat(3000)))
            .collect();
        let log = format!("/{}", "d".repeat(20_000));
        let m = error_report(&error, excerpt, &log, &"j".repeat(64));
        let body = message(&m, &Mentions::for_personas(&m.to, &map())).body;
        assert_within_limits(&body);
        let desc = body["embeds"][0]["description"].as_str().unwrap();
        assert!(
            desc.contains("ValueError: bad shape"),
            "the error line is never dropped"
        );
        // Other messages too: a status update with a huge last line, a failure with many errors.
        let mut s = m.clone();
        s.body = Body::Investigate {
            owner: Persona::Modeler,
            requested_by: "@x".repeat(10_000),
            incident: None,
            log_file: PathBuf::from(&log),
            last_line: Some("z".repeat(50_000)),
        };
        assert_within_limits(&message(&s, &Mentions::default()).body);
    }

    #[test]
    fn fences_in_log_text_cannot_escape_the_code_block() {
        let m = error_report(
            "Error ```\n**bold** @here",
            vec!["```".into(), "x```y".into()],
            "l",
            "j",
        );
        let desc = embed(&m)["description"].as_str().unwrap().to_string();
        assert_eq!(desc.matches("```").count(), 4, "{desc}");
        assert!(!desc.contains("@here"));
    }

    #[test]
    fn resolving_disables_buttons_notes_who_and_is_idempotent() {
        let m = error_report("E", vec!["t".into()], "l", "j");
        let posted = message(&m, &Mentions::default()).body;
        let once = resolved_edit(&posted, "Restarted by @ann at 14:02 UTC");
        assert_eq!(
            once["embeds"][0]["footer"]["text"],
            "Restarted by @ann at 14:02 UTC"
        );
        for b in once["components"][0]["components"].as_array().unwrap() {
            assert_eq!(b["disabled"], true);
        }
        assert_eq!(once["embeds"][0]["title"], posted["embeds"][0]["title"]);
        let twice = resolved_edit(&once, "Restarted by @ann at 14:02 UTC");
        assert_eq!(once, twice);
        // A full embed stays within the total once the note is added.
        let big = error_report("E", (0..5000).map(|i| format!("line {i}")).collect(), "l", "j");
        let edit = resolved_edit(&message(&big, &Mentions::default()).body, &"n".repeat(3000));
        assert!(embed_len(&edit["embeds"][0]) <= MAX_EMBED_TOTAL);
    }

    /// Item 4 of issue 13: a gate of 30 rows, a CHANGES SUMMARY of 30 parameters and a
    /// completion report of 42 outputs exceed an embed. The embed keeps every limit, shows
    /// whole lines only, says what did not fit, and the attached file holds all of it.
    #[test]
    fn messages_larger_than_an_embed_show_the_verdict_first_and_attach_everything() {
        use crate::chat::render::large;
        for body in [large::gate(30), large::fix(30), large::completed(42)] {
            let m = large::message(body);
            let out = message(&m, &Mentions::default());
            assert_within_limits(&out.body);
            let desc = out.body["embeds"][0]["description"].as_str().unwrap();
            assert_eq!(out.files.len(), 1, "{} needs its file", m.body.title());
            let file = &out.files[0];
            assert_eq!(file.filename, format!("model_3-run1-{}.md", m.key));
            assert!(
                desc.contains(&format!("attached as `{}`", file.filename)),
                "the embed says where the rest is: {desc}"
            );
            let shown = desc.lines().filter(|l| !l.contains("did not fit")).count();
            let rendered = render::render(&m).lines;
            assert_eq!(
                desc.lines().take(shown).collect::<Vec<_>>(),
                rendered[..shown].iter().map(String::as_str).collect::<Vec<_>>(),
                "the embed shows the first lines, whole"
            );
            let needed = large::must_show(&m.body);
            assert!(needed.len() >= 30, "{needed:?}");
            for needle in &needed {
                assert!(
                    file.text.contains(needle.as_str()),
                    "{needle:?} missing from the file"
                );
            }
            assert!(
                needed.iter().any(|n| !desc.contains(n.as_str())),
                "this size does not fit one embed (else the test proves nothing)"
            );
        }
        // The gate's verdict comes first: the score and every row outside tolerance, with
        // its values, in the embed itself, before the table.
        let m = large::message(large::gate(30));
        let desc = embed(&m)["description"].as_str().unwrap().to_string();
        let score = desc
            .find("Overall score: 33% (10/30 within tolerance)")
            .expect(&desc);
        for i in (0..30).filter(|i| i % 3 != 0) {
            let row = format!("  {}: actual ", large::row_name(i));
            let at = desc
                .find(&row)
                .unwrap_or_else(|| panic!("violated row {i} not shown: {desc}"));
            assert!(score < at);
        }
        if let Some(table) = desc.find("Parameter ") {
            assert!(score < table);
        }
        // A message that fits has no file.
        let small = error_report("E", vec![], "l", "j");
        assert!(message(&small, &Mentions::default()).files.is_empty());
    }

    #[test]
    fn pages_split_at_line_ends_and_drop_nothing() {
        let lines: Vec<String> = (0..300)
            .map(|i| format!("line {i:03} {}", "x".repeat(20)))
            .collect();
        let text = lines.join("\n");
        let p = pages(&text, 2000);
        assert!(p.len() > 1);
        assert!(p.iter().all(|p| len16(p) <= 2000));
        assert_eq!(p.join("\n"), text, "whole lines, in order, all of them");
        let long = format!("head {} tail", "é".repeat(10_000));
        let p = pages(&long, 2000);
        assert!(p.iter().all(|p| len16(p) <= 2000));
        assert_eq!(p.concat().replace("↪ ", ""), long);
        assert_eq!(pages("", 2000), vec![String::new()]);
    }
}

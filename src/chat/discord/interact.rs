//! Incoming interactions: the slash commands (`/train …`, `/decide`) with job-name
//! autocomplete, and the decision buttons. Each becomes an engine `Command` sent to the
//! supervisor as an `Inbound` with the clicking user as `Actor` (personas from their user
//! id and role ids); the engine's replies are answered ephemerally. Everything here is
//! untrusted input: unknown jobs, malformed ids and missing roles get an answer, not a crash.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::chat::sanitize::{defuse_mentions, untrusted};
use crate::config::parse_duration;
use crate::engine::{Command, Decision, Reply};
use crate::model::{Actor, JobName, Persona};

use super::embed::{cut16, MAX_CONTENT};
use crate::chat::request::button::ButtonId;
use super::DiscordPrincipal;

/// The decisions `/decide` offers (approve/reject go through `/validate`).
const DECIDE: [Decision; 4] = [
    Decision::Restart,
    Decision::Kill,
    Decision::Continue,
    Decision::Investigate,
];
/// Longest fix summary or verdict reason taken from chat.
const MAX_TEXT: usize = 500;

/// Most log lines `/train logs` shows.
pub const MAX_LOG_LINES: usize = 200;
const DEFAULT_LOG_LINES: usize = 20;
/// How much of the log's end is read for `/train logs`.
const TAIL_BYTES: u64 = 64 * 1024;

/// The slash commands, as Discord's bulk-overwrite body.
pub fn commands() -> Value {
    let job = || json!({"type": 3, "name": "job", "description": "The job", "required": true, "autocomplete": true});
    let sub = |name: &str, description: &str| json!({"type": 1, "name": name, "description": description, "options": [job()]});
    let mut logs = sub("logs", "Show the last lines of a job's log (only to you)");
    logs["options"].as_array_mut().expect("options").push(json!({
        "type": 4, "name": "lines", "description": "How many lines (default 20)",
        "required": false, "min_value": 1, "max_value": MAX_LOG_LINES
    }));
    let decisions: Vec<Value> = DECIDE
        .iter()
        .map(|d| json!({"name": d.as_str(), "value": d.as_str()}))
        .collect();
    let text = |name: &str, description: &str, required: bool| json!({"type": 3, "name": name, "description": description, "required": required, "max_length": MAX_TEXT});
    let verdict = |name: &str, description: &str| {
        json!({"type": 1, "name": name, "description": description,
               "options": [job(), text("reason", "Why (shown in the verdict)", false)]})
    };
    json!([
        {
            "type": 1, "name": "train", "description": "Run and watch training jobs",
            "options": [
                sub("start", "Start a new run of a job"),
                sub("status", "Post the job's status now"),
                sub("kill", "Kill the job's process"),
                sub("restart", "Restart the job"),
                logs,
                {"type": 1, "name": "list", "description": "List the jobs"}
            ]
        },
        {
            "type": 1, "name": "decide", "description": "Decide on a job's open report",
            "options": [
                job(),
                {"type": 3, "name": "decision", "description": "What to do", "required": true, "choices": decisions},
                {"type": 3, "name": "extend", "description": "For continue after a timeout warning: how long (e.g. 2h)", "required": false}
            ]
        },
        {
            "type": 1, "name": "fix", "description": "Fixes to a job's code",
            "options": [{
                "type": 1, "name": "submit",
                "description": "A fix is ready: trainwatch computes the CHANGES SUMMARY",
                "options": [job(), text("summary", "What was fixed, in a few words", true)]
            }]
        },
        {
            "type": 1, "name": "validate", "description": "The validator's verdict on the latest fix",
            "options": [
                verdict("approve", "Approve the latest fix"),
                verdict("reject", "Reject the latest fix")
            ]
        }
    ])
}

/// A slash command reduced to plain values: its name, subcommand and string/int options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    pub name: String,
    pub sub: Option<String>,
    pub options: BTreeMap<String, String>,
}

/// What an interaction asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Engine { job: JobName, command: Command },
    Logs { job: JobName, lines: usize },
    List,
}

/// Parse a slash command against the configured jobs. Err is the ephemeral answer.
pub fn parse_invocation(inv: &Invocation, jobs: &[JobName]) -> Result<Request, String> {
    let job = || -> Result<JobName, String> {
        let raw = inv.options.get("job").map(String::as_str).unwrap_or("");
        let shown = cut16(&defuse_mentions(raw), 64);
        JobName::new(raw)
            .ok()
            .filter(|j| jobs.contains(j))
            .ok_or_else(|| format!("unknown job {shown:?}; known jobs: {}", job_list(jobs)))
    };
    let decide = |decision: Decision| Command::Decide {
        decision,
        target: None,
        extend: None,
    };
    match (inv.name.as_str(), inv.sub.as_deref()) {
        ("train", Some("list")) => Ok(Request::List),
        ("train", Some("start")) => Ok(Request::Engine {
            job: job()?,
            command: Command::Start,
        }),
        ("train", Some("status")) => Ok(Request::Engine {
            job: job()?,
            command: Command::Status,
        }),
        ("train", Some("kill")) => Ok(Request::Engine {
            job: job()?,
            command: decide(Decision::Kill),
        }),
        ("train", Some("restart")) => Ok(Request::Engine {
            job: job()?,
            command: decide(Decision::Restart),
        }),
        ("train", Some("logs")) => {
            let job = job()?;
            let lines = match inv.options.get("lines") {
                None => DEFAULT_LOG_LINES,
                Some(n) => n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LOG_LINES).contains(n))
                    .ok_or_else(|| format!("lines must be 1 to {MAX_LOG_LINES}"))?,
            };
            Ok(Request::Logs { job, lines })
        }
        ("fix", Some("submit")) => {
            let job = job()?;
            let summary = free_text(inv.options.get("summary")).ok_or("the summary is required")?;
            Ok(Request::Engine {
                job,
                command: Command::SubmitFix {
                    summary,
                    evidence: None,
                },
            })
        }
        ("validate", Some(verdict @ ("approve" | "reject"))) => Ok(Request::Engine {
            job: job()?,
            command: Command::Validate {
                approve: verdict == "approve",
                reason: free_text(inv.options.get("reason")),
            },
        }),
        ("decide", None) => {
            let job = job()?;
            let raw = inv.options.get("decision").map(String::as_str).unwrap_or("");
            let decision: Decision = raw
                .parse()
                .ok()
                .filter(|d| DECIDE.contains(d))
                .ok_or_else(|| "decision must be restart, kill, continue or investigate".to_string())?;
            let extend: Option<Duration> = inv
                .options
                .get("extend")
                .map(|s| parse_duration(s))
                .transpose()
                .map_err(|e| defuse_mentions(&e))?;
            if extend.is_some() && decision != Decision::Continue {
                return Err(format!("{decision} takes no duration"));
            }
            Ok(Request::Engine {
                job,
                command: Command::Decide {
                    decision,
                    target: None,
                    extend,
                },
            })
        }
        _ => Err("unknown command".into()),
    }
}

/// Text typed in chat for the record (a fix summary, a reason): trimmed, cut, never empty.
fn free_text(s: Option<&String>) -> Option<String> {
    let t = s?.trim();
    (!t.is_empty()).then(|| t.chars().take(MAX_TEXT).collect())
}

/// A button click: the job must be one of ours; the engine checks run and report.
pub fn parse_button(custom_id: &str, jobs: &[JobName]) -> Result<ButtonId, String> {
    let id = ButtonId::parse(custom_id).map_err(|e| format!("this button cannot be used: {e}"))?;
    if !jobs.contains(&id.job) {
        return Err(format!("{} is not a job of this bot (any more)", id.job));
    }
    Ok(id)
}

fn job_list(jobs: &[JobName]) -> String {
    if jobs.is_empty() {
        return "none".into();
    }
    jobs.iter().map(JobName::as_str).collect::<Vec<_>>().join(", ")
}

/// Job names for autocomplete: those containing what was typed, prefix matches first, at
/// most 25 (Discord's limit).
pub fn complete(typed: &str, jobs: &[JobName]) -> Vec<String> {
    let t = typed.to_ascii_lowercase();
    let mut hits: Vec<&JobName> = jobs
        .iter()
        .filter(|j| j.as_str().to_ascii_lowercase().contains(&t))
        .collect();
    hits.sort_by_key(|j| {
        (
            !j.as_str().to_ascii_lowercase().starts_with(&t),
            j.as_str().to_string(),
        )
    });
    hits.into_iter().take(25).map(|j| j.to_string()).collect()
}

/// The user as the engine sees them: personas granted to their id or any of their roles.
pub fn actor(user_id: u64, username: &str, roles: &[u64], map: &[(Persona, Vec<DiscordPrincipal>)]) -> Actor {
    let personas = map
        .iter()
        .filter(|(_, principals)| {
            principals.iter().any(|p| match *p {
                DiscordPrincipal::User(u) => u == user_id,
                DiscordPrincipal::Role(r) => roles.contains(&r),
            })
        })
        .map(|(p, _)| *p)
        .collect();
    Actor::user(user_id.to_string(), format!("@{}", untrusted(username)), personas)
}

/// The engine's answers as one ephemeral message.
pub fn reply_text(replies: &[Reply]) -> String {
    if replies.is_empty() {
        return "nothing to do".into();
    }
    let text = replies
        .iter()
        .map(|r| format!("{} {}", if r.accepted { "✅" } else { "⛔" }, r.text))
        .collect::<Vec<_>>()
        .join("\n");
    cut16(&defuse_mentions(&text), MAX_CONTENT)
}

/// The jobs with their channels, for `/train list`.
pub fn list_text(jobs: &[JobName], channel_of: impl Fn(&JobName) -> u64) -> String {
    if jobs.is_empty() {
        return "no jobs are configured".into();
    }
    let lines: Vec<String> = jobs
        .iter()
        .map(|j| format!("• {j} → <#{}>", channel_of(j)))
        .collect();
    cut16(&lines.join("\n"), MAX_CONTENT)
}

/// The last `n` lines of a log, sanitized, as a code block within Discord's 2000 characters.
pub fn logs_text(job: &JobName, path: Option<&PathBuf>, n: usize) -> String {
    let Some(path) = path else {
        return format!("{job} has no log file configured");
    };
    let tail = match read_tail(path) {
        Ok(t) => t,
        Err(e) => return format!("cannot read the log of {job}: {e}"),
    };
    let all: Vec<String> = tail
        .lines()
        .map(|l| crate::chat::render::line(l).replace("```", "`\u{200B}``"))
        .collect();
    let wanted = &all[all.len().saturating_sub(n)..];
    let header = format!("Last {} line(s) of the log of {job}:\n", wanted.len());
    let room = MAX_CONTENT - super::embed::len16(&header) - 8;
    // Newest lines matter most: drop from the start until the block fits.
    let mut start = 0;
    while start < wanted.len() && super::embed::len16(&wanted[start..].join("\n")) > room {
        start += 1;
    }
    let body = if start == wanted.len() {
        cut16(wanted.last().map(String::as_str).unwrap_or(""), room)
    } else {
        wanted[start..].join("\n")
    };
    if body.is_empty() {
        return format!("the log of {job} is empty");
    }
    format!("{header}```\n{body}\n```")
}

fn read_tail(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let from = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    f.take(TAIL_BYTES).read_to_end(&mut buf)?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if from > 0 {
        // The first line is probably cut in the middle.
        if let Some(i) = text.find('\n') {
            text.drain(..=i);
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::DecisionPoint;
    use crate::model::RunId;

    fn jobs() -> Vec<JobName> {
        vec![JobName::new("model_3").unwrap(), JobName::new("bert").unwrap()]
    }

    fn inv(name: &str, sub: Option<&str>, opts: &[(&str, &str)]) -> Invocation {
        Invocation {
            name: name.into(),
            sub: sub.map(Into::into),
            options: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn slash_commands_become_engine_commands() {
        let r = parse_invocation(&inv("train", Some("restart"), &[("job", "model_3")]), &jobs()).unwrap();
        assert_eq!(
            r,
            Request::Engine {
                job: JobName::new("model_3").unwrap(),
                command: Command::Decide {
                    decision: Decision::Restart,
                    target: None,
                    extend: None
                }
            }
        );
        let r = parse_invocation(
            &inv(
                "decide",
                None,
                &[("job", "bert"), ("decision", "continue"), ("extend", "2h")],
            ),
            &jobs(),
        )
        .unwrap();
        assert!(
            matches!(r, Request::Engine { command: Command::Decide { decision: Decision::Continue, extend: Some(d), .. }, .. } if d == Duration::from_secs(7200))
        );
        assert_eq!(
            parse_invocation(&inv("train", Some("list"), &[]), &jobs()),
            Ok(Request::List)
        );
        let r = parse_invocation(
            &inv(
                "fix",
                Some("submit"),
                &[("job", "bert"), ("summary", " use fit() not fit_transform() ")],
            ),
            &jobs(),
        )
        .unwrap();
        assert_eq!(
            r,
            Request::Engine {
                job: JobName::new("bert").unwrap(),
                command: Command::SubmitFix {
                    summary: "use fit() not fit_transform()".into(),
                    evidence: None
                }
            }
        );
        let r = parse_invocation(&inv("validate", Some("reject"), &[("job", "bert")]), &jobs()).unwrap();
        assert_eq!(
            r,
            Request::Engine {
                job: JobName::new("bert").unwrap(),
                command: Command::Validate {
                    approve: false,
                    reason: None
                }
            }
        );
    }

    #[test]
    fn bad_input_gets_a_reason() {
        let e = parse_invocation(&inv("train", Some("kill"), &[("job", "@everyone")]), &jobs()).unwrap_err();
        assert!(e.contains("unknown job") && !e.contains("@everyone"), "{e}");
        assert!(e.contains("model_3, bert"));
        let e = parse_invocation(
            &inv("decide", None, &[("job", "bert"), ("decision", "reboot")]),
            &jobs(),
        )
        .unwrap_err();
        assert!(e.contains("decision must be"), "{e}");
        let e = parse_invocation(
            &inv("decide", None, &[("job", "bert"), ("decision", "approve")]),
            &jobs(),
        )
        .unwrap_err();
        assert!(e.contains("decision must be"), "{e}");
        let e = parse_invocation(
            &inv("fix", Some("submit"), &[("job", "bert"), ("summary", "  ")]),
            &jobs(),
        )
        .unwrap_err();
        assert!(e.contains("summary"), "{e}");
        let e = parse_invocation(
            &inv(
                "decide",
                None,
                &[("job", "bert"), ("decision", "kill"), ("extend", "2h")],
            ),
            &jobs(),
        )
        .unwrap_err();
        assert!(e.contains("takes no duration"));
        let e = parse_invocation(
            &inv("train", Some("logs"), &[("job", "bert"), ("lines", "100000")]),
            &jobs(),
        )
        .unwrap_err();
        assert!(e.contains("lines must be"));
    }

    #[test]
    fn buttons_carry_their_target() {
        let id = parse_button("tw1:kill:bert:7:t1", &jobs()).unwrap();
        assert_eq!(id.job.as_str(), "bert");
        assert_eq!(
            id.command(),
            Command::Decide {
                decision: Decision::Kill,
                target: Some((RunId(7), DecisionPoint::Timeout(1))),
                extend: None
            }
        );
        assert!(parse_button("tw1:kill:other:7:t1", &jobs())
            .unwrap_err()
            .contains("not a job"));
        assert!(parse_button("tw1:kill:bert:7", &jobs()).is_err());
    }

    #[test]
    fn personas_come_from_user_and_roles() {
        let map = vec![
            (
                Persona::Director,
                vec![DiscordPrincipal::Role(10), DiscordPrincipal::User(1)],
            ),
            (Persona::Modeler, vec![DiscordPrincipal::Role(20)]),
        ];
        assert_eq!(actor(1, "ann", &[], &map).personas, vec![Persona::Director]);
        let a = actor(2, "bob", &[20, 10], &map);
        assert_eq!(a.personas, vec![Persona::Director, Persona::Modeler]);
        assert_eq!(a.display, "@bob");
        assert!(actor(3, "eve", &[99], &map).personas.is_empty());
    }

    #[test]
    fn autocomplete_prefers_prefixes() {
        let jobs = vec![
            JobName::new("xbert").unwrap(),
            JobName::new("bert").unwrap(),
            JobName::new("model").unwrap(),
        ];
        assert_eq!(complete("ber", &jobs), vec!["bert", "xbert"]);
        assert_eq!(complete("", &jobs).len(), 3);
        let many: Vec<JobName> = (0..40).map(|i| JobName::new(format!("j{i}")).unwrap()).collect();
        assert_eq!(complete("j", &many).len(), 25);
    }

    #[test]
    fn logs_are_sanitized_and_fit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.log");
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&format!("step {i} loss=0.{i} {}\n", "x".repeat(300)));
        }
        text.push_str("ping @everyone token=supersecretvalue ```escape``` \x1b[31mred\n");
        std::fs::write(&path, text).unwrap();
        let out = logs_text(&JobName::new("bert").unwrap(), Some(&path), 50);
        assert!(super::super::embed::len16(&out) <= MAX_CONTENT, "{}", out.len());
        assert!(!out.contains("@everyone") && !out.contains("supersecretvalue") && !out.contains('\x1b'));
        assert_eq!(
            out.matches("```").count(),
            2,
            "log text cannot close the code block"
        );
        assert!(out.contains("step 4999"), "the newest lines are kept");
        let missing = logs_text(&JobName::new("bert").unwrap(), Some(&dir.path().join("nope")), 5);
        assert!(missing.contains("cannot read"));
    }
}

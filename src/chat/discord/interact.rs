//! Incoming interactions: the slash commands (`/train …`, `/decide`) with job-name
//! autocomplete, and the decision buttons. A slash command is reduced to the request
//! module's verb and arguments (`request`), a button's custom_id goes to
//! `request::from_button`, so both are validated exactly like a console line; the result
//! is sent to the supervisor as an `Inbound` with the clicking user as `Actor` (personas
//! from their user id and role ids), and the engine's replies are answered ephemerally.
//! Everything here is untrusted input: unknown jobs, malformed ids and missing roles get
//! an answer, not a crash.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serenity::all::{CommandOptionType, CreateCommand, CreateCommandOption};

use crate::chat::request::{self, Args, Request, RequestError, Verb, DECIDE, MAX_LOG_LINES, MAX_TEXT};
use crate::chat::sanitize::{defuse_mentions, untrusted};
use crate::engine::Reply;
use crate::model::{Actor, JobName, Persona};

use super::embed::{cut16, pages, MAX_CONTENT};
use super::DiscordPrincipal;

/// The answer to a request for help.
pub const HELP: &str =
    "commands: /train start|status|kill|restart|logs|list, /decide JOB DECISION [EXTEND], \
/fix submit JOB SUMMARY, /validate approve|reject JOB [REASON]";

/// How much of the log's end is read for `/train logs`.
const TAIL_BYTES: u64 = 64 * 1024;

/// The slash commands, for Discord's bulk overwrite.
pub fn commands() -> Vec<CreateCommand> {
    let job = || {
        CreateCommandOption::new(CommandOptionType::String, "job", "The job")
            .required(true)
            .set_autocomplete(true)
    };
    let text = |name: &str, description: &str, required: bool| {
        CreateCommandOption::new(CommandOptionType::String, name, description)
            .required(required)
            .max_length(MAX_TEXT as u16)
    };
    let sub = |name: &str, description: &str| {
        CreateCommandOption::new(CommandOptionType::SubCommand, name, description).add_sub_option(job())
    };
    let logs = sub("logs", "Show the last lines of a job's log (only to you)").add_sub_option(
        CreateCommandOption::new(
            CommandOptionType::Integer,
            "lines",
            format!("How many lines (default {})", request::DEFAULT_LOG_LINES),
        )
        .min_int_value(1)
        .max_int_value(MAX_LOG_LINES as u64),
    );
    let decision = DECIDE.iter().fold(
        CreateCommandOption::new(CommandOptionType::String, "decision", "What to do").required(true),
        |o, d| o.add_string_choice(d.as_str(), d.as_str()),
    );
    let verdict = |name: &str, description: &str| {
        sub(name, description).add_sub_option(text("reason", "Why (shown in the verdict)", false))
    };
    vec![
        CreateCommand::new("train")
            .description("Run and watch training jobs")
            .set_options(vec![
                sub("start", "Start a new run of a job"),
                sub("status", "Post the job's status now"),
                sub("kill", "Kill the job's process"),
                sub("restart", "Restart the job"),
                logs,
                CreateCommandOption::new(CommandOptionType::SubCommand, "list", "List the jobs"),
            ]),
        CreateCommand::new("decide")
            .description("Decide on a job's open report")
            .set_options(vec![
                job(),
                decision,
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "extend",
                    "For continue after a timeout warning: how long (e.g. 2h)",
                ),
            ]),
        CreateCommand::new("fix")
            .description("Fixes to a job's code")
            .add_option(
                sub(
                    "submit",
                    "A fix is ready: trainwatch computes the CHANGES SUMMARY",
                )
                .add_sub_option(text("summary", "What was fixed, in a few words", true)),
            ),
        CreateCommand::new("validate")
            .description("The validator's verdict on the latest fix")
            .set_options(vec![
                verdict("approve", "Approve the latest fix"),
                verdict("reject", "Reject the latest fix"),
            ]),
    ]
}

/// A slash command reduced to plain values: its name, subcommand and string/int options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    pub name: String,
    pub sub: Option<String>,
    pub options: BTreeMap<String, String>,
}

impl Invocation {
    /// The request this slash command is, validated against the configured jobs.
    pub fn request(&self, jobs: &[JobName]) -> Result<Request, RequestError> {
        let opt = |name: &str| self.options.get(name).map(String::as_str);
        let (verb, decision) = match (self.name.as_str(), self.sub.as_deref()) {
            ("train", Some("list")) => (Verb::List, None),
            ("train", Some("start")) => (Verb::Start, None),
            ("train", Some("status")) => (Verb::Status, None),
            ("train", Some(d @ ("kill" | "restart"))) => (Verb::Decide, Some(d)),
            ("train", Some("logs")) => (Verb::Logs, None),
            ("fix", Some("submit")) => (Verb::FixSubmit, None),
            ("validate", Some("approve")) => (Verb::Validate { approve: true }, None),
            ("validate", Some("reject")) => (Verb::Validate { approve: false }, None),
            ("decide", None) => (Verb::Decide, opt("decision")),
            _ => {
                let name = match &self.sub {
                    Some(sub) => format!("{} {sub}", self.name),
                    None => self.name.clone(),
                };
                return Err(RequestError::UnknownCommand(cut16(&defuse_mentions(&name), 64)));
            }
        };
        let args = Args {
            job: opt("job"),
            decision,
            extend: opt("extend"),
            text: opt("summary").or(opt("reason")),
            lines: opt("lines"),
        };
        request::validate(verb, args, jobs)
    }
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

/// The engine's answers as ephemeral messages: one, or more when they do not fit in one.
pub fn reply_pages(replies: &[Reply]) -> Vec<String> {
    if replies.is_empty() {
        return vec!["nothing to do".into()];
    }
    let text = replies
        .iter()
        .map(|r| format!("{} {}", if r.accepted { "✅" } else { "⛔" }, r.text))
        .collect::<Vec<_>>()
        .join("\n");
    pages(&defuse_mentions(&text), MAX_CONTENT)
}

/// The jobs with their channels, for `/train list`: every job, over as many messages as
/// that takes (a line, and so a channel mention, is never split).
pub fn list_pages(jobs: &[JobName], channel_of: impl Fn(&JobName) -> u64) -> Vec<String> {
    if jobs.is_empty() {
        return vec!["no jobs are configured".into()];
    }
    let lines: Vec<String> = jobs
        .iter()
        .map(|j| format!("• {j} → <#{}>", channel_of(j)))
        .collect();
    pages(&lines.join("\n"), MAX_CONTENT)
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
    // Said when not all of them fit one message: the header names what is shown.
    let header = |shown: usize| {
        if shown == wanted.len() {
            format!("Last {shown} line(s) of the log of {job}:\n")
        } else {
            format!(
                "Last {shown} of the {} line(s) asked for (what fits one message) of the log of {job}:\n",
                wanted.len()
            )
        }
    };
    let room = MAX_CONTENT - super::embed::len16(&header(0)) - 8;
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
    let header = header(wanted.len() - start.min(wanted.len() - 1));
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
    use crate::engine::{Command, Decision};
    use std::time::Duration;

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
        let r = inv("train", Some("restart"), &[("job", "model_3")])
            .request(&jobs())
            .unwrap();
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
        let r = inv(
            "decide",
            None,
            &[("job", "bert"), ("decision", "continue"), ("extend", "2h")],
        )
        .request(&jobs())
        .unwrap();
        assert!(
            matches!(r, Request::Engine { command: Command::Decide { decision: Decision::Continue, extend: Some(d), .. }, .. } if d == Duration::from_secs(7200))
        );
        assert_eq!(
            inv("train", Some("list"), &[]).request(&jobs()),
            Ok(Request::List)
        );
        let r = inv(
            "fix",
            Some("submit"),
            &[("job", "bert"), ("summary", " use fit() not fit_transform() ")],
        )
        .request(&jobs())
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
        let r = inv("validate", Some("reject"), &[("job", "bert")])
            .request(&jobs())
            .unwrap();
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
        let e = inv("train", Some("kill"), &[("job", "@everyone")])
            .request(&jobs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown job") && !e.contains("@everyone"), "{e}");
        assert!(e.contains("model_3, bert"));
        let e = inv("decide", None, &[("job", "bert"), ("decision", "reboot")])
            .request(&jobs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("decision must be"), "{e}");
        let e = inv("decide", None, &[("job", "bert"), ("decision", "approve")])
            .request(&jobs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("decision must be"), "{e}");
        let e = inv("fix", Some("submit"), &[("job", "bert"), ("summary", "  ")])
            .request(&jobs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("summary"), "{e}");
        let e = inv(
            "decide",
            None,
            &[("job", "bert"), ("decision", "kill"), ("extend", "2h")],
        )
        .request(&jobs())
        .unwrap_err()
        .to_string();
        assert!(e.contains("takes no duration"));
        let e = inv("train", Some("logs"), &[("job", "bert"), ("lines", "100000")])
            .request(&jobs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("lines must be"));
        let e = inv("train", Some("reboot @here"), &[])
            .request(&jobs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown command") && !e.contains("@here"), "{e}");
    }

    #[test]
    fn a_slash_command_and_its_console_line_are_the_same_request() {
        let same = |line: &str, slash: Invocation| {
            assert_eq!(
                request::line::parse(line, &jobs()),
                slash.request(&jobs()),
                "{line}"
            );
        };
        same("/kill bert", inv("train", Some("kill"), &[("job", "bert")]));
        same(
            "/decide bert continue 2h",
            inv(
                "decide",
                None,
                &[("job", "bert"), ("decision", "continue"), ("extend", "2h")],
            ),
        );
        same(
            "/fix submit bert  use fit() ",
            inv(
                "fix",
                Some("submit"),
                &[("job", "bert"), ("summary", " use fit() ")],
            ),
        );
        same(
            "/validate reject model_3 too few draws",
            inv(
                "validate",
                Some("reject"),
                &[("job", "model_3"), ("reason", "too few draws")],
            ),
        );
        // Refusals too: the same error, so the same text.
        same(
            "/decide bert kill 2h",
            inv(
                "decide",
                None,
                &[("job", "bert"), ("decision", "kill"), ("extend", "2h")],
            ),
        );
        same(
            "/decide bert approve",
            inv("decide", None, &[("job", "bert"), ("decision", "approve")]),
        );
        same("/start nope", inv("train", Some("start"), &[("job", "nope")]));
        same(
            "/continue bert soon",
            inv(
                "decide",
                None,
                &[("job", "bert"), ("decision", "continue"), ("extend", "soon")],
            ),
        );
    }

    #[test]
    fn every_registered_option_is_one_the_requests_read() {
        let registered = serde_json::to_value(commands()).unwrap();
        let names: Vec<&str> = registered
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["train", "decide", "fix", "validate"]);
        let fix = &registered[2]["options"][0];
        assert_eq!(
            (fix["name"].as_str(), fix["type"].as_u64()),
            (Some("submit"), Some(1))
        );
        assert_eq!(fix["options"][1]["max_length"], MAX_TEXT);
        let choices: Vec<&str> = registered[1]["options"][1]["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["value"].as_str().unwrap())
            .collect();
        assert_eq!(choices, DECIDE.map(|d| d.as_str()));
        // Each subcommand the registration offers is understood.
        for c in registered.as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let subs: Vec<Option<&str>> = match c["options"][0]["type"].as_u64() {
                Some(1) => c["options"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["name"].as_str())
                    .collect(),
                _ => vec![None],
            };
            for sub in subs {
                let r = inv(
                    name,
                    sub,
                    &[("job", "bert"), ("decision", "kill"), ("summary", "s")],
                )
                .request(&jobs());
                assert!(
                    !matches!(r, Err(RequestError::UnknownCommand(_))),
                    "{name} {sub:?}: {r:?}"
                );
            }
        }
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
        // Lines inside the code block: all but the header and the two fences.
        let shown = out.lines().count() - 3;
        assert!(
            out.starts_with(&format!("Last {shown} of the 50 line(s) asked for")),
            "the answer says how many of the lines asked for it shows: {out}"
        );
        let few = logs_text(&JobName::new("bert").unwrap(), Some(&path), 2);
        assert!(few.starts_with("Last 2 line(s) of the log of bert"), "{few}");
        let missing = logs_text(&JobName::new("bert").unwrap(), Some(&dir.path().join("nope")), 5);
        assert!(missing.contains("cannot read"));
    }

    /// `/train list` with 30 jobs of long names: every job with its whole channel mention,
    /// over as many messages as it takes, each within Discord's 2000.
    #[test]
    fn a_long_job_list_is_paged_whole() {
        let jobs: Vec<JobName> = (0..30)
            .map(|i| JobName::new(format!("hierarchical_bayesian_model_variant_long_{i:02}")).unwrap())
            .collect();
        let channel = |j: &JobName| 300_000_000_000_000_000 + j.as_str().len() as u64;
        let pages = list_pages(&jobs, channel);
        assert!(pages.len() > 1, "30 long lines exceed one message");
        for p in &pages {
            assert!(super::super::embed::len16(p) <= MAX_CONTENT);
        }
        let all = pages.join("\n");
        for j in &jobs {
            assert!(all.contains(&format!("• {j} → <#{}>", channel(j))), "{j} missing");
        }
    }

    /// `/train status` whose last log line is 10 KB: the answer is paged, and what follows
    /// the line (the incident counts) and the other jobs' answers still arrive.
    #[test]
    fn a_status_with_a_huge_last_line_is_paged_whole() {
        let reply = |text: String| Reply {
            to: crate::model::Actor::user("1", "@ann", vec![]),
            accepted: true,
            text,
        };
        let huge = format!(
            "m1 run 1: running; last log line 9: {}; 2 incident(s), 1 fatal",
            "y".repeat(10_240)
        );
        let pages = reply_pages(&[
            reply(huge),
            reply("m2 run 1: running; 0 incident(s), 0 fatal".into()),
        ]);
        assert!(pages.len() > 1);
        for p in &pages {
            assert!(super::super::embed::len16(p) <= MAX_CONTENT);
        }
        let all = pages.concat().replace("↪ ", "");
        assert!(all.contains(&format!("{}; 2 incident(s), 1 fatal", "y".repeat(10_240))));
        assert!(pages
            .last()
            .unwrap()
            .contains("m2 run 1: running; 0 incident(s), 0 fatal"));
    }
}

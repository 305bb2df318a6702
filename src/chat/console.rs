//! The console: the embedded default chat. Messages are printed in the protocol's wording
//! (coloured on a terminal); decisions are typed as lines (`/decide model_3 restart`).
//! The local user acts with the personas the config's `[roles]` gives their login name;
//! with no `[roles]` at all, the one person at the terminal holds every persona.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::render::{self, persona_tag};
use super::request::{line, Request};
use super::{ChatSink, Inbound, Outgoing};
use crate::engine::{Body, Command, Decision, Reply};
use crate::model::{Actor, JobName, Persona};

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
struct Style {
    on: bool,
}

impl Style {
    fn paint(self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

/// Prints messages to a writer (stdout in real use).
pub struct Console {
    out: Mutex<Box<dyn Write + Send>>,
    style: Style,
    /// Who holds each persona, shown next to the mention (`@director (alice)`).
    holders: BTreeMap<Persona, String>,
}

impl Console {
    pub fn new(out: Box<dyn Write + Send>, color: bool, holders: BTreeMap<Persona, String>) -> Self {
        Self {
            out: Mutex::new(out),
            style: Style { on: color },
            holders,
        }
    }

    fn mention(&self, p: Persona) -> String {
        match self.holders.get(&p) {
            Some(h) => format!("{} ({h})", persona_tag(p)),
            None => persona_tag(p),
        }
    }

    fn write(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A closed stdout (e.g. `| head`) must not take the supervisor down.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// Print replies to a command.
    pub fn print_replies(&self, replies: &[Reply]) {
        let mut s = String::new();
        for r in replies {
            let mark = if r.accepted {
                self.style.paint("32", "✓")
            } else {
                self.style.paint("31", "✗")
            };
            s.push_str(&format!("{mark} {}\n", r.text));
        }
        self.write(&s);
    }

    pub fn print_line(&self, line: &str) {
        self.write(&format!("{line}\n"));
    }

    fn colour_of(body: &Body) -> &'static str {
        match body {
            Body::ErrorDetected { .. } | Body::Failed { .. } => "1;31",
            Body::WarningNoticed { .. }
            | Body::TimeoutWarning { .. }
            | Body::LimitWarning { .. }
            | Body::ExtendFailed { .. }
            | Body::StallWarning { .. }
            | Body::OverrunWarning { .. }
            | Body::Killed { .. } => "1;33",
            Body::Completed { .. } | Body::TrainingStarted { .. } => "1;32",
            _ => "1;36",
        }
    }

    fn format_post(&self, m: &crate::engine::Message) -> String {
        let r = render::render(m);
        let mut s = String::new();
        let time = m.at.format("%H:%M:%S");
        let to = if m.to.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = m.to.iter().map(|p| self.mention(*p)).collect();
            format!(" → {}", names.join(" "))
        };
        s.push_str(&format!(
            "\n{} {}{}\n",
            self.style.paint("2", &format!("[{time}] @model_trainer")),
            self.style.paint(Self::colour_of(&m.body), &r.title),
            to
        ));
        for l in &r.lines {
            s.push_str(&format!("  {l}\n"));
        }
        for l in &r.excerpt {
            s.push_str(&format!("  {} {l}\n", self.style.paint("2", "┆")));
        }
        if let Some(f) = &r.footer {
            s.push_str(&format!("  {f}\n"));
        }
        if !m.buttons.is_empty() {
            let opts: Vec<String> = m
                .buttons
                .iter()
                .map(|b| match b.decision {
                    Decision::Approve | Decision::Reject => format!("/validate {} {}", b.decision, m.job),
                    d => format!("/decide {} {d}", m.job),
                })
                .collect();
            s.push_str(&format!(
                "  {} {}\n",
                self.style.paint("2", "decide:"),
                opts.join("  |  ")
            ));
        }
        for a in &m.attachments {
            s.push_str(&format!("  Chart: {}\n", a.display()));
        }
        s
    }

    fn format_update(&self, m: &crate::engine::Message) -> Option<String> {
        match &m.body {
            Body::ErrorDetected {
                seq, incident, exit, ..
            } => {
                let mut parts = Vec::new();
                if let Some(e) = exit {
                    parts.push(format!("process {e}"));
                }
                if incident.count > 1 {
                    parts.push(format!("{} occurrences", incident.count));
                }
                parts.push(format!("traceback {} lines", incident.excerpt.len()));
                Some(format!(
                    "  ↳ {} error #{seq} update: {}\n",
                    m.job,
                    parts.join(", ")
                ))
            }
            Body::WarningNoticed { seq, incident, .. } if incident.count > 1 => Some(format!(
                "  ↳ {} warning #{seq}: {} occurrences\n",
                m.job, incident.count
            )),
            _ => None,
        }
    }
}

impl ChatSink for Console {
    fn deliver(&self, out: &Outgoing) {
        let text = match out {
            Outgoing::Post(m) => Some(self.format_post(m)),
            Outgoing::Update(m) => self.format_update(m),
            Outgoing::Resolve { job, key, note, .. } => Some(format!("  ↳ {job} {key}: {note}\n")),
        };
        if let Some(t) = text {
            self.write(&t);
        }
    }
}

/// The login of the person at this terminal, from the process's user id (not from
/// environment variables, which anyone can set).
pub fn local_login() -> String {
    let uid = nix::unistd::Uid::current();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => format!("uid{uid}"),
    }
}

/// The person at the terminal.
pub fn local_actor(personas: Vec<Persona>) -> Actor {
    let user = local_login();
    Actor::user(format!("local:{user}"), format!("@{user}"), personas)
}

/// Read commands from standard input until it closes, sending them to the supervisor.
/// Answers are printed on the console.
pub async fn read_commands(
    console: std::sync::Arc<Console>,
    actor: Actor,
    jobs: Vec<JobName>,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let refuse = |text: String| {
            console.print_replies(&[Reply {
                to: actor.clone(),
                accepted: false,
                text,
            }])
        };
        let targets: Vec<(JobName, Command)> = match line::parse(line, &jobs) {
            Err(e) => {
                refuse(e.to_string());
                continue;
            }
            Ok(Request::Help) => {
                console.print_line(line::HELP);
                continue;
            }
            Ok(Request::StatusAll) => jobs.iter().map(|j| (j.clone(), Command::Status)).collect(),
            Ok(Request::Engine { job, command }) => vec![(job, command)],
            // The console's lines do not spell these; its log is in the job's log file.
            Ok(Request::Logs { .. } | Request::List) => {
                refuse("that is a Discord command".into());
                continue;
            }
        };
        for (job, command) in targets {
            let (tx, rx) = oneshot::channel();
            let msg = Inbound {
                job,
                command,
                by: actor.clone(),
                reply: tx,
            };
            if inbound.send(msg).await.is_err() {
                return;
            }
            if let Ok(replies) = rx.await {
                console.print_replies(&replies);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::engine::{AttemptTime, IncidentSummary, Message, MessageKey, Progress, Resolution};
    use crate::model::ProcessId;
    use crate::model::{Category, RunId};
    use crate::review::{ChangesSummary, FileChange};

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the console prints for a message with this body.
    fn printed(body: Body) -> String {
        let buf = Buffer::default();
        let console = Console::new(Box::new(buf.clone()), false, BTreeMap::new());
        console.deliver(&Outgoing::Post(Message {
            job: JobName::new("model_3").unwrap(),
            run: RunId(1),
            key: MessageKey::Final,
            at: Utc.with_ymd_and_hms(2026, 11, 29, 13, 10, 0).unwrap(),
            to: vec![],
            body,
            buttons: vec![],
            attachments: vec![],
        }));
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// Issue 13 item 4 in the console: messages too large for a chat message are printed
    /// whole, the gate's verdict (score, every row outside tolerance) before its table.
    #[test]
    fn large_messages_are_printed_whole_with_the_verdict_first() {
        use crate::chat::render::large;
        for body in [large::gate(30), large::fix(30), large::completed(42)] {
            let needed = large::must_show(&body);
            assert!(needed.len() >= 30);
            let out = printed(body);
            for n in &needed {
                assert!(out.contains(n.as_str()), "{n:?} not printed:\n{out}");
            }
        }
        let out = printed(large::gate(30));
        let score = out
            .find("Overall score: 33% (10/30 within tolerance) — 20 row(s) NOT within")
            .expect(&out);
        let table = out.find("Parameter ").expect(&out);
        let last_violated = out
            .find(&format!("  {}: actual ", large::row_name(29)))
            .expect(&out);
        assert!(score < last_violated && last_violated < table, "{out}");
    }

    /// Every scheduler message prints, with the scheduler's words as untrusted text.
    #[test]
    fn scheduler_messages_are_printed() {
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 13, 10, 0).unwrap();
        let bodies = crate::chat::render::scheduler_samples(at, "Priority \u{1b}[2J");
        assert_eq!(bodies.len(), 9);
        for body in bodies {
            let title = body.title();
            let out = printed(body);
            assert!(out.contains(title), "{out}");
            assert!(!out.contains("\u{1b}[2J"), "{out:?}");
        }
        let out = printed(crate::chat::render::scheduler_samples(at, "Priority").remove(0));
        assert!(out.contains("Waiting in queue for 14m: Priority"), "{out}");
    }

    #[test]
    fn the_changes_summary_heading_is_printed_once() {
        let out = printed(Body::FixSubmitted {
            seq: 1,
            by: "@bob".into(),
            summary: "smaller batch".into(),
            changes: ChangesSummary {
                files_modified: vec![FileChange {
                    path: "train.py".into(),
                    before: Some("a".into()),
                    after: Some("b".into()),
                    lines: None,
                }],
                params_changed: vec![],
                algorithm_changed: false,
                features_added: vec![],
                features_removed: vec![],
                design_changed: false,
                compliance: "unchanged".into(),
            },
        });
        assert_eq!(out.matches("CHANGES SUMMARY").count(), 1, "{out}");
        assert!(
            out.contains("Fix #1 for model_3, submitted by @bob: smaller batch"),
            "{out}"
        );
        assert!(out.contains("- Files modified: train.py"), "{out}");
    }

    #[test]
    fn errors_encountered_read_error_then_resolution_with_the_fix() {
        let out = printed(Body::Completed {
            total: Duration::from_secs(5 * 3600),
            attempts: 2,
            outputs: vec![],
            log_file: "logs/train.log".into(),
            errors: vec![IncidentSummary {
                seq: 1,
                category: Category::Resource,
                text: "CUDA out of memory".into(),
                line: 39,
                count: 1,
                fatal: true,
                resolution: Some(Resolution {
                    what: "fixed by fix #1 'smaller batch' and restarted".into(),
                    by: Some("@x".into()),
                    at: Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap(),
                }),
            }],
            convergence: None,
        });
        assert!(
            out.contains(
                "1. CUDA out of memory (line 39) [resource] → fixed by fix #1 'smaller batch' and restarted by @x"
            ),
            "{out}"
        );
    }

    #[test]
    fn after_a_restart_elapsed_is_the_runs_with_the_attempts_beside_it() {
        let out = printed(Body::StatusUpdate {
            pid: ProcessId::Local(11),
            log_file: "logs/train.log".into(),
            elapsed: Duration::from_secs(5 * 3600 + 10 * 60),
            attempt: Some(AttemptTime {
                attempt: 2,
                running_for: Duration::from_secs(3600 + 5 * 60),
            }),
            expected: Some(Duration::from_secs(12 * 3600)),
            progress: Progress {
                percent: Some(43.0),
                ..Progress::default()
            },
            last_line: None,
            open: vec![],
        });
        assert!(
            out.contains("Elapsed: 5h 10m / ~12h (43.0% complete) — attempt 2 running for 1h 05m"),
            "{out}"
        );
    }

    /// The error report says why the incident got its category, in one neutralised line; a
    /// stored incident without a reason shows none.
    #[test]
    fn the_error_report_says_why_in_one_neutralised_line() {
        let report = |reason: &str| Body::ErrorDetected {
            seq: 1,
            pid: Some(ProcessId::Local(4242)),
            log_file: "logs/model_3.log".into(),
            incident: crate::model::Incident {
                category: Category::Data,
                severity: crate::model::Severity::Fatal,
                line: 12,
                text: "KeyError: 'price'".into(),
                excerpt: vec![],
                count: 1,
                reason: reason.into(),
            },
            exit: None,
            elapsed: Duration::from_secs(60),
        };
        let out = printed(report(
            "a KeyError raised inside pandas: a column the data lacks (data) @everyone \u{1b}[2J",
        ));
        let why: Vec<&str> = out
            .lines()
            .filter(|l| l.trim_start().starts_with("Why:"))
            .collect();
        assert_eq!(why.len(), 1, "{out}");
        assert!(
            why[0].starts_with("  Why: a KeyError raised inside pandas: a column the data lacks (data)"),
            "{out}"
        );
        assert!(!out.contains("@everyone") && !out.contains('\u{1b}'), "{out:?}");
        let old = printed(report(""));
        assert!(!old.contains("Why:"), "{old}");
    }
}

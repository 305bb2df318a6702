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

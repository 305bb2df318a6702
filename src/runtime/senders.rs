//! Commands from other terminals (`trainwatch send`), arriving on the control socket
//! ([`crate::control`]). Who sent one is what the kernel says about the connection; what they
//! may do is what this supervisor's own config gives their login (`[roles]`), never what the
//! sender's config or request claims. With no `[roles]` at all (single-user use) only the
//! supervisor's own login may act. Each command is carried out once, while its sender waits,
//! for the run under way when it arrives; the sender's answer is bounded by [`ANSWER_WITHIN`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use super::job::JobMsg;
use crate::chat::request::{line, Request};
use crate::chat::Inbound;
use crate::config::{Principal, Roles};
use crate::control::{self, Answer, Peer};
use crate::model::{Actor, JobName, Persona};

/// How long a sender waits for its job's answer before being told it did not come.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);

struct Senders {
    jobs: BTreeMap<JobName, mpsc::Sender<JobMsg>>,
    names: Vec<JobName>,
    roles: Option<Roles>,
    own_login: String,
}

/// Serve the control socket until the returned task is aborted.
pub(super) fn spawn(
    listener: UnixListener,
    jobs: BTreeMap<JobName, mpsc::Sender<JobMsg>>,
    roles: Option<Roles>,
) -> tokio::task::JoinHandle<()> {
    let ctx = Arc::new(Senders {
        names: jobs.keys().cloned().collect(),
        jobs,
        roles,
        own_login: control::login_of(nix::unistd::getuid().as_raw()),
    });
    tokio::spawn(control::serve(
        listener,
        move |peer, req| {
            let ctx = ctx.clone();
            async move { ctx.answer(peer, &req.line).await }
        },
        std::future::pending(),
    ))
}

/// The personas a login holds here.
fn personas_of(roles: Option<&Roles>, login: &str, own_login: &str) -> Vec<Persona> {
    match roles {
        Some(r) if !r.is_empty() => r.personas_of(&[Principal::Local(login.to_string())]),
        _ if login == own_login => Persona::ALL.to_vec(),
        _ => Vec::new(),
    }
}

fn refusal(text: impl Into<String>) -> Vec<Answer> {
    vec![Answer {
        accepted: false,
        text: text.into(),
    }]
}

impl Senders {
    async fn answer(&self, peer: Peer, text: &str) -> Vec<Answer> {
        let personas = personas_of(self.roles.as_ref(), &peer.login, &self.own_login);
        let by = Actor::user(
            format!("local:{}", peer.login),
            format!("@{}", peer.login),
            personas,
        );
        tracing::info!(login = %peer.login, uid = peer.uid, pid = ?peer.pid, "command from another terminal");
        let (job, command) = match line::parse(text, &self.names) {
            Ok(Request::Engine { job, command }) => (job, command),
            Ok(Request::Help) => {
                return vec![Answer {
                    accepted: true,
                    text: line::HELP.to_string(),
                }]
            }
            Ok(Request::StatusAll) => return refusal("name a job: /status JOB"),
            Ok(Request::Logs { .. } | Request::List) => return refusal("that is a Discord command"),
            Err(e) => return refusal(e.to_string()),
        };
        let Some(tx) = self.jobs.get(&job) else {
            return refusal(format!("{job} is not supervised here"));
        };
        let (reply, replies) = oneshot::channel();
        let msg = JobMsg::Inbound(Inbound {
            job: job.clone(),
            command,
            by,
            reply,
        });
        if tx.send(msg).await.is_err() {
            return refusal(format!("{job}'s supervision is shutting down"));
        }
        match tokio::time::timeout(ANSWER_WITHIN, replies).await {
            Ok(Ok(replies)) => replies
                .into_iter()
                .map(|r| Answer {
                    accepted: r.accepted,
                    text: r.text,
                })
                .collect(),
            Ok(Err(_)) => refusal(format!("{job} gave no answer")),
            Err(_) => refusal(format!("{job} did not answer within {ANSWER_WITHIN:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(validator: &str) -> Roles {
        Roles::new(BTreeMap::from([(
            Persona::TimeValidator,
            vec![Principal::Local(validator.to_string())],
        )]))
    }

    #[test]
    fn personas_come_from_the_supervisors_roles_only() {
        let r = roles("alice");
        assert_eq!(
            personas_of(Some(&r), "alice", "root"),
            vec![Persona::TimeValidator]
        );
        // The supervisor's own login gets nothing [roles] does not give it.
        assert!(personas_of(Some(&r), "root", "root").is_empty());
        assert!(personas_of(Some(&r), "mallory", "root").is_empty());
    }

    #[test]
    fn without_roles_only_the_supervisors_own_login_acts() {
        assert_eq!(personas_of(None, "root", "root"), Persona::ALL.to_vec());
        assert!(personas_of(None, "mallory", "root").is_empty());
        let empty = Roles::new(BTreeMap::new());
        assert!(personas_of(Some(&empty), "mallory", "root").is_empty());
    }
}

//! The job task's writes to the store: each engine step goes through the job's
//! [`Writer`], which holds what the store refuses and retries it with backoff; what the
//! writer says about the store (unwritable, replaced, writable again) is shown in the chat.
//! "Unwritable" cannot wait in the outbox (the store it is about holds the outbox), so it is
//! also handed to the adapter to send ahead ([`crate::chat::ChatSink::send_ahead`]). When the task ends
//! with writes held, it keeps trying for [`STOP_RETRY`], then returns what is lost.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::JobRuntime;
use crate::chat::Outgoing;
use crate::engine::{Action, Body, Message, MessageKey, StoreNotice};
use crate::model::RunId;
use crate::store::pending::{Unwritten, Writer};
use crate::store::{JobNow, OutboxItem, StepWrite, Store};

/// How long a job's task keeps trying, as it ends, to write what the store refused.
pub(crate) const STOP_RETRY: Duration = Duration::from_secs(5);

impl JobRuntime {
    /// Write one engine step's facts (its records, its outbox entries) after what is held,
    /// with the engine's state and the log position as they are now.
    pub(super) fn persist_step(&mut self, at: DateTime<Utc>, actions: &[Action], outbox: Vec<OutboxItem>) {
        let records = actions
            .iter()
            .filter_map(|a| match a {
                Action::Record(r) => Some(r.clone()),
                _ => None,
            })
            .collect();
        self.persist(StepWrite { at, records, outbox });
    }

    /// Write a step (after what is held) with the engine's state and the log position as
    /// they are now, and say in the chat what changed about the store.
    fn persist(&mut self, step: StepWrite) {
        let notices = self.with_writer(|writer, sink, now| writer.write(sink, step, now));
        self.tell_store(notices);
    }

    /// Try the held steps again (when due, or now if `force`).
    pub(super) fn retry_store(&mut self, force: bool) {
        let notices = self.with_writer(|writer, sink, now| {
            if force {
                writer.flush_now(sink, now)
            } else {
                writer.retry(sink, now)
            }
        });
        self.tell_store(notices);
    }

    /// The task is ending: write what is held, trying again for at most [`STOP_RETRY`] (a
    /// store that comes back in that time loses nothing); what it still refuses then is
    /// lost with this process, and returned so that it is said.
    pub(super) async fn finish_store(&mut self) -> Option<Unwritten> {
        let until = Instant::now() + STOP_RETRY;
        let mut wait = Duration::from_millis(100);
        loop {
            self.retry_store(true);
            let lost = self.writer.unwritten()?;
            if Instant::now() + wait > until {
                let (steps, records, outbox) = self.writer.held();
                tracing::error!(job = %self.spec.engine.job, steps, records, outbox, "stopping with writes the store never took");
                return Some(lost);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }

    fn with_writer(
        &mut self,
        f: impl FnOnce(&mut Writer, &mut Store, JobNow<'_>) -> Vec<StoreNotice>,
    ) -> Vec<StoreNotice> {
        let follow = serde_json::to_value(self.pipeline.state()).ok();
        let now = JobNow {
            at: Utc::now(),
            state: &self.machine.state,
            follow: follow.as_ref(),
        };
        let notices = {
            let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut self.writer, &mut store, now)
        };
        if self.writer.next_try().is_none() {
            self.follow_saved_at = Instant::now();
            self.follow_dirty = false;
        }
        notices
    }

    /// Show store notices in the chat: directly (console), or through the outbox, held
    /// like any message while the store refuses writes — "unwritable" sent ahead of it too.
    /// What writing them says in turn is told once more at most (a store failing again at
    /// once).
    fn tell_store(&mut self, mut notices: Vec<StoreNotice>) {
        for _ in 0..2 {
            if notices.is_empty() {
                return;
            }
            let mut outbox: Vec<OutboxItem> = Vec::new();
            for notice in notices.drain(..) {
                let ahead = matches!(notice, StoreNotice::Unwritable { .. });
                self.store_said += 1;
                let run = self
                    .machine
                    .state
                    .run
                    .as_ref()
                    .map_or(RunId(self.machine.state.last_run), |r| r.id);
                let out = Outgoing::Post(Message {
                    job: self.spec.engine.job.clone(),
                    run,
                    key: MessageKey::Store(self.store_said),
                    at: Utc::now(),
                    to: Vec::new(),
                    body: Body::Store { notice },
                    buttons: Vec::new(),
                    attachments: Vec::new(),
                });
                match self.chat.to_outbox(&out) {
                    Some(item) => {
                        if ahead {
                            self.chat.send_ahead(&self.spec.engine.job, &item);
                        }
                        outbox.push(item)
                    }
                    None => self.chat.deliver(&out),
                }
            }
            if outbox.is_empty() {
                return;
            }
            let step = StepWrite {
                at: Utc::now(),
                records: Vec::new(),
                outbox,
            };
            notices = self.with_writer(|writer, sink, now| writer.write(sink, step, now));
            self.chat.wake();
        }
    }
}

//! The job task's writes to the store: each engine step goes through the job's
//! [`Writer`], which holds what the store refuses and retries it with backoff; what the
//! writer says about the store (unwritable, replaced, writable again) is shown in the chat.
//! "Unwritable" cannot wait in the outbox (the store it is about holds the outbox), so it is
//! also handed to the adapter to send ahead ([`crate::chat::ChatSink::send_ahead`]).

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::JobRuntime;
use crate::chat::Outgoing;
use crate::engine::{Action, Body, Message, MessageKey, StoreNotice};
use crate::model::RunId;
use crate::store::pending::Writer;
use crate::store::{JobNow, OutboxItem, StepWrite, Store};

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

    /// Try the held steps again (when due, or now if `force`: the task is ending).
    pub(super) fn retry_store(&mut self, force: bool) {
        let notices = self.with_writer(|writer, sink, now| {
            if force {
                writer.flush_now(sink, now)
            } else {
                writer.retry(sink, now)
            }
        });
        self.tell_store(notices);
        let (steps, records, outbox) = self.writer.held();
        if force && steps > 0 {
            tracing::error!(job = %self.spec.engine.job, steps, records, outbox, "stopping with writes the store never took");
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

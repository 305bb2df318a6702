//! Messages sent ahead of the outbox. "Store unwritable" cannot wait in the outbox: the outbox
//! is a table of the store that refuses writes, so queued there the team would read it only
//! once the fault is over. The job's task hands its rendered entry to the adapter
//! (`ChatSink::send_ahead`) and still puts the same entry in the outbox, where its writer
//! holds it, in order, until the store takes writes again.
//!
//! This is a small priority lane in memory: the delivery worker sends what waits here first,
//! each time round, under the same per-channel rate-limit and backoff handling as the outbox.
//! When the worker later reaches the outbox copy it does not post it again: it marks it sent
//! with the message id the early send got ([`Ahead::claim`]). If the outbox copy comes first
//! (Discord was down as well), the early one is withdrawn and the outbox sends it. Both copies
//! carry one nonce, set in the entry's payload when it was rendered, so a crash between the
//! early send and the outbox copy's `mark_sent` still posts once where Discord keeps nonces.
//!
//! Bounded: at most [`MAX_WAITING`] entries wait here (beyond, the oldest leaves the lane —
//! its outbox copy still delivers it, later) and [`MAX_SENT`] early sends are remembered.

use std::collections::VecDeque;

use crate::store::OutboxEntry;

/// Most entries waiting to be sent ahead.
pub const MAX_WAITING: usize = 16;
/// Most early sends remembered until their outbox copy is reached.
pub const MAX_SENT: usize = 64;

/// One entry to send ahead: the outbox entry as it will be stored, its nonce.
#[derive(Debug, Clone, PartialEq)]
pub struct Early {
    pub nonce: String,
    /// As the outbox will hold it (its id is not known yet and not used: the nonce is).
    pub entry: OutboxEntry,
}

/// The lane: what waits to be sent ahead, and what was.
#[derive(Debug, Default)]
pub struct Ahead {
    waiting: VecDeque<Early>,
    /// Nonce and Discord message id of each early send whose outbox copy is not reached yet.
    sent: VecDeque<(String, u64)>,
}

impl Ahead {
    /// Queue an entry to send ahead (once per nonce).
    pub fn push(&mut self, early: Early) {
        if self.waiting.iter().any(|e| e.nonce == early.nonce)
            || self.sent.iter().any(|(n, _)| *n == early.nonce)
        {
            return;
        }
        if self.waiting.len() == MAX_WAITING {
            if let Some(old) = self.waiting.pop_front() {
                tracing::warn!(job = %old.entry.job, key = %old.entry.key, "too many messages to send ahead of the outbox; this one waits for the outbox");
            }
        }
        self.waiting.push_back(early);
    }

    /// What waits, oldest first.
    pub fn waiting(&self) -> Vec<Early> {
        self.waiting.iter().cloned().collect()
    }

    /// The entry with `nonce` was posted as `message`.
    pub fn sent(&mut self, nonce: &str, message: u64) {
        self.waiting.retain(|e| e.nonce != nonce);
        if self.sent.len() == MAX_SENT {
            self.sent.pop_front();
        }
        self.sent.push_back((nonce.to_string(), message));
    }

    /// Discord will not take the entry as it is: leave it to its outbox copy (which has the
    /// plain-text fallback and keeps what Discord said).
    pub fn withdraw(&mut self, nonce: &str) {
        self.waiting.retain(|e| e.nonce != nonce);
    }

    /// The outbox reached the copy of an entry with `nonce`: the message id if it was sent
    /// ahead (the copy is then only marked sent), else None — and it no longer waits here,
    /// the outbox sends it. Either way the lane forgets it.
    pub fn claim(&mut self, nonce: &str) -> Option<u64> {
        self.waiting.retain(|e| e.nonce != nonce);
        let i = self.sent.iter().position(|(n, _)| n == nonce)?;
        self.sent.remove(i).map(|(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn early(n: u32) -> Early {
        Early {
            nonce: format!("n{n}"),
            entry: OutboxEntry {
                id: 0,
                channel: "1".into(),
                job: "m".into(),
                run: 1,
                key: format!("store-{n}"),
                kind: crate::store::OutboxKind::Post,
                payload: serde_json::json!({"op": "post", "body": {}, "nonce": format!("n{n}")}),
                attempts: 0,
            },
        }
    }

    #[test]
    fn an_entry_sent_ahead_is_claimed_once_by_its_outbox_copy() {
        let mut a = Ahead::default();
        a.push(early(1));
        a.push(early(1));
        assert_eq!(a.waiting(), [early(1)], "once per nonce");
        a.sent("n1", 77);
        assert!(a.waiting().is_empty());
        a.push(early(1));
        assert!(a.waiting().is_empty(), "not queued again once sent");
        assert_eq!(a.claim("n1"), Some(77));
        assert_eq!(a.claim("n1"), None, "forgotten once claimed");
    }

    #[test]
    fn an_outbox_copy_reached_first_withdraws_the_early_one() {
        let mut a = Ahead::default();
        a.push(early(1));
        a.push(early(2));
        assert_eq!(a.claim("n1"), None, "not sent ahead: the outbox sends it");
        assert_eq!(a.waiting(), [early(2)]);
        a.withdraw("n2");
        assert!(a.waiting().is_empty());
    }

    #[test]
    fn the_lane_is_bounded_and_drops_only_its_copy() {
        let mut a = Ahead::default();
        for n in 0..(MAX_WAITING as u32 + 3) {
            a.push(early(n));
        }
        let w = a.waiting();
        assert_eq!(w.len(), MAX_WAITING);
        assert_eq!(
            w[0],
            early(3),
            "the oldest left the lane (their outbox copies remain)"
        );
        for n in 0..(MAX_SENT as u64 + 5) {
            a.sent(&format!("s{n}"), n);
        }
        assert_eq!(a.claim("s0"), None);
        assert_eq!(a.claim(&format!("s{}", MAX_SENT + 4)), Some(MAX_SENT as u64 + 4));
    }
}

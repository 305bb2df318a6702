//! A failure the program retried before it gave up: the first attempt is where it began.
//!
//! Clients that retry log each failed attempt (`lease request timed out (attempt 1/3),
//! retrying in 1s`, `feature store: attempt 2/3 failed: <urlopen error …>`) and raise only
//! once they give up. The exception then says the same as those lines, later: a person
//! points at the first attempt, when the service first failed to answer. So the lines
//! that report an attempt are kept (a few, with their numbers), and when a failing run's
//! cause is an exception whose message the latest attempts repeat, one after another right
//! before it, the cause is shown at the first of them. Its category stays the exception's.
//!
//! Only lines holding prefilter literals can be attempts, so the bulk path (which skips the
//! others) and the line-by-line path keep the same ones.

use std::collections::VecDeque;

use super::{classify, cut, prefilter, rules, Detector, Finding, MAX_LINE_CHARS};

/// Attempt lines kept: enough for a few ranks retrying a few times each.
const KEPT: usize = 32;
/// Most lines between one attempt and the next (or the exception) for them to be one
/// series of retries of the same call.
const GAP: u64 = 60;
/// Shortest exception message that can be recognised in an attempt line (shorter ones,
/// like a bare `'id'`, are too common to mean the same failure).
const MIN_MESSAGE: usize = 8;

/// The message of an exception line (`[rank0]: TimeoutError: timed out` → `timed out`), by
/// the detector's own parser of exception lines; None when too short to recognise.
fn message(text: &str) -> Option<&str> {
    let t = match text.strip_prefix("[rank") {
        Some(rest) => rest.split_once("]: ").map_or(text, |(_, t)| t),
        None => text,
    };
    let msg = classify::parse_exception_line(t)?.msg.trim();
    (msg.len() >= MIN_MESSAGE && msg.bytes().any(|b| b.is_ascii_alphabetic())).then_some(msg)
}

impl Detector {
    /// Line `n` (visible text `vis`, which holds literals) reports a failed or retried
    /// attempt: keep it.
    pub(super) fn note_attempt(&mut self, n: u64, vis: &str) {
        // Only a line with an attempt's literal can be one: the others cost no more.
        if self.lits & prefilter::ATTEMPT == 0 || !rules::reports_attempt(vis) {
            return;
        }
        if self.attempts.len() == KEPT {
            self.attempts.pop_front();
        }
        let text = cut(&self.quoted(vis.trim()), MAX_LINE_CHARS);
        self.attempts.push_back((n, text));
    }

    /// Incident `i` is the failing run's cause: when the attempts just before it say its
    /// message, show it at the first of them.
    pub(super) fn at_first_attempt(&mut self, i: usize, out: &mut Vec<Finding>) {
        let inc = &self.incidents[i];
        let Some(msg) = message(&inc.text) else {
            return;
        };
        let mut next = inc.line;
        let mut first = None;
        for (n, text) in self.attempts.iter().rev() {
            if *n >= next {
                continue;
            }
            if next - n > GAP {
                break;
            }
            if text.contains(msg) {
                first = Some((*n, text.clone()));
                next = *n;
            }
        }
        let Some((n, text)) = first else {
            return;
        };
        let inc = &mut self.incidents[i];
        inc.excerpt.insert(0, text.clone());
        inc.line = n;
        inc.text = text;
        self.updated(i, out);
    }
}

/// The attempts a detector keeps.
pub(super) type Attempts = VecDeque<(u64, String)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exception_lines_message_is_after_its_name() {
        assert_eq!(message("[rank0]: TimeoutError: timed out"), Some("timed out"));
        assert_eq!(
            message("urllib.error.URLError: <urlopen error [Errno -2] Name or service not known>"),
            Some("<urlopen error [Errno -2] Name or service not known>")
        );
        // Too short to mean the same failure, or not an exception line.
        assert_eq!(message("KeyError: 'id'"), None);
        assert_eq!(message("epoch 3: loss went up"), None);
    }
}

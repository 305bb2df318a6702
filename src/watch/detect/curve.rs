//! A run that ended well and learnt nothing: every evaluation gave the same score.
//!
//! A model whose predictions never change scores exactly the same at each evaluation — a
//! learning rate decayed to nothing, frozen weights, a classifier configured with one
//! label, a training set of one class — while the run exits 0 and saves it. Healthy runs'
//! scores move, if only in their last digit. So the evaluation metrics of the log's first
//! [`HEAD_LINES`] lines and of its last lines (the tail) are compared at an exit 0 with no
//! other warning: one score repeated at three or more evaluations, its first at the log's
//! start, is a warning. Other metrics stay the tracker's (status updates, charts).
//!
//! The head is read from every line, not only those the prefilter stops at (metric records
//! hold no literal), but only up to [`HEAD_LINES`]: the cost is bounded whatever the log.

use std::borrow::Cow;

use super::{cut, Detector, Finding, MAX_LINE_CHARS};
use crate::model::{Category, Incident, Severity};
use crate::watch::metrics;

/// Lines at the log's start whose evaluation records are kept.
pub(super) const HEAD_LINES: u64 = 2000;
/// Evaluation values kept from the head.
const HEAD_VALUES: usize = 256;
/// Evaluations that must agree for the score to count as never changing.
const SAME_AT_LEAST: usize = 3;

pub(crate) const LEARNT_NOTHING: &str =
    "every evaluation gave the same score: the model's predictions never changed (a learning rate or schedule at nothing, frozen weights, one label configured, one class in the training data) (implementation)";

/// An evaluation score seen: its line, the line's text, the metric's name and value.
#[derive(Debug, Clone)]
pub(super) struct Score {
    line: u64,
    text: String,
    key: String,
    value: f64,
}

/// The evaluation scores of the log's first lines.
#[derive(Debug, Clone, Default)]
pub(super) struct Head {
    scores: Vec<Score>,
}

/// Is `key` an evaluation's score (`eval_accuracy`, `val_acc`, `val/f1`)? Not its size,
/// its time or its step: those stay the same in a healthy run.
fn is_score(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let eval = ["eval", "val", "valid", "test", "dev"]
        .iter()
        .any(|p| k.starts_with(p) && k[p.len()..].starts_with(['_', '/', '-', '.']));
    let score = [
        "acc",
        "loss",
        "f1",
        "auc",
        "precision",
        "recall",
        "mse",
        "mae",
        "rmse",
        "r2",
        "iou",
        "bleu",
        "perplexity",
        "score",
        "map",
    ]
    .iter()
    .any(|w| k.contains(w));
    let bookkeeping = [
        "runtime",
        "per_second",
        "samples",
        "steps",
        "batch",
        "epoch",
        "size",
        "time",
    ]
    .iter()
    .any(|w| k.contains(w));
    eval && score && !bookkeeping
}

/// The scores line `n` reports.
fn scores_of(n: u64, text: &str) -> impl Iterator<Item = Score> + '_ {
    let values = if text.contains("val") || text.contains("test") || text.contains("dev") {
        metrics::line_values(text)
    } else {
        Vec::new()
    };
    values
        .into_iter()
        .filter(|(k, v)| v.is_finite() && is_score(k))
        .map(move |(k, v): (Cow<'_, str>, f64)| Score {
            line: n,
            text: cut(text.trim(), MAX_LINE_CHARS),
            key: k.into_owned(),
            value: v,
        })
}

impl Head {
    /// Line `n` of the log's first [`HEAD_LINES`], as shown (`text`).
    pub(super) fn look(&mut self, n: u64, text: &str) {
        if n > HEAD_LINES || self.scores.len() >= HEAD_VALUES {
            return;
        }
        if self.scores.last().is_some_and(|s| s.line >= n) {
            return;
        }
        self.scores.extend(scores_of(n, text));
        self.scores.truncate(HEAD_VALUES);
    }
}

impl Detector {
    /// At an exit 0 with nothing else to say: a score that was the same at every evaluation
    /// seen, from the log's start, is a warning.
    pub(super) fn learnt_nothing(&mut self, out: &mut Vec<Finding>) {
        if self.incidents.iter().any(|i| i.severity >= Severity::Warning) {
            return;
        }
        let mut scores = self.head.scores.clone();
        let after = scores.last().map_or(0, |s| s.line);
        for (n, l) in self.tail.iter().filter(|(n, _)| *n > after) {
            scores.extend(scores_of(*n, l));
        }
        let Some(first) = scores.first().map(|s| s.line) else {
            return;
        };
        // Each key once, in the order first seen.
        let mut keys: Vec<&str> = Vec::new();
        for s in &scores {
            if !keys.contains(&s.key.as_str()) {
                keys.push(&s.key);
            }
        }
        for key in keys {
            let of_key: Vec<&Score> = scores.iter().filter(|s| s.key == key).collect();
            let same = of_key.iter().all(|s| s.value == of_key[0].value);
            let seen_lines = {
                let mut l: Vec<u64> = of_key.iter().map(|s| s.line).collect();
                l.dedup();
                l.len()
            };
            // A perfect or null score can be stable for good reasons (a separable toy set).
            let trivial = of_key[0].value == 0.0 || of_key[0].value == 1.0;
            if same && !trivial && seen_lines >= SAME_AT_LEAST && of_key[0].line == first {
                let s = of_key[0];
                let inc = Incident {
                    category: Category::Implementation,
                    severity: Severity::Warning,
                    line: s.line,
                    text: s.text.clone(),
                    excerpt: of_key.iter().map(|s| s.text.clone()).take(4).collect(),
                    count: 1,
                    reason: LEARNT_NOTHING.to_string(),
                };
                self.push_forced(inc, Severity::Warning, out);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_an_evaluations_metrics_not_its_bookkeeping() {
        assert!(is_score("eval_accuracy"));
        assert!(is_score("val_acc"));
        assert!(is_score("val/f1"));
        assert!(!is_score("eval_runtime"));
        assert!(!is_score("eval_samples_per_second"));
        assert!(!is_score("train_loss"));
        assert!(!is_score("value_acc"));
        assert!(!is_score("val_batch_size"));
    }
}

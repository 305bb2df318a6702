//! A loss that was never finite. A training record with a NaN loss usually means the
//! optimisation diverged (convergence) — but an optimisation cannot diverge before it has
//! taken a step: when the run's very first logging window is already non-finite on every
//! step, the forward pass met NaN or inf in the input or the targets (data).
//!
//! Only records that say where they are can show that: the Trainer's `{'loss': …,
//! 'epoch': …}`. Finite records never reach the detector (the prefilter skips them), so the
//! first window is recognised from the non-finite records alone: the first one's epoch is
//! the logging interval, the distance to the second (records come every `logging_steps`).
//!
//! Likewise an evaluation loss that is NaN while no training record ever was: a diverged
//! optimisation makes the training loss non-finite too, so what is NaN is the evaluation
//! data's (labels all masked, an empty split). That is known only at the end of the log.

use super::{Detector, Finding};
use crate::model::Category;
use crate::watch::metrics;

pub(crate) const EVAL_ONLY_NAN: &str =
    "only the evaluation's loss was NaN, never the training's: the evaluation data (its labels all masked or missing, an empty split) (data)";

pub(crate) const NAN_FROM_START: &str =
    "the loss was NaN or infinite from the run's first logged step, before any update could diverge: NaN or inf in the input or the targets (data)";

/// The first non-finite training record of the run, until the second one places it.
#[derive(Debug, Clone, Copy)]
pub(super) struct NanStart {
    /// The incident it belongs to.
    idx: usize,
    epoch: f64,
    /// Every step of its window was non-finite: its loss is NaN or inf, or was filtered to 0
    /// (`logging_nan_inf_filter`) beside a non-finite gradient norm.
    every_step: bool,
    placed: bool,
}

/// A training record's epoch, and whether every step of its window was non-finite. None
/// for other lines (an evaluation record has `eval_loss`, not `loss`).
fn training_record(t: &str) -> Option<(f64, bool)> {
    let values = metrics::dict_values(t);
    let get = |key: &str| values.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    let (loss, epoch) = (get("loss")?, get("epoch")?);
    if !(epoch.is_finite() && epoch > 0.0) {
        return None;
    }
    let grad_bad = get("grad_norm").is_some_and(|g| !g.is_finite());
    Some((epoch, !loss.is_finite() || (loss == 0.0 && grad_bad)))
}

/// An evaluation record with a non-finite value (`{'eval_loss': 'nan', …}`) and no
/// training loss.
fn eval_record(t: &str) -> bool {
    let values = metrics::dict_values(t);
    !values.iter().any(|(k, _)| k == "loss")
        && values
            .iter()
            .any(|(k, v)| k.starts_with("eval_") && !v.is_finite())
}

/// What the run's non-finite evidence has been so far: evaluation records only (the first
/// one's incident), or something else too.
#[derive(Debug, Clone, Copy)]
pub(super) enum NanSeen {
    EvalOnly { idx: usize },
    Other,
}

impl Detector {
    /// A non-finite record joined incident `idx`: when it places the run's first
    /// non-finite record in the first logging window, that incident is the data's.
    pub(super) fn nan_record(&mut self, idx: usize, t: &str, out: &mut Vec<Finding>) {
        if self.incidents[idx].category != Category::Convergence {
            return;
        }
        self.nan_seen = match (self.nan_seen, eval_record(t)) {
            (None, true) => Some(NanSeen::EvalOnly { idx }),
            (seen @ Some(NanSeen::EvalOnly { .. }), true) => seen,
            _ => Some(NanSeen::Other),
        };
        let Some((epoch, every_step)) = training_record(t) else {
            return;
        };
        let Some(first) = self.nan_start else {
            self.nan_start = Some(NanStart {
                idx,
                epoch,
                every_step,
                placed: false,
            });
            return;
        };
        if first.placed || epoch <= first.epoch {
            return;
        }
        self.nan_start = Some(NanStart {
            placed: true,
            ..first
        });
        let interval = epoch - first.epoch;
        // The epoch is printed rounded (four significant digits).
        let in_first_window = (first.epoch - interval).abs() <= 1e-3 + 0.01 * first.epoch;
        if first.every_step && in_first_window {
            let inc = &mut self.incidents[first.idx];
            inc.category = Category::Data;
            inc.reason = NAN_FROM_START.to_string();
            self.updated(first.idx, out);
        }
    }
}

impl Detector {
    /// At the end of the log: when every non-finite record was an evaluation's, that
    /// incident is the evaluation data's.
    pub(super) fn settle_eval_nan(&mut self, out: &mut Vec<Finding>) {
        let Some(NanSeen::EvalOnly { idx }) = self.nan_seen else {
            return;
        };
        let inc = &mut self.incidents[idx];
        if inc.category == Category::Convergence {
            inc.category = Category::Data;
            inc.reason = EVAL_ONLY_NAN.to_string();
            self.updated(idx, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_says_its_epoch_and_whether_every_step_was_non_finite() {
        let r = |t| training_record(t);
        assert_eq!(
            r("{'loss': '0', 'grad_norm': 'nan', 'learning_rate': '0.008', 'epoch': '0.5'}"),
            Some((0.5, true))
        );
        assert_eq!(r("{'loss': nan, 'epoch': 1.0}"), Some((1.0, true)));
        // Some steps of the window were finite: the loss was, once.
        assert_eq!(
            r("{'loss': '0.864', 'grad_norm': 'nan', 'epoch': '0.3333'}"),
            Some((0.3333, false))
        );
        assert_eq!(r("{'eval_loss': 'nan', 'epoch': '1'}"), None);
        assert_eq!(r("step 3 loss=nan"), None);
        assert!(eval_record(
            "{'eval_loss': 'nan', 'eval_runtime': '0.051', 'epoch': '1'}"
        ));
        assert!(!eval_record("{'loss': 'nan', 'eval_loss': 'nan', 'epoch': '1'}"));
        assert!(!eval_record("{'eval_loss': '0.5', 'epoch': '1'}"));
    }
}

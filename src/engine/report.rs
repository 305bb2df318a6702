//! What a report that awaits a decision carries: the key it is posted (and later edited)
//! under, and the buttons beneath it. Shared by every area that posts such a report.

use super::message::{Button, Decision, DecisionPoint, MessageKey};
use super::text;

/// Restart / Kill / Continue / Investigate under a report.
pub(super) fn decision_buttons(point: DecisionPoint) -> Vec<Button> {
    buttons(point, &text::DECISION_BUTTONS)
}

/// Buttons for one report, from (decision, label) pairs.
pub(super) fn buttons(point: DecisionPoint, labels: &[(Decision, &str)]) -> Vec<Button> {
    labels
        .iter()
        .map(|&(decision, label)| Button {
            decision,
            point,
            label: label.into(),
        })
        .collect()
}

pub(super) fn point_key(point: DecisionPoint) -> MessageKey {
    match point {
        DecisionPoint::Incident(seq) => MessageKey::Incident(seq),
        DecisionPoint::Timeout(n) => MessageKey::Timeout(n),
        DecisionPoint::Fix(n) => MessageKey::Gate(n),
        DecisionPoint::Stall(n) => MessageKey::Stall(n),
    }
}

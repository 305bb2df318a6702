//! The supervisor's word on its store: unwritable (and retrying), deleted or replaced,
//! writable again. Not the protocol's messages: they say whether what the team sees is kept.

use super::*;
use crate::engine::StoreNotice;

/// Lines and footer of a store notice.
pub(super) fn render(m: &Message) -> Parts {
    let Body::Store { notice } = &m.body else {
        unreachable!("render() routes only store notices here")
    };
    let mut lines = Vec::new();
    let footer = match notice {
        StoreNotice::Unwritable {
            path: p,
            why,
            retry_in,
        } => {
            lines.push(format!("store unwritable: {}; retrying", line(why)));
            lines.push(format!("Store: {}", path(p)));
            lines.push(format!(
                "The job is still watched; what it records is held in memory and written once the store takes writes again (next try in {}).",
                format_duration(*retry_in)
            ));
            Some("Free space on the store's file system, or make it writable again.".to_string())
        }
        StoreNotice::Replaced { path: p } => {
            lines.push(format!(
                "the store {} was deleted or replaced while in use",
                path(p)
            ));
            lines.push(
                "A new store was created there, with the job's state and what was not yet written; the history written before is not in it."
                    .to_string(),
            );
            None
        }
        StoreNotice::Recovered {
            path: p,
            after,
            steps,
            dropped,
        } => {
            lines.push(format!(
                "store writable again after {}: {steps} held step(s) written",
                format_duration(*after)
            ));
            lines.push(format!("Store: {}", path(p)));
            if *dropped > 0 {
                lines.push(format!(
                    "{dropped} history row(s) beyond the memory bound were dropped (no chat message was)."
                ));
            }
            None
        }
    };
    Parts {
        lines,
        excerpt: Vec::new(),
        footer,
    }
}

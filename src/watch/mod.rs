//! Watching a job's log: detectors ([`detect`]) that classify what the log shows, and the
//! post-mortem [`triage`] of a finished log built on the same detectors.

pub mod detect;
pub mod triage;

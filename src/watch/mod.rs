//! Watching a job's log: [`follower`] reads the log incrementally as it grows (bounded
//! memory, rotation/truncation-proof, resumable); detectors and metrics build on its lines.

pub mod follower;

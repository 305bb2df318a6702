//! Watching a job's log: following it, and reading what it says.
//!
//! - [`follower`]: reads the log incrementally as it grows (bounded memory,
//!   rotation/truncation-proof, resumable);
//! - [`metrics`]: metric values, step/total, rate, MCMC convergence and loss health, parsed
//!   from the log lines, with bounded series for charts;
//! - [`progress`]: percent complete, ETA, projected overrun and stall/slow detection.

pub mod follower;
pub mod metrics;
pub mod progress;

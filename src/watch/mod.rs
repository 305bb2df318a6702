//! Watching a job's log: following it, and reading what it says.
//!
//! - [`metrics`]: metric values, step/total, rate, MCMC convergence and loss health, parsed
//!   from the log lines, with bounded series for charts;
//! - [`progress`]: percent complete, ETA, projected overrun and stall/slow detection.

pub mod metrics;
pub mod progress;

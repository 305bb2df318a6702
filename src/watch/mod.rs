//! Watching a job's log: following it, and reading what it says.
//!
//! - [`follower`]: reads the log incrementally as it grows (bounded memory,
//!   rotation/truncation-proof, resumable);
//! - [`detect`]: detectors that classify what the log shows (tracebacks, native crashes,
//!   sampler and solver diagnostics), incrementally, with bursts folded;
//! - [`triage`]: the post-mortem of a finished log, built on the same detectors;
//! - [`metrics`]: metric values, step/total, rate, MCMC convergence and loss health, parsed
//!   from the log lines, with bounded series for charts;
//! - [`metric_lines`]: the byte-level prefilter that spares ordinary lines the metric regexes;
//! - [`progress`]: percent complete, ETA, projected overrun and stall/slow detection;
//! - [`pipeline`]: one job's log pipeline — all of the above, driven by the runtime, bytes
//!   in and engine events out, with the one allocator of incident keys.

pub mod detect;
pub mod follower;
pub mod metric_lines;
pub mod metrics;
pub mod pipeline;
pub mod progress;
pub mod triage;

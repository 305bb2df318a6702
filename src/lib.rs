//! trainwatch: a supervisor for long training jobs that runs the Watch Mode Protocol.
//!
//! The shape is a pure core with adapters at its edges (see the README):
//! - [`engine`]: the protocol as a per-job state machine — events in, actions out, no I/O;
//! - [`watch`]: following a job's log and detecting incidents and metrics in it;
//! - [`chart`]: PNG charts of metrics for status updates and reports;
//! - [`exec`]: running a job (own process group, held by a shim so it survives us);
//! - [`review`]: the evidence a Phase 4.5 review reads — design expectations, snapshots, changes;
//! - [`chat`]: where messages go and decisions come from (console, Discord);
//! - [`store`]: SQLite — runs, incidents, decisions, the outbox;
//! - [`runtime`]: the supervisor that wires one engine per job to the edges.

pub mod chart;
pub mod chat;
pub mod cli;
pub mod config;
pub mod control;
pub mod demo;
pub mod engine;
pub mod exec;
pub mod model;
pub mod redact;
pub mod review;
pub mod runtime;
pub mod store;
pub mod watch;

//! The engine: the Watch Mode Protocol as a pure state machine per job. Events come in
//! with their time (log incidents, process exits, ticks, commands and who sent them);
//! actions come out (post, update, spawn, kill, record). No I/O happens here, so every
//! protocol rule is a deterministic unit test and a 24-hour run simulates in milliseconds.

mod clock;
mod decisions;
mod endings;
mod event;
mod gate;
mod incidents;
mod machine;
mod message;
mod process;
mod state;
#[cfg(test)]
mod tests;
mod text;

pub use event::{Action, Command, Event, FixEvidence, Input, Record};
pub use incidents::exit_incident;
pub use machine::{JobMachine, JobSettings};
pub use message::{
    AttemptTime, Body, Button, ConvergenceView, Decision, DecisionPoint, IncidentSummary, Message,
    MessageKey, OutputFile, ProgressView, Reply, Resolution, StallKind,
};
pub use state::{Decided, IncidentEntry, JobState, Phase, RunState, StallEpisode};

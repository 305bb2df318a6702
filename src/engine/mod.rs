//! The engine: the Watch Mode Protocol as a pure state machine per job. Events come in
//! with their time (log incidents, process exits, ticks, commands and who sent them);
//! actions come out (post, update, spawn, kill, record). No I/O happens here, so every
//! protocol rule is a deterministic unit test and a 24-hour run simulates in milliseconds.

mod event;
mod machine;
mod message;
mod query;
#[cfg(test)]
mod tests;

pub use event::{Action, Command, Event, FixEvidence, Input, Record};
pub use machine::{
    exit_incident, Decided, IncidentEntry, JobMachine, JobSettings, JobState, Phase, RunState, StallEpisode,
};
pub use message::{
    Body, Button, Convergence, Decision, DecisionPoint, IncidentSummary, Message, MessageKey, OutputFile,
    Progress, Reply, Resolution, StallKind,
};
pub use query::UnderWay;

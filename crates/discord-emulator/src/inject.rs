//! Interactions a test injects as a user would make them (slash commands with their
//! options, button clicks), and the handle that finds the bot's answer to one.

use serde_json::{json, Value};

/// An interaction the emulator dispatched; use it to read or wait for the bot's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedInteraction {
    /// Interaction id.
    pub id: u64,
    /// Interaction token.
    pub token: String,
    /// Channel it happened in.
    pub channel_id: u64,
}

/// A slash-command option as a user fills it in.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOpt(pub(crate) Value);

impl CommandOpt {
    pub(crate) fn value(name: &str, kind: u8, value: Value) -> Self {
        Self(json!({"name": name, "type": kind, "value": value}))
    }
    /// A string option (type 3).
    pub fn string(name: &str, v: &str) -> Self {
        Self::value(name, 3, json!(v))
    }
    /// An integer option (type 4).
    pub fn integer(name: &str, v: i64) -> Self {
        Self::value(name, 4, json!(v))
    }
    /// A boolean option (type 5).
    pub fn boolean(name: &str, v: bool) -> Self {
        Self::value(name, 5, json!(v))
    }
    /// A number option (type 10).
    pub fn number(name: &str, v: f64) -> Self {
        Self::value(name, 10, json!(v))
    }
    /// A subcommand (type 1) with its options.
    pub fn subcommand(name: &str, options: Vec<CommandOpt>) -> Self {
        Self(
            json!({"name": name, "type": 1, "options": options.into_iter().map(|o| o.0).collect::<Vec<_>>()}),
        )
    }
    /// A subcommand group (type 2) containing subcommands.
    pub fn group(name: &str, subcommands: Vec<CommandOpt>) -> Self {
        Self(
            json!({"name": name, "type": 2, "options": subcommands.into_iter().map(|o| o.0).collect::<Vec<_>>()}),
        )
    }
    /// The string option being typed during autocomplete (`focused: true`).
    pub fn focused_string(name: &str, partial: &str) -> Self {
        let mut o = Self::string(name, partial);
        o.0["focused"] = json!(true);
        o
    }
    /// The raw option JSON.
    pub fn as_json(&self) -> &Value {
        &self.0
    }
}

//! Requests from people: console lines, Discord slash commands and button ids.

pub mod button;
pub mod line;

pub use line::{extend_of, parse, TextCommand, HELP};

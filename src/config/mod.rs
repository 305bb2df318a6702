//! Configuration: jobs, roles and chat settings read from a TOML file, validated into
//! typed values. A bad config is reported with the file, the line and the key.

mod duration;

pub use duration::{format_duration, parse_duration, parse_duration_arg};

//! Helpers for the tests that play a second OS login (`nobody`) sending commands with
//! `trainwatch send`: who the test runs as, a send as some uid, and what a command printed.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

/// The uid of the system's `nobody`, the second login.
pub const NOBODY: u32 = 65534;

/// The login the test runs as.
pub fn me() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `trainwatch send` with `words`, as `as_uid` when given (needs root).
pub fn send(bin: &Path, cfg: &Path, words: &str, as_uid: Option<u32>) -> Output {
    let mut c = Command::new(bin);
    c.args(["send", "--wait", "20s", "--config", cfg.to_str().unwrap(), "--"]);
    c.args(words.split(' '));
    if let Some(uid) = as_uid {
        c.uid(uid).gid(uid);
    }
    c.output().unwrap()
}

/// What a command printed, stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

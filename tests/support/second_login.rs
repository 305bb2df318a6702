//! Helpers for the tests that play a second OS login (`nobody`) sending commands with
//! `trainwatch send`: who the test runs as, a send as some uid, and what a command printed.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

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
    busy_retry(|| c.output())
}

/// Run `f` (an exec of a binary this test just copied) again while it fails with ETXTBSY (26):
/// a child another test thread forked while the copy's file was still open for writing
/// holds that descriptor until its own exec, a moment later. Bounded: 100 tries, 2 s.
pub fn busy_retry<T>(mut f: impl FnMut() -> io::Result<T>) -> T {
    for _ in 0..100 {
        match f() {
            Err(e) if e.raw_os_error() == Some(26) => std::thread::sleep(Duration::from_millis(20)),
            r => return r.unwrap(),
        }
    }
    f().unwrap()
}

/// `c.spawn()`, again while the copied binary is busy ([`busy_retry`]).
#[allow(dead_code)] // not every test that includes this module spawns
pub fn spawn(c: &mut Command) -> Child {
    busy_retry(|| c.spawn())
}

/// What a command printed, stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

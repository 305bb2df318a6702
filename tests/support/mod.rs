//! Helpers shared by the tests that drive the `trainwatch` binary: reading a child's
//! output line by line, waiting (bounded) for a line to appear, and for a child to exit.
// Each test binary includes this module and uses a part of it.
#![allow(dead_code)]

pub mod slurm;
pub mod tmpfs;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `trainwatch ARGS` started in `dir` (stdin piped to type console commands, or null), its
/// stdout read line by line into the channel returned, its stderr dropped.
pub fn spawn_trainwatch(
    dir: &std::path::Path,
    args: &[&str],
    stdin: std::process::Stdio,
) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trainwatch"))
        .args(args)
        .current_dir(dir)
        .stdin(stdin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    (child, rx)
}

/// Read stdout lines of a child into a channel.
pub fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, limit: Duration, seen: &mut Vec<String>) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return;
            }
        }
    }
    panic!("{needle:?} not seen within {limit:?}; saw:\n{}", seen.join("\n"));
}

/// Wait (bounded) for a child to exit; its status. `what` names it in the failure.
pub fn exit_within(child: &mut std::process::Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

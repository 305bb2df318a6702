//! `trainwatch send` as a hostile local user would use it (issue 11, class 8): the sender's
//! identity comes from the kernel and its roles from the supervisor's own config, so pointing
//! `send --config` at a file that names yourself director changes nothing; with no supervisor
//! running a command fails at once and is never carried out later (no stale `/kill`); and the
//! socket is closed to other logins unless the state folder is opened to them.
//! The second login is the system's `nobody` user, so those parts need root (as in CI); without
//! root they are skipped with a printed reason.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");
#[path = "support/second_login.rs"]
mod second_login;
mod support;
use second_login::{me, send, text, NOBODY};

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    support::wait_for(rx, needle, Duration::from_secs(30), seen)
}

struct Setup {
    _dir: tempfile::TempDir,
    d: PathBuf,
    bin: PathBuf,
    cfg: PathBuf,
}

/// A job that runs until the test lets it finish; the supervisor's config gives `nobody` no
/// role at all.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    // A copy of the binary every login can run (the build folder may not be readable by others).
    let bin = d.join("trainwatch");
    std::fs::copy(BIN, &bin).unwrap();
    let me = me();
    let cfg = d.join("tw.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
path = "state/state.db"
[roles]
director = ["{me}"]
[jobs.m]
argv = ["sh", "-c", "echo started; while [ ! -e go ]; do sleep 0.05; done; echo finished"]
status_interval = "1h"
"#
        ),
    )
    .unwrap();
    chmod(&d, 0o755);
    chmod(&cfg, 0o644);
    Setup {
        _dir: dir,
        d,
        bin,
        cfg,
    }
}

fn supervise(s: &Setup) -> (Child, mpsc::Receiver<String>) {
    let mut tw = second_login::spawn(
        Command::new(&s.bin)
            .args([
                "run",
                "--attended",
                "--color",
                "never",
                "--config",
                s.cfg.to_str().unwrap(),
            ])
            .current_dir(&s.d)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let rx = support::lines_of(&mut tw);
    (tw, rx)
}

fn finish(s: &Setup, mut tw: Child, rx: &mpsc::Receiver<String>, seen: &mut Vec<String>) {
    std::fs::write(s.d.join("go"), "").unwrap();
    wait_for(rx, "Training Complete", seen);
    support::exit_within(&mut tw, Duration::from_secs(20), "trainwatch");
}

/// A `/kill` sent while no supervisor runs fails at once; the next supervisor never carries it
/// out (the stale-kill replay of the hostile trial).
#[test]
fn a_command_sent_while_nobody_supervises_fails_at_once_and_is_never_replayed() {
    let s = setup();
    let started = Instant::now();
    let o = send(&s.bin, &s.cfg, "/kill m", None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no trainwatch is supervising"), "{}", text(&o));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "send waited instead of failing"
    );

    let (tw, rx) = supervise(&s);
    let mut seen = Vec::new();
    wait_for(&rx, "Training started with PID", &mut seen);
    // Well past the old inbox's pick-up interval: the job must still be running.
    std::thread::sleep(Duration::from_secs(3));
    let o = send(&s.bin, &s.cfg, "/status m", None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!seen.iter().any(|l| l.contains("Killed")), "{}", seen.join("\n"));
    finish(&s, tw, &rx, &mut seen);
}

/// A login with no role points `send --config` at its own file, which names it director: the
/// supervisor still refuses, and the audit log names who really asked.
#[test]
fn a_senders_own_config_gives_it_no_role() {
    if !is_root() {
        eprintln!("not root: the second login (uid {NOBODY}) cannot be played; skipped");
        return;
    }
    let s = setup();
    let (tw, rx) = supervise(&s);
    let mut seen = Vec::new();
    wait_for(&rx, "Training started with PID", &mut seen);

    // Closed to other logins by default: nobody may not even connect.
    let o = send(&s.bin, &s.cfg, "/kill m", Some(NOBODY));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("permission denied"), "{}", text(&o));

    // The team opens the state folder to nobody; nobody brings its own config claiming director.
    let runs = s.d.join("state/runs");
    chmod(&s.d.join("state"), 0o777);
    chmod(&runs, 0o777);
    chmod(&runs.join("control.sock"), 0o777);
    let forged = s.d.join("forged.toml");
    std::fs::write(
        &forged,
        "[store]\npath = \"state/state.db\"\n[roles]\ndirector = [\"nobody\"]\n[jobs.m]\nargv = [\"true\"]\n",
    )
    .unwrap();
    chmod(&forged, 0o644);
    let o = send(&s.bin, &forged, "/kill m", Some(NOBODY));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains('✗'), "{}", text(&o));
    assert!(!seen.iter().any(|l| l.contains("Killed")), "{}", seen.join("\n"));

    finish(&s, tw, &rx, &mut seen);
    let audit = second_login::busy_retry(|| {
        Command::new(&s.bin)
            .args(["audit", "--config", s.cfg.to_str().unwrap()])
            .current_dir(&s.d)
            .output()
    });
    let audit = text(&audit);
    assert!(audit.contains("by @nobody (local:nobody) REFUSED"), "{audit}");
}

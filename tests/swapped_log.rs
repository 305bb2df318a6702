//! The log path is not trusted (issue 11, class 5): while a job runs, someone who can write
//! its output folder replaces the log with a symbolic link to a private file. trainwatch must
//! never read that file (nothing of it in any report), must say once that the log was swapped,
//! and must go on following the file the job really writes, so the job's own error is still
//! reported.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");

#[test]
fn a_log_swapped_for_a_symlink_is_reported_never_read_and_the_jobs_file_still_followed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("private.txt"), "PRIVATE-CONTENT root:$6$hash\n").unwrap();
    std::fs::write(
        d.join("tw.toml"),
        r#"
[store]
path = "state/state.db"
[jobs.m]
argv = ["sh", "-c", "echo 'step 1 of the run'; while [ ! -e swapped ]; do sleep 0.05; done; echo 'Traceback (most recent call last):'; echo '  File \"train.py\", line 9, in <module>'; echo \"KeyError: 'label'\"; exit 1"]
status_interval = "1h"
on_error = "wait"
"#,
    )
    .unwrap();
    let (mut tw, rx) = support::spawn_trainwatch(
        d,
        &["run", "--unattended", "--color", "never", "--config", "tw.toml"],
        Stdio::null(),
    );
    let mut seen = Vec::new();
    support::wait_for(
        &rx,
        "Training started with PID",
        Duration::from_secs(20),
        &mut seen,
    );

    // Swap the log for a link to the private file; the job keeps writing to the file it opened.
    let log = d.join("output/implementation/logs/training_m_full.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("step 1")
    {
        assert!(Instant::now() < deadline, "the job never wrote its first line");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(d.join("private.txt"), &log).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(d.join("swapped"), "").unwrap();

    support::wait_for(&rx, "Training Failed", Duration::from_secs(30), &mut seen);
    support::exit_within(&mut tw, Duration::from_secs(20), "trainwatch");
    while let Ok(l) = rx.try_recv() {
        seen.push(l);
    }
    let out = seen.join("\n");
    assert!(
        !out.contains("PRIVATE-CONTENT"),
        "the private file was read:\n{out}"
    );
    assert!(
        out.contains("KeyError: 'label'"),
        "the job's own error was lost:\n{out}"
    );
    assert!(
        out.contains("was replaced by a symbolic link"),
        "the swap was not reported:\n{out}"
    );
    // Said once: one warning report (the failure report then lists it among the errors).
    let reports = out
        .lines()
        .filter(|l| l.contains("Warning: the log path"))
        .count();
    assert_eq!(reports, 1, "{out}");
}

/// While trainwatch is down, the log is deleted and another regular file put at its path (no
/// link: `O_NOFOLLOW` cannot catch it; a new inode looks like a rotation). At re-adoption the
/// job is found not to hold that file open: it is reported as a swap and never read, and the
/// file the job does write — now without a name — is followed through the job's descriptor,
/// so its error is still reported.
#[test]
fn a_log_replaced_by_another_regular_file_while_trainwatch_is_down_is_a_swap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("tw.toml"),
        r#"
[store]
path = "state/state.db"
[jobs.m]
argv = ["sh", "-c", "echo 'step 1 of the run'; echo 'ConvergenceWarning: lbfgs failed to converge (status=1)'; i=0; while [ ! -e swapped ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; echo 'Traceback (most recent call last):'; echo '  File \"train.py\", line 9, in <module>'; echo \"KeyError: 'label'\"; exit 1"]
status_interval = "1h"
on_error = "wait"
"#,
    )
    .unwrap();
    let supervise = || {
        Command::new(BIN)
            .args(["run", "--unattended", "--color", "never", "--config", "tw.toml"])
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = supervise();
    let rx = support::lines_of(&mut first);
    let mut seen = Vec::new();
    // The warning is committed with the log's position and identity.
    support::wait_for(&rx, "Warning noticed", Duration::from_secs(20), &mut seen);
    first.kill().unwrap();
    first.wait().unwrap();

    let log = d.join("output/implementation/logs/training_m_full.log");
    std::fs::remove_file(&log).unwrap();
    std::fs::write(&log, "PRIVATE-CONTENT planted\nKeyError: 'planted'\n").unwrap();

    let mut second = supervise();
    let rx = support::lines_of(&mut second);
    let mut seen = Vec::new();
    support::wait_for(&rx, "was replaced by", Duration::from_secs(20), &mut seen);
    std::fs::write(d.join("swapped"), "").unwrap();
    support::wait_for(&rx, "Training Failed", Duration::from_secs(30), &mut seen);
    support::exit_within(&mut second, Duration::from_secs(20), "trainwatch");
    while let Ok(l) = rx.try_recv() {
        seen.push(l);
    }
    let out = seen.join("\n");
    assert!(
        !out.contains("PRIVATE-CONTENT") && !out.contains("planted"),
        "the planted file was read:\n{out}"
    );
    assert!(
        out.contains("KeyError: 'label'"),
        "the job's own error was lost:\n{out}"
    );
    let reports = out
        .lines()
        .filter(|l| l.contains("Warning: the log path"))
        .count();
    assert_eq!(reports, 1, "{out}");
}

//! The Phase 4.5 gate end to end at the console: a job fails, a fix that changes a design
//! parameter is submitted from another terminal (`trainwatch send`), restart is refused
//! until a *different* login with the validator role approves, then training resumes and
//! completes; the audit log shows it all with the hashes the approval bound to.
//! The second login is the system's `nobody` user, so this part needs root (as in CI).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");
#[path = "support/second_login.rs"]
mod second_login;
mod support;
use second_login::{me, send, text, NOBODY};

fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    support::wait_for(rx, needle, Duration::from_secs(30), seen)
}

fn chmod_all(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            chmod_all(&e.path(), mode);
        }
    }
}

#[test]
fn design_change_is_gated_until_another_login_approves() {
    let root = unsafe { libc::geteuid() } == 0;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A copy of the binary every login can run (the build folder may not be readable by others).
    let bin: PathBuf = d.join("trainwatch");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::write(d.join("params.toml"), "draws = 2000\nchains = 4\n").unwrap();
    std::fs::write(
        d.join("train.sh"),
        "echo \"sampling with $(cat params.toml | tr '\\n' ' ')\"\n\
         if [ ! -e fixed ]; then\n\
           echo 'Traceback (most recent call last):'\n\
           echo '  File \"model_m.py\", line 12, in <module>'\n\
           echo 'ValueError: Input contains NaN'\n\
           exit 1\n\
         fi\n\
         echo 'sampling done'\n",
    )
    .unwrap();
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
code_translator = ["{me}"]
time_validator = ["{me}", "nobody"]
[jobs.m]
argv = ["sh", "train.sh"]
status_interval = "1h"
[[jobs.m.design]]
name = "draws"
expected = 2000
tolerance = "±10%"
from = {{ file = "params.toml", key = "draws" }}
[[jobs.m.design]]
name = "chains"
expected = 4
from = {{ file = "params.toml", key = "chains" }}
"#
        ),
    )
    .unwrap();

    let mut tw = second_login::spawn(
        Command::new(&bin)
            .args([
                "run",
                "--attended",
                "--color",
                "never",
                "--config",
                cfg.to_str().unwrap(),
            ])
            .current_dir(d)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let out = tw.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    wait_for(&rx, "ERROR DETECTED", &mut seen);

    // The fix: fewer draws (a design parameter), and the bug itself.
    std::fs::write(d.join("params.toml"), "draws = 1000\nchains = 4\n").unwrap();
    std::fs::write(d.join("fixed"), "").unwrap();
    let o = send(&bin, &cfg, "/fix submit m halve the draws to dodge the NaN", None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("changes design parameters (draws)"),
        "{}",
        text(&o)
    );
    wait_for(&rx, "RE-VALIDATION REQUIRED", &mut seen);
    wait_for(&rx, "Overall score: 50%", &mut seen);
    let all = seen.join("\n");
    assert!(
        all.contains("draws") && all.contains("2000") && all.contains("1000"),
        "{all}"
    );

    // Nobody may resume before validation: not even the director.
    let o = send(&bin, &cfg, "/decide m restart", None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("until @time_validator approves"),
        "{}",
        text(&o)
    );
    // Four eyes: the submitter holds the validator role too, and still may not approve.
    let o = send(&bin, &cfg, "/validate approve m", None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("four eyes"), "{}", text(&o));

    if root {
        // A second login (the validator) approves from their own terminal.
        chmod_all(&d.join("state"), 0o777);
        chmod_all(&cfg, 0o644);
        let o = send(
            &bin,
            &cfg,
            "/validate approve m draws within the sampler budget",
            Some(NOBODY),
        );
        assert!(o.status.success(), "{}", text(&o));
        wait_for(&rx, "Fix APPROVED", &mut seen);
        let o = send(&bin, &cfg, "/decide m restart", None);
        assert!(o.status.success(), "{}", text(&o));
        wait_for(&rx, "Restarting training", &mut seen);
        wait_for(&rx, "Training Complete", &mut seen);
        let status = tw.wait().unwrap();
        assert_eq!(status.code(), Some(0));
        let audit = second_login::busy_retry(|| {
            Command::new(&bin)
                .args(["audit", "--config", cfg.to_str().unwrap()])
                .output()
        });
        let audit = String::from_utf8_lossy(&audit.stdout).to_string();
        assert!(audit.contains("fix_submit by @"), "{audit}");
        assert!(
            audit.contains("restart by @") && audit.contains("REFUSED"),
            "{audit}"
        );
        assert!(
            audit.contains("approve by @nobody (local:nobody) accepted"),
            "{audit}"
        );
        assert!(
            audit.contains("params.toml="),
            "the approval names the hashes it bound to: {audit}"
        );
    } else {
        eprintln!("not root: the approval by a second login (uid {NOBODY}) is not exercised");
        let _ = tw.kill();
        let _ = tw.wait();
    }
}

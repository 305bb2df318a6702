//! No escape sequence from untrusted text reaches a terminal (issue 11, class 7): a real job
//! prints clear-screen, an OSC window title, an OSC 52 clipboard write, CSI sequences, C1
//! controls (as UTF-8 and as raw bytes), bidi overrides, BEL, DEL, backspace and a bare `\r`,
//! in plain lines and inside its error; a config carries them in its values. Not one of those
//! bytes may appear in what `run`'s console, `send`'s answer, `status` (text and JSON),
//! `audit`, `triage` (text and JSON) and `check-config` print, on stdout or stderr — colour
//! comes only from trainwatch itself, and here it is turned off.
//!
//! Also here: a `\r` left inside an exception line by a progress bar does not hide the error.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");
const BOUND: Duration = Duration::from_secs(30);

#[path = "support/second_login.rs"]
#[allow(dead_code)] // the second login itself (NOBODY) is not played here
mod second_login;
mod support;

/// The hostile lines, as `printf` formats (octal escapes for every byte that matters).
const HOSTILE: &str = r#"printf 'step 1 \033[2J\033[H cleared\n'
printf 'title \033]0;pwned-title\007 osc\n'
printf 'clip \033]52;c;cHduZWQ=\033\\ osc52\n'
printf 'csi \033[31mred\033[0m \033[6n query \033P1$r q\033\\ dcs\n'
printf 'c1 \302\233 31m and raw \233 byte \302\235 osc\n'
printf 'bidi \342\200\256 reversed \342\201\246 isolate\n'
printf 'bell \007 del \177 bs \010 cr \r overwritten\n'
printf 'Traceback (most recent call last):\n'
printf '  File "train.py", line 3, in <module>\n'
printf 'ValueError: bad \033]52;c;ZXZpbA==\007 value \033[2J \342\200\256 end\n'
printf 'last \033]0;again\007 line\n'
"#;

/// Every byte sequence that could drive a terminal: ESC, BEL, BS, DEL, CR, the C1 controls
/// (U+0080–U+009F) and the bidi overrides and isolates.
fn assert_inert(surface: &str, text: &str) {
    for (i, c) in text.char_indices() {
        let bad = matches!(c, '\u{1b}' | '\u{07}' | '\u{08}' | '\u{7f}' | '\r')
            || ('\u{80}'..='\u{9f}').contains(&c)
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
            || (c.is_control() && c != '\n' && c != '\t');
        assert!(
            !bad,
            "{surface} prints {c:?} at byte {i}:\n{}",
            text.escape_debug()
        );
    }
}

/// stdout and stderr, each checked, read lossily (a raw C1 byte shows as U+FFFD, harmless;
/// the UTF-8 form of a C1 control would stay one).
fn run(args: &[&str], dir: &Path) -> (String, String) {
    let o = Command::new(BIN).args(args).current_dir(dir).output().unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn check(surface: &str, (out, err): &(String, String)) {
    assert_inert(&format!("{surface} (stdout)"), out);
    assert_inert(&format!("{surface} (stderr)"), err);
}

#[test]
fn no_escape_sequence_from_a_log_reaches_any_terminal_surface() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("job.sh"),
        format!(
            "{HOSTILE}i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\nexit 1\n"
        ),
    )
    .unwrap();
    let me = second_login::me();
    let cfg = d.join("tw.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\npath = \"state/state.db\"\n[roles]\ndirector = [\"{me}\"]\n[jobs.m]\nargv = [\"sh\", \"job.sh\"]\nstatus_interval = \"1h\"\non_error = \"wait\"\n"
        ),
    )
    .unwrap();

    let stderr = std::fs::File::create(d.join("run.stderr")).unwrap();
    let mut tw = Command::new(BIN)
        .args(["run", "--attended", "--color", "never", "--config", "tw.toml"])
        .current_dir(d)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let rx = support::lines_of(&mut tw);
    let mut seen = Vec::new();
    support::wait_for(&rx, "ERROR DETECTED", BOUND, &mut seen);
    support::wait_for(&rx, "ValueError", BOUND, &mut seen);

    // `send`'s answer quotes the log (the last line, the open incident).
    let answer = second_login::send(BIN.as_ref(), &cfg, "/status m", None);
    assert!(answer.status.success(), "{}", second_login::text(&answer));
    let answer = (
        String::from_utf8_lossy(&answer.stdout).into_owned(),
        String::from_utf8_lossy(&answer.stderr).into_owned(),
    );
    assert!(
        answer.0.contains("last") || answer.0.contains("line"),
        "{answer:?}"
    );
    check("send's answer", &answer);

    let mut stdin = tw.stdin.take().unwrap();
    writeln!(stdin, "/kill m").unwrap();
    support::wait_for(&rx, "Training Killed", BOUND, &mut seen);
    drop(stdin);
    support::exit_within(&mut tw, BOUND, "trainwatch run");
    while let Ok(l) = rx.try_recv() {
        seen.push(l);
    }
    let console = seen.join("\n");
    assert!(console.contains("ValueError: bad"), "{console}");
    assert_inert("run's console (stdout)", &console);
    assert_inert(
        "run's console (stderr)",
        &String::from_utf8_lossy(&std::fs::read(d.join("run.stderr")).unwrap()),
    );

    let status = run(&["status", "--config", "tw.toml"], d);
    assert!(status.0.contains("ValueError"), "{status:?}");
    check("status", &status);
    check(
        "status --json",
        &run(&["status", "--json", "--config", "tw.toml"], d),
    );
    check("audit", &run(&["audit", "--config", "tw.toml"], d));
    let log = "output/implementation/logs/training_m_full.log";
    let triage = run(&["triage", log, "--exit-code", "1"], d);
    assert!(triage.0.contains("ValueError"), "{triage:?}");
    check("triage", &triage);
    check(
        "triage --json",
        &run(&["triage", log, "--exit-code", "1", "--json"], d),
    );
}

/// `check-config` echoes the config's values (and names them in its errors): escapes written
/// into a config file are shown inert too.
#[test]
fn check_config_shows_escapes_in_config_values_inert() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let esc = r"\u001b]52;c;cHduZWQ=\u0007\u001b[2J\u009b31m\u202e";
    std::fs::write(
        d.join("tw.toml"),
        format!(
            "[store]\npath = \"state/state.db\"\n[jobs.m]\nargv = [\"sh\", \"-c\", \"echo {esc}\"]\nlog = \"logs/{esc}.log\"\nwatch = [\"{esc}*.py\"]\n"
        ),
    )
    .unwrap();
    let shown = run(&["check-config", "tw.toml"], d);
    assert!(shown.0.contains("jobs") || shown.0.contains('m'), "{shown:?}");
    check("check-config", &shown);

    // And in an error message that quotes the bad value.
    std::fs::write(
        d.join("bad.toml"),
        format!("[store]\npath = \"state/state.db\"\n[jobs.m]\nargv = [\"true\"]\non_error = \"{esc}\"\n"),
    )
    .unwrap();
    let bad = run(&["check-config", "bad.toml"], d);
    assert!(!bad.1.is_empty(), "an error is reported: {bad:?}");
    check("check-config's error", &bad);
    check("run's config error", &run(&["run", "--config", "bad.toml"], d));
}

/// A progress bar's leftover before an exception on the same line (`\r` then the error, as
/// a redrawn terminal shows it) hides nothing: the error is reported, with its own text.
#[test]
fn a_carriage_return_inside_an_exception_line_does_not_hide_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("job.sh"),
        r#"printf 'epoch 1:  40%%|####      | 4/10\r'
printf 'epoch 1:  50%%|#####     | 5/10\rTraceback (most recent call last):\n'
printf '  File "train.py", line 9, in <module>\n'
printf 'epoch 1:  60%%|######    | 6/10\rKeyError: '"'"'learning_rate'"'"'\n'
exit 1
"#,
    )
    .unwrap();
    let (out, err) = run(
        &[
            "run",
            "--unattended",
            "--color",
            "never",
            "--store",
            "s/state.db",
            "--",
            "sh",
            "job.sh",
        ],
        d,
    );
    assert!(out.contains("ERROR DETECTED"), "{out}\n{err}");
    assert!(
        out.contains("KeyError: 'learning_rate'"),
        "the error line is shown: {out}"
    );
    // Explained by the exception, not filed as an exit the log does not explain.
    assert!(!out.contains("log states no error"), "{out}");
    assert_inert("run's console", &out);
}

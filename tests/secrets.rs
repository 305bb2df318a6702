//! Secrets never reach a surface (issue 11, class 6): a job prints credentials of several
//! kinds — an env-style key, a private key over several lines, a URL with a password, a
//! GitHub token, a JWT — and is started with a token on its command line. Nothing of them
//! may appear in the console, in `trainwatch status` (text and JSON), in `trainwatch audit`,
//! in `trainwatch triage` (text and JSON), nor anywhere in the store's files on disk, which
//! shows that redaction happens before anything is stored.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");

const SECRETS: &[&str] = &[
    "wandbsecret123456",
    "fakekeyfakekey",
    "hunter2pw",
    "ghp_0123456789abcdefghij",
    "argvsecret999",
    "dozjgNryP4J3jVmNHl0w5N",
];

const JOB: &str = r#"echo "starting with WANDB_API_KEY=wandbsecret123456"
echo "auth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
echo "Traceback (most recent call last):"
echo '  File "train.py", line 3, in <module>'
echo "    key = load('-----BEGIN RSA PRIVATE KEY-----')"
echo "MIIEpAIBAAKCAQEA7bq8fakekeyfakekeyFAKEKEY0123456789abcdefABCDEF"
echo "-----END RSA PRIVATE KEY-----"
echo "ValueError: bad credentials for https://alice:hunter2pw@hub.example.com token=ghp_0123456789abcdefghijABCDEFGHIJ"
exit 1
"#;

fn run(args: &[&str], dir: &Path) -> String {
    let o = Command::new(BIN).args(args).current_dir(dir).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_clean(surface: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{surface} shows the secret {s:?}:\n{text}");
    }
}

#[test]
fn no_secret_reaches_the_console_status_audit_triage_or_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("job.sh"), JOB).unwrap();
    std::fs::write(
        d.join("tw.toml"),
        r#"
[store]
path = "state/state.db"
[jobs.m]
argv = ["sh", "job.sh", "--token", "argvsecret999"]
status_interval = "1h"
on_error = "wait"
"#,
    )
    .unwrap();

    let console = run(
        &["run", "--unattended", "--color", "never", "--config", "tw.toml"],
        d,
    );
    assert!(console.contains("ERROR DETECTED"), "{console}");
    assert!(
        console.contains("[REDACTED]"),
        "the report still says where a secret was: {console}"
    );
    assert_clean("the console", &console);

    for (surface, args) in [
        ("status", vec!["status", "--config", "tw.toml"]),
        ("status --json", vec!["status", "--json", "--config", "tw.toml"]),
        ("audit", vec!["audit", "--config", "tw.toml"]),
    ] {
        let out = run(&args, d);
        assert_clean(surface, &out);
    }
    let status = run(&["status", "--config", "tw.toml"], d);
    assert!(status.contains("incident 1"), "{status}");

    let log = "output/implementation/logs/training_m_full.log";
    let raw = std::fs::read_to_string(d.join(log)).unwrap();
    assert!(raw.contains("hunter2pw"), "the job's own log is the job's: {raw}");
    for (surface, args) in [
        ("triage", vec!["triage", log, "--exit-code", "1"]),
        ("triage --json", vec!["triage", log, "--exit-code", "1", "--json"]),
    ] {
        let out = run(&args, d);
        assert!(out.contains("ValueError"), "{surface}: {out}");
        assert_clean(surface, &out);
    }

    // Every file of the store (the database and its journal), byte for byte.
    let mut files = 0;
    for e in std::fs::read_dir(d.join("state")).unwrap().flatten() {
        if e.path().is_file() {
            files += 1;
            let bytes = std::fs::read(e.path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert_clean(&format!("the store file {}", e.path().display()), &text);
        }
    }
    assert!(files >= 1);
}

/// A job's own `redact` patterns (and those of `[defaults]`) hide what the built-in rules do
/// not know, on every surface and in the store, through a real run; `check-config` shows them.
#[test]
fn a_jobs_own_redact_patterns_hide_its_secrets_everywhere() {
    const OWN: &[&str] = &["ACME-482913", "ACME-118822", "ACME-777001", "corp-zebra-key"];
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("job.sh"),
        r#"echo "licence ACME-482913 loaded"
echo "vault corp-zebra-key opened"
echo "Traceback (most recent call last):"
echo '  File "train.py", line 3, in <module>'
echo "ValueError: licence ACME-118822 expired"
exit 1
"#,
    )
    .unwrap();
    std::fs::write(
        d.join("tw.toml"),
        r#"
[store]
path = "state/state.db"
[defaults]
redact = ['corp-[a-z]+-key']
[jobs.m]
argv = ["sh", "job.sh", "ACME-777001"]
status_interval = "1h"
on_error = "wait"
redact = ['ACME-\d{6}']
"#,
    )
    .unwrap();
    let clean = |surface: &str, text: &str| {
        for s in OWN {
            assert!(
                !text.contains(s),
                "{surface} shows the job's secret {s:?}:\n{text}"
            );
        }
    };

    let shown = run(&["check-config", "tw.toml"], d);
    assert!(
        shown.contains(r"ACME-\\d{6}") && shown.contains("corp-[a-z]+-key"),
        "{shown}"
    );

    let console = run(
        &["run", "--unattended", "--color", "never", "--config", "tw.toml"],
        d,
    );
    assert!(console.contains("ERROR DETECTED"), "{console}");
    assert!(console.contains("licence [REDACTED] expired"), "{console}");
    clean("the console", &console);
    for (surface, args) in [
        ("status", vec!["status", "--config", "tw.toml"]),
        ("status --json", vec!["status", "--json", "--config", "tw.toml"]),
        ("audit", vec!["audit", "--config", "tw.toml"]),
    ] {
        clean(surface, &run(&args, d));
    }
    let log = "output/implementation/logs/training_m_full.log";
    let triage = run(&["triage", log, "--exit-code", "1", "--redact", r"ACME-\d{6}"], d);
    assert!(triage.contains("ValueError"), "{triage}");
    assert!(!triage.contains("ACME-118822"), "{triage}");
    for e in std::fs::read_dir(d.join("state")).unwrap().flatten() {
        if e.path().is_file() {
            let bytes = std::fs::read(e.path()).unwrap();
            clean(
                &format!("the store file {}", e.path().display()),
                &String::from_utf8_lossy(&bytes),
            );
        }
    }
}

/// A bad `redact` regex is a config error naming the file, the line and the key, as for every
/// other value.
#[test]
fn a_bad_redact_pattern_is_a_config_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("tw.toml"),
        "[store]\npath = \"state/state.db\"\n[jobs.m]\nargv = [\"true\"]\nredact = [\"ok\", \"(unclosed\"]\n",
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["check-config", "tw.toml"])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tw.toml:5:") && err.contains("jobs.m.redact"),
        "{err}"
    );
    assert!(err.contains("invalid regex"), "{err}");
    let o = Command::new(BIN)
        .args(["run", "--config", "tw.toml"])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "run refuses it alike");
}

/// The Discord surface: the same job supervised by `trainwatch serve` against the local
/// Discord emulator, which records every request the bot makes. No secret (nor the job's own
/// `redact` pattern's match) is in any message body, embed, edit, command answer or uploaded
/// file the emulator received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_discord() {
    use discord_emulator::{CommandOpt, EmuUser, Emulator, EmulatorConfig};
    const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAx.emulated.token-for-secret-tests";
    const CH: u64 = 300_000_000_000_000_001;
    const DIRECTOR_ROLE: u64 = 400_000_000_000_000_001;
    const WAIT: std::time::Duration = std::time::Duration::from_secs(30);
    const OWN: &str = "ACME-424242";

    let emu = Emulator::start(EmulatorConfig {
        channels: vec![(CH, "training".into())],
        roles: vec![(DIRECTOR_ROLE, "director".into())],
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("job.sh"), format!("echo 'licence {OWN} loaded'\n{JOB}")).unwrap();
    std::fs::write(
        d.join("tw.toml"),
        format!(
            r#"
[store]
path = "state/state.db"
[roles]
director = ["role:{DIRECTOR_ROLE}"]
[discord]
token_env = "TW_SECRETS_DISCORD_TOKEN"
guild_id = "{guild}"
channel = "{CH}"
proxy_url = "{proxy}"
[jobs.m]
argv = ["sh", "job.sh", "--token", "argvsecret999"]
status_interval = "1h"
on_error = "wait"
redact = ['ACME-\d{{6}}']
"#,
            guild = emu.config().guild_id,
            proxy = emu.proxy_url(),
        ),
    )
    .unwrap();

    struct Serve(std::process::Child);
    impl Drop for Serve {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _serve = Serve(
        Command::new(BIN)
            .args(["serve", "--config", "tw.toml"])
            .current_dir(d)
            .env("TW_SECRETS_DISCORD_TOKEN", TOKEN)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(d.join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let commands = format!(
        "/applications/{}/guilds/{}/commands",
        emu.config().application_id,
        emu.config().guild_id
    );
    emu.wait_for(
        |r| r.iter().any(|q| q.method == "PUT" && q.path == commands),
        WAIT,
    )
    .await
    .expect("the bot registered its commands");

    let director = EmuUser::new(600_000_000_000_000_001, "ann").with_roles([DIRECTOR_ROLE]);
    let train = |sub: &str| {
        emu.slash_command(
            CH,
            &director,
            "train",
            vec![CommandOpt::subcommand(sub, vec![CommandOpt::string("job", "m")])],
        )
        .unwrap()
    };
    let title = |m: &serde_json::Value| m["embeds"][0]["title"].as_str().unwrap_or("").to_string();
    train("start");
    let report = emu
        .wait_message(CH, |m| title(m).contains("ERROR DETECTED"), WAIT)
        .await
        .expect("an error report");
    assert!(report.to_string().contains("[REDACTED]"), "{report}");
    // The status answer quotes the last log line and the open incident.
    let status = train("status");
    let token = status.token.clone();
    emu.wait_for(
        |r| r.iter().any(|q| q.method == "PATCH" && q.path.contains(&token)),
        WAIT,
    )
    .await
    .expect("an answer to /train status");

    let requests = emu.requests();
    assert!(requests.len() > 3, "{requests:?}");
    for q in &requests {
        let mut body = q.body.json().map(|v| v.to_string()).unwrap_or_default();
        for f in q.body.files() {
            body.push_str(&String::from_utf8_lossy(&f.data));
        }
        if let discord_emulator::RequestBody::Other(bytes) = &q.body {
            body.push_str(&String::from_utf8_lossy(bytes));
        }
        for s in SECRETS.iter().chain([&OWN]) {
            assert!(
                !body.contains(s),
                "{} {} sent the secret {s:?} to Discord: {body}",
                q.method,
                q.path
            );
        }
    }
}

//! The set-up the `trainwatch serve` end-to-end tests share: the Discord emulator playing
//! Discord and the team (its users, roles and channel), a config pointing serve at it, a
//! running serve killed by PID (with every job it started) when dropped, and bounded waits
//! for what reaches the channel.
// Each test binary includes this module and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use discord_emulator::{CommandOpt, EmuUser, Emulator, EmulatorConfig, InjectedInteraction};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");
pub const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAx.emulated.token-for-serve-tests";
pub const WAIT: Duration = Duration::from_secs(30);
pub const CH: u64 = 300_000_000_000_000_001;
pub const DIRECTOR_ROLE: u64 = 400_000_000_000_000_001;
pub const TRANSLATOR_ROLE: u64 = 400_000_000_000_000_002;
pub const MODELER_ROLE: u64 = 400_000_000_000_000_003;
pub const DIRECTOR: u64 = 600_000_000_000_000_001;
pub const TRANSLATOR: u64 = 600_000_000_000_000_002;
pub const VALIDATOR: u64 = 600_000_000_000_000_003;
pub const OUTSIDER: u64 = 600_000_000_000_000_004;

pub fn director() -> EmuUser {
    EmuUser::new(DIRECTOR, "ann").with_roles([DIRECTOR_ROLE])
}
pub fn translator() -> EmuUser {
    EmuUser::new(TRANSLATOR, "bob").with_roles([TRANSLATOR_ROLE])
}
pub fn validator() -> EmuUser {
    EmuUser::new(VALIDATOR, "val")
}
pub fn outsider() -> EmuUser {
    EmuUser::new(OUTSIDER, "eve")
}

/// How the bot reaches the emulator.
#[derive(Clone, Copy, PartialEq)]
pub enum Via {
    /// `proxy_url`: REST goes straight to the emulator (serenity's rate limiter off).
    Proxy,
    /// `https_proxy` + `ca_cert`: CONNECT through the emulator, TLS with its test CA.
    HttpsProxy,
}

pub async fn emulator(via: Via) -> Emulator {
    Emulator::start(EmulatorConfig {
        channels: vec![(CH, "training".into())],
        roles: vec![
            (DIRECTOR_ROLE, "director".into()),
            (TRANSLATOR_ROLE, "code-translator".into()),
            (MODELER_ROLE, "modeler".into()),
        ],
        token: Some(TOKEN.into()),
        https_proxy: via == Via::HttpsProxy,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A config with the team's roles, the emulator as Discord, and `jobs` (TOML) appended.
/// `status_mode`: "new" (a message per status update) or "edit" (one, edited in place).
pub fn write_config(
    dir: &Path,
    emu: &Emulator,
    via: Via,
    status_mode: &str,
    extra_roles: &str,
    jobs: &str,
) -> PathBuf {
    let connection = match via {
        Via::Proxy => format!("proxy_url = \"{}\"", emu.proxy_url()),
        Via::HttpsProxy => {
            let ca = dir.join("emulator-ca.pem");
            std::fs::write(&ca, emu.ca_cert_pem().unwrap()).unwrap();
            format!(
                "https_proxy = \"{}\"\nca_cert = \"{}\"",
                emu.https_proxy_url(),
                ca.display()
            )
        }
    };
    let cfg = dir.join("tw.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
path = "state/state.db"

[roles]
director = ["role:{DIRECTOR_ROLE}"]
code_translator = ["role:{TRANSLATOR_ROLE}"]
{extra_roles}

[discord]
token_env = "TW_E2E_DISCORD_TOKEN"
guild_id = "{guild}"
channel = "{CH}"
status_mode = "{status_mode}"
{connection}

{jobs}
"#,
            guild = emu.config().guild_id,
        ),
    )
    .unwrap();
    cfg
}

/// A running `trainwatch serve`; killed (with every job PID the test learned) on drop.
pub struct Serve {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub cfg: PathBuf,
    /// Job PIDs seen in the channel: each is its job's process group.
    pub job_pids: Vec<i32>,
    pub starts: usize,
}

impl Serve {
    pub fn start(dir: &Path, cfg: &Path) -> Serve {
        let mut s = Serve {
            child: None,
            dir: dir.to_path_buf(),
            cfg: cfg.to_path_buf(),
            job_pids: Vec::new(),
            starts: 0,
        };
        s.spawn();
        s
    }

    pub fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(format!("serve-{}.log", self.starts))).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config", self.cfg.to_str().unwrap()])
            .current_dir(&self.dir)
            .env("TW_E2E_DISCORD_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: the bot dies without any chance to clean up.
    pub fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, as systemd would stop it; bounded, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            for _ in 0..100 {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn watch_pid(&mut self, pid: i32) {
        if pid > 1 && !self.job_pids.contains(&pid) {
            self.job_pids.push(pid);
        }
    }

    /// What serve wrote to stderr, for failure messages.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| std::fs::read_to_string(self.dir.join(format!("serve-{i}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restarted ---\n")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("trainwatch serve logs:\n{}", self.logs());
        }
        self.kill_hard();
        for &pid in &self.job_pids {
            // Only the process groups of jobs this test's serve started.
            unsafe { libc::killpg(pid, libc::SIGKILL) };
        }
    }
}

pub fn alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 }
}

pub fn title(m: &Value) -> &str {
    m["embeds"][0]["title"].as_str().unwrap_or("")
}

pub fn description(m: &Value) -> &str {
    m["embeds"][0]["description"].as_str().unwrap_or("")
}

/// The bot's reports (messages with an embed), oldest first.
pub fn reports(emu: &Emulator) -> Vec<Value> {
    emu.public_messages(CH)
        .into_iter()
        .filter(|m| m["embeds"].as_array().is_some_and(|e| !e.is_empty()))
        .collect()
}

pub fn count_titled(emu: &Emulator, needle: &str) -> usize {
    reports(emu).iter().filter(|m| title(m).contains(needle)).count()
}

pub async fn report(emu: &Emulator, serve: &Serve, needle: &str) -> Value {
    report_where(emu, serve, needle, |_| true).await
}

pub async fn report_where(
    emu: &Emulator,
    serve: &Serve,
    needle: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    match emu
        .wait_message(CH, |m| title(m).contains(needle) && pred(m), WAIT)
        .await
    {
        Ok(m) => m,
        Err(e) => panic!(
            "{e}: no {needle:?} report; the channel has {:?}\nserve logs:\n{}\nrequests Discord refused: {:#?}",
            reports(emu).iter().map(title).collect::<Vec<_>>(),
            serve.logs(),
            emu.requests().iter().filter(|q| q.status >= 300).map(|q| (q.method.clone(), q.path.clone(), q.status, q.body.json().cloned())).collect::<Vec<_>>()
        ),
    }
}

/// The number after `prefix` in `text` (e.g. a PID).
pub fn number_after(text: &str, prefix: &str) -> i32 {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} not in {text:?}"))
        + prefix.len();
    text[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {prefix:?} in {text:?}"))
}

/// The bodies the bot POSTed (successfully) to create reports titled with `needle`:
/// what Discord was asked, including `allowed_mentions`, which a stored message lacks.
/// Waits for the first one (a request is recorded once it has been answered).
pub async fn post_bodies(emu: &Emulator, needle: &str) -> Vec<Value> {
    let path = format!("/channels/{CH}/messages");
    let of = |reqs: &[discord_emulator::RecordedRequest]| -> Vec<Value> {
        reqs.iter()
            .filter(|q| q.method == "POST" && q.path == path && q.status == 200)
            .filter_map(|q| q.body.json().cloned())
            .filter(|b| title(b).contains(needle))
            .collect()
    };
    let reqs = emu.wait_for(|r| !of(r).is_empty(), WAIT).await.unwrap();
    of(&reqs)
}

/// The posts of the outbox as the engine queued them, in protocol order: (title,
/// description). Read from the store's SQLite file once serve has stopped (the store has
/// no public listing of delivered entries).
pub fn outbox_posts(dir: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open_with_flags(
        dir.join("state/state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = db
        .prepare("SELECT payload FROM outbox WHERE kind = 'post' ORDER BY id")
        .unwrap();
    let payloads: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    payloads
        .iter()
        .map(|p| {
            let v: Value = serde_json::from_str(p).unwrap();
            (title(&v["body"]).to_string(), description(&v["body"]).to_string())
        })
        .collect()
}

/// The channel's reports as (title, description), oldest first.
pub fn channel_posts(emu: &Emulator) -> Vec<(String, String)> {
    reports(emu)
        .iter()
        .map(|m| (title(m).to_string(), description(m).to_string()))
        .collect()
}

/// The custom ids of a message's buttons that can still be clicked.
pub fn enabled_buttons(m: &Value) -> Vec<String> {
    m["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter(|b| !b["disabled"].as_bool().unwrap_or(false))
        .filter_map(|b| b["custom_id"].as_str().map(String::from))
        .collect()
}

pub fn labels(m: &Value) -> Vec<String> {
    m["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["label"].as_str().map(String::from))
        .collect()
}

pub fn button(m: &Value, decision: &str) -> String {
    let prefix = format!("tw1:{decision}:");
    enabled_buttons(m)
        .into_iter()
        .find(|id| id.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no enabled {decision} button on {m}"))
}

/// Waits until message `id` has no button left to click.
pub async fn wait_closed(emu: &Emulator, id: &Value) {
    emu.wait_message(CH, |m| m["id"] == *id && enabled_buttons(m).is_empty(), WAIT)
        .await
        .unwrap();
}

/// How many times the bot edited message `id`, counting the requests from index `from` on.
pub fn edits_of(emu: &Emulator, id: &Value, from: usize) -> usize {
    let path = format!("/channels/{CH}/messages/{}", id.as_str().unwrap());
    emu.requests()[from..]
        .iter()
        .filter(|q| q.method == "PATCH" && q.path == path)
        .count()
}

pub fn current(emu: &Emulator, id: &Value) -> Value {
    emu.messages(CH)
        .into_iter()
        .find(|m| m["id"] == *id)
        .expect("the message is still in the channel")
}

/// Waits until the bot is connected (`n`-th time: each session reads the registered
/// commands) and its commands are registered (written once: only when they changed).
pub async fn bot_ready(emu: &Emulator, serve: &Serve, n: usize) {
    let guild = emu.config().guild_id;
    let path = format!(
        "/applications/{}/guilds/{guild}/commands",
        emu.config().application_id
    );
    if let Err(e) = emu
        .wait_for(
            |r| {
                r.iter().filter(|q| q.method == "GET" && q.path == path).count() >= n
                    && r.iter().any(|q| q.method == "PUT" && q.path == path)
            },
            WAIT,
        )
        .await
    {
        panic!(
            "{e}: the bot never registered its commands\nserve logs:\n{}",
            serve.logs()
        );
    }
}

/// The JSON body of the first request that `is_it` (waited for).
async fn first_body(emu: &Emulator, is_it: impl Fn(&discord_emulator::RecordedRequest) -> bool) -> Value {
    let reqs = emu.wait_for(|r| r.iter().any(&is_it), WAIT).await.unwrap();
    let q = reqs.into_iter().find(|q| is_it(q)).unwrap();
    q.body.json().unwrap().clone()
}

/// The bot's ephemeral answer to a click (a follow-up on the interaction's webhook).
pub async fn click_answer(emu: &Emulator, click: &InjectedInteraction) -> Value {
    let token = click.token.clone();
    let body = first_body(emu, |q| {
        q.method == "POST" && q.path.starts_with("/webhooks/") && q.path.ends_with(&token)
    })
    .await;
    assert_eq!(body["flags"].as_u64().unwrap_or(0) & 64, 64, "ephemeral: {body}");
    body
}

/// The bot's ephemeral answer to a slash command (the deferred reply, filled in).
pub async fn command_answer(emu: &Emulator, cmd: &InjectedInteraction) -> String {
    let cb = emu.wait_callback(cmd, WAIT).await.unwrap();
    assert_eq!(
        cb["data"]["flags"].as_u64().unwrap_or(0) & 64,
        64,
        "ephemeral: {cb}"
    );
    let token = cmd.token.clone();
    let body = first_body(emu, |q| {
        q.method == "PATCH" && q.path.contains(&token) && q.path.ends_with("/messages/@original")
    })
    .await;
    body["content"].as_str().unwrap_or("").to_string()
}

pub fn train(emu: &Emulator, user: &EmuUser, sub: &str, job: &str) -> InjectedInteraction {
    emu.slash_command(
        CH,
        user,
        "train",
        vec![CommandOpt::subcommand(sub, vec![CommandOpt::string("job", job)])],
    )
    .unwrap()
}

/// `/train start` by the director, answered as accepted; returns the started run's PID.
pub async fn start_job(emu: &Emulator, serve: &mut Serve, job: &str) -> (Value, i32) {
    let cmd = train(emu, &director(), "start", job);
    let answer = command_answer(emu, &cmd).await;
    assert!(!answer.to_lowercase().contains("not allowed"), "{answer}");
    let started = report(emu, serve, "Training started").await;
    let pid = number_after(description(&started), "Training started with PID:");
    serve.watch_pid(pid);
    (started, pid)
}

/// A job running the demo trainer (fails once at `fail_at` when started from scratch,
/// checkpoints every 5 steps, resumes from the newest checkpoint); `extra` is appended.
pub fn demo(job: &str, steps: u32, step_ms: u32, fail_at: u32, extra: &str) -> String {
    format!(
        r#"
[jobs.{job}]
argv = ["{BIN}", "demo-train", "--name", "{job}", "--steps", "{steps}", "--step-ms", "{step_ms}", "--fail-at", "{fail_at}"]
expected = "10m"
max = "20m"
checkpoint = "output/implementation/checkpoints/model_{job}_step*.ckpt"
resume_argv = ["{BIN}", "demo-train", "--name", "{job}", "--steps", "{steps}", "--step-ms", "{step_ms}", "--resume", "{{checkpoint}}"]
kill_grace = "2s"
{extra}
"#
    )
}

/// A fresh emulator and a serve over it with `jobs` (TOML), the bot connected.
pub async fn serving(
    via: Via,
    status_mode: &str,
    extra_roles: &str,
    jobs: &str,
) -> (Emulator, tempfile::TempDir, Serve) {
    let emu = emulator(via).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &emu, via, status_mode, extra_roles, jobs);
    let serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    (emu, dir, serve)
}

/// A slow sampler that logs progress, past its 1 s maximum at once (bounded to 60 s if
/// nobody kills it), with status updates every `status_interval`.
pub fn slow_sampler(job: &str, status_interval: &str) -> String {
    format!(
        r#"
[jobs.{job}]
argv = ["sh", "-c", "i=0; while [ $i -lt 600 ]; do echo \"epoch 1 step $i/600 loss=0.5\"; sleep 0.1; i=$((i+1)); done"]
expected = "500ms"
max = "1s"
status_interval = "{status_interval}"
"#
    )
}

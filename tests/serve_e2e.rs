//! `trainwatch serve` end to end in Discord: the real binary, real job processes, and the
//! local Discord emulator (REST + gateway on 127.0.0.1) playing Discord and the team.
//! Each test drives the protocol the way people would — slash commands and button clicks —
//! and checks what the channel shows. Waits are bounded liveness limits, never timing
//! assertions; every serve process (and every job it started) is killed when a test ends,
//! even when it fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use discord_emulator::{CommandOpt, EmuUser, Emulator, EmulatorConfig, Fault, InjectedInteraction};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_trainwatch");
const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAx.emulated.token-for-serve-tests";
const WAIT: Duration = Duration::from_secs(30);
const CH: u64 = 300_000_000_000_000_001;
const DIRECTOR_ROLE: u64 = 400_000_000_000_000_001;
const TRANSLATOR_ROLE: u64 = 400_000_000_000_000_002;
const MODELER_ROLE: u64 = 400_000_000_000_000_003;
const DIRECTOR: u64 = 600_000_000_000_000_001;
const TRANSLATOR: u64 = 600_000_000_000_000_002;
const VALIDATOR: u64 = 600_000_000_000_000_003;
const OUTSIDER: u64 = 600_000_000_000_000_004;

fn director() -> EmuUser {
    EmuUser::new(DIRECTOR, "ann").with_roles([DIRECTOR_ROLE])
}
fn translator() -> EmuUser {
    EmuUser::new(TRANSLATOR, "bob").with_roles([TRANSLATOR_ROLE])
}
fn validator() -> EmuUser {
    EmuUser::new(VALIDATOR, "val")
}
fn outsider() -> EmuUser {
    EmuUser::new(OUTSIDER, "eve")
}

/// How the bot reaches the emulator.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    /// `proxy_url`: REST goes straight to the emulator (serenity's rate limiter off).
    Proxy,
    /// `https_proxy` + `ca_cert`: CONNECT through the emulator, TLS with its test CA.
    HttpsProxy,
}

async fn emulator(via: Via) -> Emulator {
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
fn write_config(
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
struct Serve {
    child: Option<Child>,
    dir: PathBuf,
    cfg: PathBuf,
    /// Job PIDs seen in the channel: each is its job's process group.
    job_pids: Vec<i32>,
    starts: usize,
}

impl Serve {
    fn start(dir: &Path, cfg: &Path) -> Serve {
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

    fn spawn(&mut self) {
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
    fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, as systemd would stop it; bounded, then SIGKILL.
    fn stop(&mut self) {
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

    fn watch_pid(&mut self, pid: i32) {
        if pid > 1 && !self.job_pids.contains(&pid) {
            self.job_pids.push(pid);
        }
    }

    /// What serve wrote to stderr, for failure messages.
    fn logs(&self) -> String {
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

fn alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 }
}

fn title(m: &Value) -> &str {
    m["embeds"][0]["title"].as_str().unwrap_or("")
}

fn description(m: &Value) -> &str {
    m["embeds"][0]["description"].as_str().unwrap_or("")
}

/// The bot's reports (messages with an embed), oldest first.
fn reports(emu: &Emulator) -> Vec<Value> {
    emu.public_messages(CH)
        .into_iter()
        .filter(|m| m["embeds"].as_array().is_some_and(|e| !e.is_empty()))
        .collect()
}

fn count_titled(emu: &Emulator, needle: &str) -> usize {
    reports(emu).iter().filter(|m| title(m).contains(needle)).count()
}

async fn report(emu: &Emulator, serve: &Serve, needle: &str) -> Value {
    report_where(emu, serve, needle, |_| true).await
}

async fn report_where(emu: &Emulator, serve: &Serve, needle: &str, pred: impl Fn(&Value) -> bool) -> Value {
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
fn number_after(text: &str, prefix: &str) -> i32 {
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
async fn post_bodies(emu: &Emulator, needle: &str) -> Vec<Value> {
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
fn outbox_posts(dir: &Path) -> Vec<(String, String)> {
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
fn channel_posts(emu: &Emulator) -> Vec<(String, String)> {
    reports(emu)
        .iter()
        .map(|m| (title(m).to_string(), description(m).to_string()))
        .collect()
}

/// The custom ids of a message's buttons that can still be clicked.
fn enabled_buttons(m: &Value) -> Vec<String> {
    m["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter(|b| !b["disabled"].as_bool().unwrap_or(false))
        .filter_map(|b| b["custom_id"].as_str().map(String::from))
        .collect()
}

fn labels(m: &Value) -> Vec<String> {
    m["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["label"].as_str().map(String::from))
        .collect()
}

fn button(m: &Value, decision: &str) -> String {
    let prefix = format!("tw1:{decision}:");
    enabled_buttons(m)
        .into_iter()
        .find(|id| id.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no enabled {decision} button on {m}"))
}

/// Waits until message `id` has no button left to click.
async fn wait_closed(emu: &Emulator, id: &Value) {
    emu.wait_message(CH, |m| m["id"] == *id && enabled_buttons(m).is_empty(), WAIT)
        .await
        .unwrap();
}

/// How many times the bot edited message `id`, counting the requests from index `from` on.
fn edits_of(emu: &Emulator, id: &Value, from: usize) -> usize {
    let path = format!("/channels/{CH}/messages/{}", id.as_str().unwrap());
    emu.requests()[from..]
        .iter()
        .filter(|q| q.method == "PATCH" && q.path == path)
        .count()
}

fn current(emu: &Emulator, id: &Value) -> Value {
    emu.messages(CH)
        .into_iter()
        .find(|m| m["id"] == *id)
        .expect("the message is still in the channel")
}

/// Waits until the bot is connected (`n`-th time: each session reads the registered
/// commands) and its commands are registered (written once: only when they changed).
async fn bot_ready(emu: &Emulator, serve: &Serve, n: usize) {
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

/// The bot's ephemeral answer to a click (a follow-up on the interaction's webhook).
async fn click_answer(emu: &Emulator, click: &InjectedInteraction) -> Value {
    let token = click.token.clone();
    let is_it = |q: &discord_emulator::RecordedRequest| {
        q.method == "POST" && q.path.starts_with("/webhooks/") && q.path.ends_with(&token)
    };
    let reqs = emu.wait_for(|r| r.iter().any(is_it), WAIT).await.unwrap();
    let body = reqs
        .into_iter()
        .find(|q| is_it(q))
        .unwrap()
        .body
        .json()
        .unwrap()
        .clone();
    assert_eq!(body["flags"].as_u64().unwrap_or(0) & 64, 64, "ephemeral: {body}");
    body
}

/// The bot's ephemeral answer to a slash command (the deferred reply, filled in).
async fn command_answer(emu: &Emulator, cmd: &InjectedInteraction) -> String {
    let cb = emu.wait_callback(cmd, WAIT).await.unwrap();
    assert_eq!(
        cb["data"]["flags"].as_u64().unwrap_or(0) & 64,
        64,
        "ephemeral: {cb}"
    );
    let token = cmd.token.clone();
    let is_it = |q: &discord_emulator::RecordedRequest| {
        q.method == "PATCH" && q.path.contains(&token) && q.path.ends_with("/messages/@original")
    };
    let reqs = emu.wait_for(|r| r.iter().any(is_it), WAIT).await.unwrap();
    let body = reqs
        .into_iter()
        .find(|q| is_it(q))
        .unwrap()
        .body
        .json()
        .unwrap()
        .clone();
    body["content"].as_str().unwrap_or("").to_string()
}

fn train(emu: &Emulator, user: &EmuUser, sub: &str, job: &str) -> InjectedInteraction {
    emu.slash_command(
        CH,
        user,
        "train",
        vec![CommandOpt::subcommand(sub, vec![CommandOpt::string("job", job)])],
    )
    .unwrap()
}

/// `/train start` by the director, answered as accepted; returns the started run's PID.
async fn start_job(emu: &Emulator, serve: &mut Serve, job: &str) -> (Value, i32) {
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
fn demo(job: &str, steps: u32, step_ms: u32, fail_at: u32, extra: &str) -> String {
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

/// Test 1: start from Discord, an error report that pings the right roles, a refused click,
/// the director's restart (old PID killed, new PID, checkpoint), completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_error_refused_click_restart_complete() {
    let emu = emulator(Via::Proxy).await;
    let dir = tempfile::tempdir().unwrap();
    // The trainer fails at step 8 but its process hangs on afterwards (as a wedged CUDA
    // process does), so Restart has a live process to kill. The wait is bounded.
    let job = format!(
        r#"
[jobs.m1]
argv = ["sh", "-c", "\"$0\" demo-train --name m1 --steps 30 --step-ms 30 --fail-at 8; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exit 1", "{BIN}"]
expected = "10m"
max = "20m"
status_interval = "1h"
checkpoint = "output/implementation/checkpoints/model_m1_step*.ckpt"
resume_argv = ["{BIN}", "demo-train", "--name", "m1", "--steps", "30", "--step-ms", "30", "--resume", "{{checkpoint}}"]
kill_grace = "2s"
"#
    );
    let cfg = write_config(dir.path(), &emu, Via::Proxy, "new", "", &job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;

    // A user without a role may not start anything.
    let cmd = train(&emu, &outsider(), "start", "m1");
    let answer = command_answer(&emu, &cmd).await;
    assert!(answer.contains("eve may not start jobs"), "{answer}");
    assert_eq!(count_titled(&emu, "Training started"), 0, "{answer}");

    let (started, pid) = start_job(&emu, &mut serve, "m1").await;
    assert!(description(&started).contains("Log file"), "{started}");

    let error = report(&emu, &serve, "ERROR DETECTED").await;
    let content = error["content"].as_str().unwrap();
    assert!(content.contains(&format!("<@&{DIRECTOR_ROLE}>")), "{content}");
    // CUDA out of memory is a resource error: its owner is the code translator.
    assert!(content.contains(&format!("<@&{TRANSLATOR_ROLE}>")), "{content}");
    let posted = post_bodies(&emu, "ERROR DETECTED").await;
    assert_eq!(posted.len(), 1, "posted once");
    let allowed = &posted[0]["allowed_mentions"];
    assert_eq!(allowed["parse"], serde_json::json!([]), "{allowed}");
    let roles: BTreeSet<u64> = allowed["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    assert_eq!(roles, BTreeSet::from([DIRECTOR_ROLE, TRANSLATOR_ROLE]));
    assert_eq!(allowed["users"], serde_json::json!([]), "{allowed}");
    let embed = serde_json::to_string(&error["embeds"][0]).unwrap();
    assert!(
        embed.contains("CUDA out of memory") && embed.contains("resource"),
        "{embed}"
    );
    assert_eq!(labels(&error), ["Restart", "Kill", "Continue", "Investigate"]);
    let restart = button(&error, "restart");
    assert!(restart.starts_with("tw1:restart:m1:1:"), "{restart}");

    // Someone without the director role clicks Restart: refused, only to them; buttons stay.
    let click = emu
        .click_button(
            CH,
            error["id"].as_str().unwrap().parse().unwrap(),
            &restart,
            &outsider(),
        )
        .unwrap();
    let refusal = click_answer(&emu, &click).await;
    let text = refusal["content"].as_str().unwrap();
    assert!(text.contains("eve"), "the refusal names who tried: {text}");
    assert!(
        text.contains("decisions need the director role"),
        "and says who may: {text}"
    );
    assert_eq!(enabled_buttons(&current(&emu, &error["id"])).len(), 4);
    assert_eq!(count_titled(&emu, "Restarting"), 0);
    assert!(alive(pid), "a refused click does nothing to the job");

    // The director restarts: the old process is killed, the new one resumes from a checkpoint.
    let before_click = emu.requests().len();
    let click = emu
        .click_button(
            CH,
            error["id"].as_str().unwrap().parse().unwrap(),
            &restart,
            &director(),
        )
        .unwrap();
    click_answer(&emu, &click).await;
    let restarting = report(&emu, &serve, "Restarting").await;
    let text = description(&restarting);
    assert_eq!(number_after(text, "Old process killed: PID"), pid, "{text}");
    let new_pid = number_after(text, "New process started: PID");
    serve.watch_pid(new_pid);
    assert_ne!(new_pid, pid);
    assert!(
        text.contains("Resumed from checkpoint") && text.contains("model_m1_step00005.ckpt"),
        "{text}"
    );
    assert!(text.contains("decided by @ann"), "{text}");
    assert!(!alive(pid), "the old process is gone");
    // The decided report's buttons are closed.
    wait_closed(&emu, &error["id"]).await;

    let done = report(&emu, &serve, "Training Complete").await;
    assert!(description(&done).contains("SUCCESS"), "{done}");
    assert!(description(&done).contains("Attempts: 2"), "{done}");
    // One decision, one edit of its report (the engine's resolution, through the outbox).
    assert_eq!(
        edits_of(&emu, &error["id"], before_click),
        1,
        "the decided report is edited once"
    );
    for t in [
        "Training started",
        "ERROR DETECTED",
        "Restarting",
        "Training Complete",
    ] {
        assert_eq!(count_titled(&emu, t), 1, "{t}");
    }
    serve.stop();
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// Test 2: the bot is SIGKILLed while a job runs with an undecided error report; started
/// again, it re-adopts the same process, the report's button posted before the crash
/// still decides, and the channel ends with every report exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_killed_mid_run_readopts_and_old_buttons_still_work() {
    let emu = emulator(Via::Proxy).await;
    let dir = tempfile::tempdir().unwrap();
    // An OOM in the log while the process lives on; it finishes once the test drops `go`
    // (bounded: it gives up after 60 s).
    let job = r#"
[jobs.m2]
argv = ["sh", "-c", "echo 'epoch 1 step 1/2 loss=0.9'; echo 'Traceback (most recent call last):'; echo '  File \"train.py\", line 3, in <module>'; echo 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB'; i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; [ -e go ] || exit 1; mkdir -p output/results output/implementation/models; echo x > output/results/results_m2.csv; echo y > output/implementation/models/model_m2_full.pkl; echo 'epoch 2 step 2/2 loss=0.3'"]
expected = "10m"
max = "20m"
status_interval = "1h"
"#;
    let cfg = write_config(dir.path(), &emu, Via::Proxy, "new", "", job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    let (_, pid) = start_job(&emu, &mut serve, "m2").await;
    let error = report(&emu, &serve, "ERROR DETECTED").await;
    let cont = button(&error, "continue");
    let error_id: u64 = error["id"].as_str().unwrap().parse().unwrap();

    // The bot dies without any chance to clean up; the job must not notice.
    serve.kill_hard();
    emu.wait_disconnected(WAIT).await.unwrap();
    assert!(alive(pid), "the job survives its supervisor");

    serve.spawn();
    bot_ready(&emu, &serve, 2).await;
    // The button posted by the previous bot process decides on the re-adopted run.
    let click = emu.click_button(CH, error_id, &cont, &director()).unwrap();
    let answer = click_answer(&emu, &click).await;
    let answer = answer["content"].as_str().unwrap();
    assert!(
        !answer.contains("may not") && !answer.contains("no open"),
        "{answer}"
    );
    wait_closed(&emu, &error["id"]).await;
    assert!(alive(pid), "Continue leaves the same process running");

    std::fs::write(dir.path().join("go"), "").unwrap();
    let done = report(&emu, &serve, "Training Complete").await;
    assert!(
        title(&done).contains("run 1"),
        "the re-adopted run completed: {}",
        title(&done)
    );
    assert!(description(&done).contains("SUCCESS"), "{done}");
    serve.stop();
    // Nothing lost, nothing twice: the channel holds exactly what the protocol queued, in
    // its order — one start (no second one after the restart), one error, one completion.
    let queued = outbox_posts(dir.path());
    assert_eq!(channel_posts(&emu), queued);
    let titles: Vec<&str> = queued.iter().map(|(t, _)| t.as_str()).collect();
    for t in [
        "Training started",
        "ERROR DETECTED",
        "Decision",
        "Training Complete",
    ] {
        assert_eq!(
            titles.iter().filter(|x| x.contains(t)).count(),
            1,
            "{t} in {titles:?}"
        );
    }
    assert_eq!(titles.len(), 4, "{titles:?}");
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// Test 3: Discord answers 503 to every new message for a few seconds while a run goes
/// through start, status updates, an error, the policy's restart and completion: afterwards
/// every report is in the channel exactly once, in the order the protocol produced them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_keeps_the_order() {
    let emu = emulator(Via::Proxy).await;
    let dir = tempfile::tempdir().unwrap();
    let job = demo(
        "m3",
        60,
        40,
        20,
        "status_interval = \"300ms\"\non_error = \"restart\"\nrestart_limit = 1",
    );
    let cfg = write_config(dir.path(), &emu, Via::Proxy, "new", "", &job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    let (_, _pid) = start_job(&emu, &mut serve, "m3").await;
    // From now on, creating a message fails for a while (interaction answers still work).
    emu.inject_fault(
        Fault::status(503)
            .on_method("POST")
            .on_path(format!("/channels/{CH}/messages"))
            .for_duration(Duration::from_secs(4)),
    );
    let restarting = report(&emu, &serve, "Restarting").await;
    serve.watch_pid(number_after(description(&restarting), "New process started: PID"));
    report(&emu, &serve, "Training Complete").await;
    serve.stop();

    let refused = emu
        .requests()
        .iter()
        .filter(|q| q.method == "POST" && q.path.ends_with("/messages") && q.status == 503)
        .count();
    assert!(refused > 0, "the outage hit no message");
    // The protocol's order: the outbox, as the engine filled it.
    let expected = outbox_posts(dir.path());
    let seen = channel_posts(&emu);
    let titles: Vec<&str> = expected.iter().map(|(t, _)| t.as_str()).collect();
    for t in [
        "Training started",
        "Status Update",
        "ERROR DETECTED",
        "Restarting",
        "Training Complete",
    ] {
        assert!(titles.iter().any(|x| x.contains(t)), "{t} not in {titles:?}");
    }
    assert_eq!(seen, expected, "the channel differs from the protocol's order");
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// Test 4 (the Phase 4.5 gate in Discord, through the HTTPS-proxy mode): a fix that changes
/// a design parameter needs the time validator's approval before training may resume; the
/// director is refused until then, the submitter may not approve their own fix (four eyes,
/// although they hold the validator role too), the validator approves, and the restart
/// resumes from the checkpoint and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_holds_a_design_change_until_the_validator_approves() {
    let emu = emulator(Via::HttpsProxy).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("params.toml"), "draws = 2000\nchains = 4\n").unwrap();
    let job = demo(
        "m4",
        30,
        30,
        8,
        r#"status_interval = "1h"
[[jobs.m4.design]]
name = "draws"
expected = 2000
tolerance = "±10%"
from = { file = "params.toml", key = "draws" }
[[jobs.m4.design]]
name = "chains"
expected = 4
from = { file = "params.toml", key = "chains" }
"#,
    );
    let roles = format!("time_validator = [\"user:{VALIDATOR}\", \"role:{TRANSLATOR_ROLE}\"]");
    let cfg = write_config(dir.path(), &emu, Via::HttpsProxy, "new", &roles, &job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    let (_, pid) = start_job(&emu, &mut serve, "m4").await;
    let error = report(&emu, &serve, "ERROR DETECTED").await;
    let error_id: u64 = error["id"].as_str().unwrap().parse().unwrap();
    let restart = button(&error, "restart");

    // The code translator's fix halves the draws: a design parameter.
    std::fs::write(dir.path().join("params.toml"), "draws = 1000\nchains = 4\n").unwrap();
    let cmd = emu
        .slash_command(
            CH,
            &translator(),
            "fix",
            vec![CommandOpt::subcommand(
                "submit",
                vec![
                    CommandOpt::string("job", "m4"),
                    CommandOpt::string("summary", "halve the draws to dodge the OOM"),
                ],
            )],
        )
        .unwrap();
    let answer = command_answer(&emu, &cmd).await;
    assert!(answer.contains("changes design parameters (draws)"), "{answer}");
    let gate = report(&emu, &serve, "RE-VALIDATION REQUIRED").await;
    assert!(
        gate["content"]
            .as_str()
            .unwrap()
            .contains(&format!("<@{VALIDATOR}>")),
        "the validator is pinged: {gate}"
    );
    let posted = post_bodies(&emu, "RE-VALIDATION REQUIRED").await;
    let users = &posted[0]["allowed_mentions"]["users"];
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_u64() == Some(VALIDATOR)),
        "{users}"
    );
    let embed = serde_json::to_string(&gate["embeds"][0]).unwrap();
    assert!(
        embed.contains("draws") && embed.contains("2000") && embed.contains("1000"),
        "{embed}"
    );
    assert_eq!(labels(&gate), ["Approve", "Reject"]);
    let gate_id: u64 = gate["id"].as_str().unwrap().parse().unwrap();
    let approve = button(&gate, "approve");

    // The director may not resume yet, and is told why.
    let click = emu.click_button(CH, error_id, &restart, &director()).unwrap();
    let refusal = click_answer(&emu, &click).await;
    let text = refusal["content"].as_str().unwrap();
    assert!(text.contains("until @time_validator approves"), "{text}");
    // Four eyes: the submitter holds the validator role and still may not approve.
    let click = emu.click_button(CH, gate_id, &approve, &translator()).unwrap();
    let refusal = click_answer(&emu, &click).await;
    let text = refusal["content"].as_str().unwrap();
    assert!(text.contains("four eyes"), "{text}");
    assert_eq!(count_titled(&emu, "Fix APPROVED"), 0);
    assert_eq!(count_titled(&emu, "Restarting"), 0);

    // The validator approves; now the director's restart goes through.
    let click = emu.click_button(CH, gate_id, &approve, &validator()).unwrap();
    click_answer(&emu, &click).await;
    report(&emu, &serve, "Fix APPROVED").await;
    let restart_now = button(&current(&emu, &error["id"]), "restart");
    let click = emu.click_button(CH, error_id, &restart_now, &director()).unwrap();
    click_answer(&emu, &click).await;
    let restarting = report(&emu, &serve, "Restarting").await;
    let text = description(&restarting);
    serve.watch_pid(number_after(text, "New process started: PID"));
    // The trainer had exited by itself; the report names its PID. (It says "killed" —
    // the engine does not remember that the process had already ended; see the report.)
    assert!(text.contains(&format!("PID {pid}")), "{text}");
    assert!(
        text.contains("Resumed from checkpoint") && text.contains("model_m4_step00005.ckpt"),
        "{text}"
    );
    let done = report(&emu, &serve, "Training Complete").await;
    assert!(description(&done).contains("SUCCESS"), "{done}");
    serve.stop();
    // Everything went through the HTTPS proxy (CONNECT + the test CA), none around it.
    let reqs = emu.requests();
    assert!(
        !reqs.is_empty() && reqs.iter().all(|q| q.tls),
        "a request bypassed the proxy"
    );
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// Test 5: a run past its maximum gets a TIMEOUT WARNING for the director; Investigate asks
/// the modeler (pinged) and closes the warning; `/train kill` ends the run ("Training
/// Killed", the process group gone); status updates in edit mode stay one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_warning_investigate_then_kill() {
    let emu = emulator(Via::Proxy).await;
    let dir = tempfile::tempdir().unwrap();
    // A slow sampler that logs progress; bounded to 60 s if nobody kills it.
    let job = r#"
[jobs.m5]
argv = ["sh", "-c", "i=0; while [ $i -lt 600 ]; do echo \"epoch 1 step $i/600 loss=0.5\"; sleep 0.1; i=$((i+1)); done"]
expected = "500ms"
max = "1s"
status_interval = "300ms"
"#;
    let roles = format!("modeler = [\"role:{MODELER_ROLE}\"]");
    let cfg = write_config(dir.path(), &emu, Via::Proxy, "edit", &roles, job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    let (_, pid) = start_job(&emu, &mut serve, "m5").await;

    let warning = report(&emu, &serve, "TIMEOUT WARNING").await;
    assert!(
        serde_json::to_string(&warning["embeds"][0])
            .unwrap()
            .contains(&pid.to_string()),
        "the warning names the PID: {warning}"
    );
    assert_eq!(warning["content"], format!("<@&{DIRECTOR_ROLE}>"));
    assert_eq!(
        labels(&warning),
        ["Continue monitoring", "Investigate", "Terminate and restart"]
    );
    let warning_id: u64 = warning["id"].as_str().unwrap().parse().unwrap();
    let click = emu
        .click_button(CH, warning_id, &button(&warning, "investigate"), &director())
        .unwrap();
    let answer = click_answer(&emu, &click).await;
    assert!(
        answer["content"]
            .as_str()
            .unwrap()
            .contains("asked @modeler to investigate m5"),
        "{answer}"
    );
    // The request goes into a thread on the warning (Discord gives it the message's id).
    let asked = emu
        .wait_message(warning_id, |m| title(m).contains("Investigation requested"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}: no investigation request in the warning's thread"));
    assert!(
        asked["content"]
            .as_str()
            .unwrap()
            .contains(&format!("<@&{MODELER_ROLE}>")),
        "{asked}"
    );
    assert!(alive(pid), "investigating leaves the run going");
    // Investigating is not the decision: the warning still awaits one, untouched.
    assert_eq!(edits_of(&emu, &warning["id"], 0), 0);
    assert_eq!(
        enabled_buttons(&current(&emu, &warning["id"])).len(),
        3,
        "the warning still offers its decisions"
    );

    let cmd = train(&emu, &director(), "kill", "m5");
    command_answer(&emu, &cmd).await;
    let killed = report(&emu, &serve, "Training Killed").await;
    assert!(
        description(&killed).contains(&format!("Killed by @ann (PID {pid})")),
        "{killed}"
    );
    assert!(!alive(pid), "the job's process is gone");
    // The kill decided the warning: closed in place, by one edit.
    wait_closed(&emu, &warning["id"]).await;
    assert_eq!(edits_of(&emu, &warning["id"], 0), 1, "one decision, one edit");
    serve.stop();

    // Edit mode: the status updates were one message, edited in place.
    let titles: Vec<String> = reports(&emu).iter().map(|m| title(m).to_string()).collect();
    assert_eq!(
        titles.iter().filter(|t| t.contains("Status Update")).count(),
        1,
        "{titles:?}"
    );
    let status = reports(&emu)
        .into_iter()
        .find(|m| title(m).contains("Status Update"))
        .unwrap();
    assert!(
        !status["edited_timestamp"].is_null(),
        "updated in place: {status}"
    );
    assert_eq!(count_titled(&emu, "Training Killed"), 1);
    drop(serve);
    emu.shutdown().await.unwrap();
}

//! What real Discord demands of `trainwatch serve`, end to end against the local emulator
//! (the real binary, real job processes): a token Discord refuses for a while loses no
//! message and is said once; an investigation thread survives a restart of the bot (and
//! the restart writes no slash commands); `check-config` warns about more mentions than
//! Discord takes. Waits are bounded liveness limits, never timing assertions; every serve
//! process and every job it started is killed when a test ends, even when it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use discord_emulator::{Emulator, Fault, InjectedInteraction};
use serde_json::Value;

#[path = "support/serve.rs"]
mod serve;
use serve::*;

/// What the delivery worker says when Discord refuses the token or permissions.
const ALARM: &str = "DISCORD REFUSES THE BOT";

/// The team of these tests: a director, and a modeler (whom an investigation names).
fn config(dir: &Path, emu: &Emulator, jobs: &str) -> PathBuf {
    let modeler = format!("modeler = [\"role:{MODELER_ROLE}\"]");
    write_config(dir, emu, Via::Proxy, "new", &modeler, jobs)
}

fn commands_path(emu: &Emulator) -> String {
    format!(
        "/applications/{}/guilds/{}/commands",
        emu.config().application_id,
        emu.config().guild_id
    )
}

fn count(emu: &Emulator, method: &str, path: &str) -> usize {
    emu.requests()
        .iter()
        .filter(|q| q.method == method && q.path == path)
        .count()
}

async fn message_in(emu: &Emulator, serve: &Serve, channel: u64, needle: &str) -> Value {
    match emu
        .wait_message(channel, |m| title(m).contains(needle), WAIT)
        .await
    {
        Ok(m) => m,
        Err(e) => panic!("{e}: no {needle:?} in {channel}\nserve logs:\n{}", serve.logs()),
    }
}

fn train_start(emu: &Emulator, job: &str) -> InjectedInteraction {
    emu.slash_command(
        CH,
        &director(),
        "train",
        vec![discord_emulator::CommandOpt::subcommand(
            "start",
            vec![discord_emulator::CommandOpt::string("job", job)],
        )],
    )
    .unwrap()
}

fn button(m: &Value, decision: &str) -> String {
    let prefix = format!("tw1:{decision}:");
    m["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(String::from))
        .find(|id| id.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {decision} button on {m}"))
}

/// The bot's ephemeral answer to a click (a follow-up on the interaction's webhook).
async fn click_answer(emu: &Emulator, click: &InjectedInteraction) -> String {
    let token = click.token.clone();
    let is_it = |q: &discord_emulator::RecordedRequest| {
        q.method == "POST" && q.path.starts_with("/webhooks/") && q.path.ends_with(&token)
    };
    let reqs = emu.wait_for(|r| r.iter().any(is_it), WAIT).await.unwrap();
    let body = reqs.into_iter().find(|q| is_it(q)).unwrap().body;
    body.json().unwrap()["content"].as_str().unwrap_or("").to_string()
}

/// The posts of the outbox as the engine queued them, in order (titles), read from the
/// store's file once serve has stopped.
fn queued_titles(dir: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open_with_flags(
        dir.join("state/state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = db
        .prepare("SELECT payload FROM outbox WHERE kind = 'post' ORDER BY id")
        .unwrap();
    let titles: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|p| {
            let v: Value = serde_json::from_str(&p.unwrap()).unwrap();
            title(&v["body"]).to_string()
        })
        .collect();
    titles
}

/// Discord answers 401 to every message of the bot for a while (a revoked token, fixed by
/// the operator): the bot says so loudly once, keeps the outbox, and once Discord accepts
/// it again every report is delivered, in the protocol's order, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_said_once_and_every_message_is_delivered_when_fixed() {
    let emu = emulator(Via::Proxy).await;
    let dir = tempfile::tempdir().unwrap();
    let job = r#"
[jobs.p1]
argv = ["sh", "-c", "echo 'epoch 1 step 1/3 loss=0.9'; sleep 0.5; echo 'epoch 2 step 2/3 loss=0.5'; sleep 0.5; echo 'epoch 3 step 3/3 loss=0.3'"]
expected = "10m"
max = "20m"
status_interval = "300ms"
"#;
    let cfg = config(dir.path(), &emu, job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    // From now on Discord refuses the bot's messages for a while; interactions still work.
    emu.inject_fault(
        Fault::status(401)
            .on_path("/channels/")
            .for_duration(Duration::from_secs(4)),
    );
    let cmd = train_start(&emu, "p1");
    emu.wait_callback(&cmd, WAIT).await.unwrap();
    let started = message_in(&emu, &serve, CH, "Training started").await;
    serve.watch_pid(number_after(description(&started), "Training started with PID:"));
    message_in(&emu, &serve, CH, "Training Complete").await;
    serve.stop();

    let refused = emu
        .requests()
        .iter()
        .filter(|q| q.path.starts_with("/channels/") && q.status == 401)
        .count();
    assert!(refused >= 2, "Discord refused the bot {refused} times");
    let logs = serve.logs();
    assert_eq!(logs.matches(ALARM).count(), 1, "said once:\n{logs}");
    assert!(
        logs.contains("Discord accepts the bot's requests again"),
        "{logs}"
    );
    let queued = queued_titles(dir.path());
    let seen: Vec<String> = emu
        .public_messages(CH)
        .iter()
        .filter(|m| !title(m).is_empty())
        .map(|m| title(m).to_string())
        .collect();
    assert!(queued.len() >= 2, "{queued:?}");
    assert_eq!(seen, queued, "every report, in order, once");
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// An investigation thread survives a restart of the bot: the request made after the
/// restart (with the button posted before it) joins the thread the first request opened
/// under the TIMEOUT WARNING, rather than landing in the channel. The restart writes no
/// slash commands: they are the ones Discord has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_investigation_thread_survives_a_bot_restart() {
    let emu = emulator(Via::Proxy).await;
    let dir = tempfile::tempdir().unwrap();
    // A slow sampler past its maximum; bounded to 60 s.
    let job = r#"
[jobs.p2]
argv = ["sh", "-c", "i=0; while [ $i -lt 600 ]; do echo \"epoch 1 step $i/600 loss=0.5\"; sleep 0.1; i=$((i+1)); done"]
expected = "500ms"
max = "1s"
status_interval = "1h"
"#;
    let cfg = config(dir.path(), &emu, job);
    let mut serve = Serve::start(dir.path(), &cfg);
    bot_ready(&emu, &serve, 1).await;
    let cmd = train_start(&emu, "p2");
    emu.wait_callback(&cmd, WAIT).await.unwrap();
    let started = message_in(&emu, &serve, CH, "Training started").await;
    let pid = number_after(description(&started), "Training started with PID:");
    serve.watch_pid(pid);
    let warning = message_in(&emu, &serve, CH, "TIMEOUT WARNING").await;
    let warning_id: u64 = warning["id"].as_str().unwrap().parse().unwrap();
    let investigate = button(&warning, "investigate");

    let click = emu
        .click_button(CH, warning_id, &investigate, &director())
        .unwrap();
    let answer = click_answer(&emu, &click).await;
    assert!(answer.contains("to investigate p2"), "{answer}");
    // Discord gives a thread started on a message that message's id.
    let first = message_in(&emu, &serve, warning_id, "Investigation requested").await;

    serve.kill_hard();
    emu.wait_disconnected(WAIT).await.unwrap();
    serve.spawn();
    bot_ready(&emu, &serve, 2).await;
    let click = emu
        .click_button(CH, warning_id, &investigate, &director())
        .unwrap();
    let answer = click_answer(&emu, &click).await;
    assert!(answer.contains("to investigate p2"), "{answer}");
    // The second request, in the thread (a re-delivery of the first after the SIGKILL is the
    // same message: Discord's nonce makes it one).
    if let Err(e) = emu
        .wait_message(
            warning_id,
            |m| title(m).contains("Investigation requested") && m["id"] != first["id"],
            WAIT,
        )
        .await
    {
        panic!(
            "{e}: no second investigation request in the thread\nserve logs:\n{}",
            serve.logs()
        );
    }
    let in_thread = emu
        .messages(warning_id)
        .iter()
        .filter(|m| title(m).contains("Investigation requested"))
        .count();
    assert_eq!(in_thread, 2, "both requests in the one thread");
    assert_eq!(
        emu.messages(CH)
            .iter()
            .filter(|m| title(m).contains("Investigation requested"))
            .count(),
        0,
        "none fell back to the channel"
    );
    let threads_started = emu
        .requests()
        .iter()
        .filter(|q| q.method == "POST" && q.path.ends_with("/threads") && q.status < 300)
        .count();
    assert_eq!(threads_started, 1);
    let commands = commands_path(&emu);
    assert_eq!(count(&emu, "PUT", &commands), 1, "the restart wrote no commands");
    assert!(count(&emu, "GET", &commands) >= 2);
    serve.stop();
    drop(serve);
    emu.shutdown().await.unwrap();
}

/// `check-config` warns, naming the file, line and key, about a persona mapped to more
/// Discord roles than one message can ping; the config is still accepted.
#[test]
fn check_config_warns_about_more_mentions_than_discord_takes() {
    let dir = tempfile::tempdir().unwrap();
    let roles: Vec<String> = (0..150)
        .map(|i| format!("\"role:{}\"", 700_000_000_000_000_000u64 + i))
        .collect();
    let cfg = dir.path().join("tw.toml");
    std::fs::write(
        &cfg,
        format!(
            "[roles]\nmodeler = [\"role:1\"]\ndirector = [{}]\n\n[jobs.a]\nargv = [\"true\"]\n",
            roles.join(", ")
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let expected = format!("{}:3:12: roles.director: 150 Discord roles", cfg.display());
    assert!(stderr.contains(&expected), "{expected:?} not in {stderr}");
    assert!(stderr.contains("at most 100"), "{stderr}");
    assert_eq!(stderr.matches("warning").count(), 1, "{stderr}");
}

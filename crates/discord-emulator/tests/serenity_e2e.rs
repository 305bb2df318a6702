//! Real serenity 0.12.5 against the emulator, in both proxy modes: connect, register
//! commands, slash command and button click as a user with roles, ephemeral replies,
//! messages with embed + buttons + file, rate limits, 5xx, and gateway resume.

mod common;

use std::time::Duration;

use common::{channel, start_emulator, Bot, Mode, Seen, WAIT};
use discord_emulator::{CommandOpt, EmuUser, Fault, RequestBody};
use serenity::all::{
    ButtonStyle, CreateActionRow, CreateAttachment, CreateButton, CreateEmbed, CreateMessage, CreateThread,
    EditMessage,
};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nnot-really-a-png";

fn operator(emu: &discord_emulator::Emulator) -> EmuUser {
    EmuUser::new(555_000_000_000_000_001, "alice").with_roles([emu.config().roles[0].0])
}

fn rich_message() -> CreateMessage {
    CreateMessage::new()
        .content("run 3 finished")
        .embed(
            CreateEmbed::new()
                .title("Run 3")
                .description("loss 0.12")
                .image("attachment://loss.png"),
        )
        .add_file(CreateAttachment::bytes(PNG.to_vec(), "loss.png"))
        .components(vec![CreateActionRow::Buttons(vec![
            CreateButton::new("restart")
                .label("Restart")
                .style(ButtonStyle::Danger),
            CreateButton::new("continue").label("Continue"),
        ])])
}

async fn full_round_trip(mode: Mode) {
    let emu = start_emulator().await;
    let mut bot = Bot::start(&emu, mode).await;
    let ch = channel(&emu);

    assert!(
        matches!(bot.until(|s| matches!(s, Seen::Ready { .. })).await, Seen::Ready { user_id } if user_id == emu.config().bot_user_id)
    );
    // Handlers run concurrently: collect cache-ready and registration in either order.
    let mut cache = None;
    let mut registered = None;
    for _ in 0..2 {
        match bot
            .until(|s| matches!(s, Seen::CacheReady(_) | Seen::CommandsRegistered(_)))
            .await
        {
            Seen::CacheReady(g) => cache = Some(g),
            other => registered = Some(other),
        }
    }
    assert_eq!(
        cache,
        Some(vec![emu.config().guild_id]),
        "GUILD_CREATE filled serenity's cache"
    );
    assert_eq!(
        registered,
        Some(Seen::CommandsRegistered(vec![
            "status".into(),
            "ping".into(),
            "slow".into()
        ]))
    );
    let cmds = emu.guild_commands(emu.config().guild_id);
    assert_eq!(cmds.len(), 3);
    assert!(cmds
        .iter()
        .all(|c| c["id"].as_str().is_some_and(|id| !id.is_empty())));

    // Slash command with a subcommand, as a user holding the operator role.
    let alice = operator(&emu);
    let inj = emu
        .slash_command(
            ch.get(),
            &alice,
            "status",
            vec![CommandOpt::subcommand(
                "job",
                vec![CommandOpt::string("name", "resnet")],
            )],
        )
        .expect("dispatched");
    let seen = bot.until(|s| matches!(s, Seen::Command { .. })).await;
    assert_eq!(
        seen,
        Seen::Command {
            name: "status".into(),
            sub: Some("job".into()),
            arg: Some("resnet".into()),
            user: alice.id,
            roles: alice.roles.clone()
        }
    );
    let cb = emu.wait_callback(&inj, WAIT).await.expect("callback");
    assert_eq!(cb["type"], 4);
    assert_eq!(cb["data"]["flags"], 64, "reply is ephemeral");
    assert_eq!(cb["data"]["content"], "status job resnet");
    let reply = emu
        .wait_message(ch.get(), |m| m["content"] == "status job resnet", WAIT)
        .await
        .unwrap();
    assert_eq!(reply["flags"], 64);
    assert!(
        emu.public_messages(ch.get())
            .iter()
            .all(|m| m["id"] != reply["id"]),
        "an ephemeral reply is not public"
    );

    // A message with an embed, buttons and a file shows up in the channel store.
    let sent = ch
        .send_message(&bot.http, rich_message())
        .await
        .expect("message sent");
    let stored = emu
        .wait_message(ch.get(), |m| m["id"] == sent.id.to_string(), WAIT)
        .await
        .expect("stored");
    assert_eq!(stored["content"], "run 3 finished");
    assert_eq!(stored["embeds"][0]["title"], "Run 3");
    assert_eq!(stored["embeds"][0]["image"]["url"], "attachment://loss.png");
    assert_eq!(stored["components"][0]["components"][0]["custom_id"], "restart");
    assert_eq!(stored["attachments"][0]["filename"], "loss.png");
    let att_id: u64 = stored["attachments"][0]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(emu.attachment_data(att_id).as_deref(), Some(PNG));
    assert_eq!(
        sent.attachments[0].filename, "loss.png",
        "serenity read the answer"
    );
    let post = emu
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .unwrap();
    assert!(
        matches!(&post.body, RequestBody::Multipart { files, .. } if files.len() == 1 && files[0].field == "files[0]")
    );
    assert_eq!(post.tls, mode == Mode::HttpsProxy);

    // Button click on that message.
    let click = emu
        .click_button(ch.get(), sent.id.get(), "restart", &alice)
        .expect("clickable");
    let seen = bot.until(|s| matches!(s, Seen::Button { .. })).await;
    assert_eq!(
        seen,
        Seen::Button {
            custom_id: "restart".into(),
            message_id: sent.id.get(),
            user: alice.id,
            roles: alice.roles.clone()
        }
    );
    let cb = emu.wait_callback(&click, WAIT).await.expect("callback");
    assert_eq!(cb["data"]["flags"], 64);
    assert_eq!(cb["data"]["content"], "clicked restart");
    assert!(emu
        .click_button(ch.get(), sent.id.get(), "no-such-button", &alice)
        .is_err());

    // Editing the message and starting a thread from it.
    ch.edit_message(
        &bot.http,
        sent.id,
        EditMessage::new()
            .content("run 3 finished (edited)")
            .components(vec![]),
    )
    .await
    .expect("edited");
    let stored = emu
        .messages(ch.get())
        .into_iter()
        .find(|m| m["id"] == sent.id.to_string())
        .unwrap();
    assert_eq!(stored["content"], "run 3 finished (edited)");
    assert_eq!(stored["components"], serde_json::json!([]));
    assert!(stored["edited_timestamp"].is_string());
    assert!(
        emu.click_button(ch.get(), sent.id.get(), "restart", &alice)
            .is_err(),
        "buttons are gone"
    );
    let thread = ch
        .create_thread_from_message(&bot.http, sent.id, CreateThread::new("run-3"))
        .await
        .expect("thread created");
    assert_eq!(thread.name, "run-3");
    assert_eq!(thread.parent_id, Some(ch));
    thread
        .id
        .say(&bot.http, "details in the thread")
        .await
        .expect("posted in thread");
    assert_eq!(
        emu.messages(thread.id.get())[0]["content"],
        "details in the thread"
    );

    // Deferred reply, original response edited, then a follow-up.
    let slow = emu
        .slash_command(ch.get(), &alice, "slow", vec![])
        .expect("dispatched");
    bot.until(|s| matches!(s, Seen::SlowDone)).await;
    assert_eq!(emu.interaction_callback(&slow).unwrap()["type"], 5);
    let done = emu
        .wait_message(ch.get(), |m| m["content"] == "slow: done", WAIT)
        .await
        .unwrap();
    assert_eq!(done["flags"], 64, "ephemeral, no longer loading");
    emu.wait_message(ch.get(), |m| m["content"] == "slow: follow-up", WAIT)
        .await
        .unwrap();

    // Autocomplete.
    let ac = emu
        .autocomplete(
            ch.get(),
            &alice,
            "status",
            vec![CommandOpt::subcommand(
                "job",
                vec![CommandOpt::focused_string("name", "res")],
            )],
        )
        .expect("dispatched");
    assert_eq!(
        bot.until(|s| matches!(s, Seen::Autocomplete { .. })).await,
        Seen::Autocomplete {
            partial: "res".into()
        }
    );
    let cb = emu.wait_callback(&ac, WAIT).await.expect("callback");
    assert_eq!(cb["type"], 8);
    assert_eq!(cb["data"]["choices"][0]["value"], "res-1");

    assert!(
        emu.unexpected_requests().is_empty(),
        "unexpected calls: {:?}",
        emu.unexpected_requests()
    );
    bot.stop().await;
    emu.shutdown()
        .await
        .expect("every payload deserialized in serenity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_plain_proxy() {
    full_round_trip(Mode::PlainProxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_https_connect_proxy() {
    full_round_trip(Mode::HttpsProxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_waited_out_by_serenity_ratelimiter() {
    let emu = start_emulator().await;
    let mut bot = Bot::start(&emu, Mode::HttpsProxy).await;
    bot.until(|s| matches!(s, Seen::CommandsRegistered(_))).await;
    let ch = channel(&emu);

    emu.inject_fault(
        Fault::rate_limited(Duration::from_millis(100))
            .on_path("/messages")
            .times(1),
    );
    let sent = ch
        .send_message(&bot.http, CreateMessage::new().content("after 429"))
        .await
        .expect("retried after 429");
    let posts: Vec<u16> = emu
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, vec![429, 200]);
    assert_eq!(emu.messages(ch.get()).last().unwrap()["id"], sent.id.to_string());

    bot.stop().await;
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_without_ratelimiter_is_an_error() {
    let emu = start_emulator().await;
    let mut bot = Bot::start(&emu, Mode::PlainProxy).await;
    bot.until(|s| matches!(s, Seen::CommandsRegistered(_))).await;
    let ch = channel(&emu);

    emu.inject_fault(Fault::rate_limited(Duration::from_millis(100)).on_path("/messages"));
    assert!(ch
        .send_message(&bot.http, CreateMessage::new().content("x"))
        .await
        .is_err());
    assert!(emu.messages(ch.get()).is_empty());

    bot.stop().await;
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_and_dropped_connection_surface_as_errors() {
    let emu = start_emulator().await;
    let mut bot = Bot::start(&emu, Mode::HttpsProxy).await;
    bot.until(|s| matches!(s, Seen::CommandsRegistered(_))).await;
    let ch = channel(&emu);

    emu.inject_fault(Fault::status(503).on_method("POST").on_path("/messages"));
    let err = ch
        .send_message(&bot.http, CreateMessage::new().content("lost"))
        .await;
    assert!(err.is_err(), "serenity does not retry 5xx");
    let statuses: Vec<u16> = emu
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/messages"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![503], "exactly one attempt");
    assert!(emu.messages(ch.get()).is_empty());

    emu.inject_fault(Fault::drop_connection().on_path("/messages"));
    assert!(ch
        .send_message(&bot.http, CreateMessage::new().content("lost too"))
        .await
        .is_err());
    assert!(emu.messages(ch.get()).is_empty());

    // Faults are used up: the next call goes through.
    ch.send_message(&bot.http, CreateMessage::new().content("kept"))
        .await
        .expect("no fault left");
    assert_eq!(emu.messages(ch.get())[0]["content"], "kept");

    bot.stop().await;
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_close_4000_resumes_and_interactions_still_arrive() {
    let emu = start_emulator().await;
    let mut bot = Bot::start(&emu, Mode::PlainProxy).await;
    bot.until(|s| matches!(s, Seen::CommandsRegistered(_))).await;
    let ch = channel(&emu);
    let alice = operator(&emu);

    assert_eq!(emu.gateway_close(4000), 1);
    let stats = emu.wait_gateway(|g| g.resumes >= 1, WAIT).await.expect("resumed");
    assert_eq!(stats.identifies, 1, "resumed, not re-identified");
    assert!(stats.connections >= 2);
    emu.wait_ready(WAIT).await.unwrap();

    let inj = emu
        .slash_command(ch.get(), &alice, "ping", vec![])
        .expect("dispatched");
    assert!(
        matches!(bot.until(|s| matches!(s, Seen::Command { .. })).await, Seen::Command { name, .. } if name == "ping")
    );
    let cb = emu
        .wait_callback(&inj, WAIT)
        .await
        .expect("callback after resume");
    assert_eq!(cb["data"]["flags"], 64);

    // A TCP drop and an op 7 also end in a resume.
    emu.gateway_drop();
    emu.wait_gateway(|g| g.resumes >= 2, WAIT)
        .await
        .expect("resumed after drop");
    emu.gateway_reconnect();
    emu.wait_gateway(|g| g.resumes >= 3, WAIT)
        .await
        .expect("resumed after op 7");
    emu.wait_ready(WAIT).await.unwrap();
    let inj = emu
        .slash_command(ch.get(), &alice, "ping", vec![])
        .expect("dispatched");
    emu.wait_callback(&inj, WAIT).await.expect("callback after op 7");

    bot.stop().await;
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_session_makes_serenity_identify_again() {
    let emu = start_emulator().await;
    let mut bot = Bot::start(&emu, Mode::PlainProxy).await;
    bot.until(|s| matches!(s, Seen::CommandsRegistered(_))).await;

    assert_eq!(emu.gateway_invalid_session(false), 1);
    // serenity waits a few seconds before identifying again; only the outcome is checked.
    emu.wait_gateway(|g| g.identifies >= 2, WAIT)
        .await
        .expect("fresh IDENTIFY after op 9");
    emu.wait_ready(WAIT).await.unwrap();
    let alice = operator(&emu);
    let inj = emu
        .slash_command(channel(&emu).get(), &alice, "ping", vec![])
        .expect("dispatched on the new session");
    emu.wait_callback(&inj, WAIT)
        .await
        .expect("callback on the new session");

    bot.stop().await;
    emu.shutdown().await.unwrap();
}

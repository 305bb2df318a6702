//! The emulator driven by a bare WebSocket / HTTP client: gateway handshake details,
//! validation of injected payloads, authentication, unknown routes, fault windows and
//! the CONNECT policy.

use std::time::Duration;

use discord_emulator::{EmuUser, Emulator, EmulatorConfig, EmulatorError, Fault};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Ws;

const WAIT: Duration = Duration::from_secs(10);
const TOKEN: &str = "raw.test.token";

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig {
        token: Some(TOKEN.into()),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap()
}

async fn recv(ws: &mut Socket) -> Ws {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("frame in time")
        .expect("open")
        .expect("valid frame")
}

async fn recv_json(ws: &mut Socket) -> Value {
    match recv(ws).await {
        Ws::Text(t) => serde_json::from_str(&t).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

async fn send(ws: &mut Socket, v: Value) {
    ws.send(Ws::text(v.to_string())).await.unwrap();
}

async fn connect(emu: &Emulator) -> Socket {
    let (ws, _) = tokio_tungstenite::connect_async(format!("{}/?v=10&encoding=json", emu.gateway_url()))
        .await
        .unwrap();
    ws
}

/// Connects and identifies; returns the socket and the READY payload.
async fn identify(emu: &Emulator) -> (Socket, Value) {
    let mut ws = connect(emu).await;
    let hello = recv_json(&mut ws).await;
    assert_eq!(hello["op"], 10);
    assert!(hello["d"]["heartbeat_interval"].as_u64().unwrap() > 0);
    send(
        &mut ws,
        json!({"op": 2, "d": {"token": format!("Bot {TOKEN}"), "intents": 1, "properties": {}}}),
    )
    .await;
    let ready = recv_json(&mut ws).await;
    (ws, ready)
}

#[tokio::test]
async fn gateway_handshake_heartbeat_resume_and_invalid_session() {
    let emu = emulator().await;
    let (mut ws, ready) = identify(&emu).await;
    assert_eq!(
        (ready["op"].as_u64(), ready["t"].as_str(), ready["s"].as_u64()),
        (Some(0), Some("READY"), Some(1))
    );
    assert_eq!(
        ready["d"]["application"]["id"],
        emu.config().application_id.to_string()
    );
    let guild = recv_json(&mut ws).await;
    assert_eq!(
        (guild["t"].as_str(), guild["s"].as_u64()),
        (Some("GUILD_CREATE"), Some(2))
    );
    assert_eq!(
        guild["d"]["channels"][0]["id"],
        emu.config().channels[0].0.to_string()
    );

    send(&mut ws, json!({"op": 1, "d": 2})).await;
    assert_eq!(recv_json(&mut ws).await["op"], 11);
    emu.wait_ready(WAIT).await.unwrap();

    // Dispatches injected while disconnected are replayed on RESUME, then RESUMED.
    let session = ready["d"]["session_id"].as_str().unwrap().to_string();
    assert_eq!(emu.gateway_close(4000), 1);
    match recv(&mut ws).await {
        Ws::Close(Some(f)) => assert_eq!(u16::from(f.code), 4000),
        other => panic!("expected close 4000, got {other:?}"),
    }
    drop(ws);
    let user = EmuUser::new(7, "bob");
    emu.wait_disconnected(WAIT).await.unwrap();
    let inj = emu
        .slash_command(emu.config().channels[0].0, &user, "ping", vec![])
        .unwrap();
    let mut ws = connect(&emu).await;
    recv_json(&mut ws).await; // HELLO
    send(
        &mut ws,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 2}}),
    )
    .await;
    let replayed = recv_json(&mut ws).await;
    assert_eq!(replayed["t"], "INTERACTION_CREATE");
    assert_eq!(replayed["s"], 3);
    assert_eq!(replayed["d"]["id"], inj.id.to_string());
    assert_eq!(replayed["d"]["member"]["user"]["id"], "7");
    assert_eq!(recv_json(&mut ws).await["t"], "RESUMED");
    assert_eq!(emu.gateway_stats().resumes, 1);

    // op 9 not resumable: the session is gone, a RESUME is refused with op 9.
    assert_eq!(emu.gateway_invalid_session(false), 1);
    assert_eq!(
        recv_json(&mut ws).await,
        json!({"op": 9, "s": null, "t": null, "d": false})
    );
    send(
        &mut ws,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 4}}),
    )
    .await;
    assert_eq!(recv_json(&mut ws).await["op"], 9);

    assert_eq!(emu.gateway_reconnect(), 1);
    assert_eq!(recv_json(&mut ws).await["op"], 7);
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrong_gateway_token_is_closed_with_4004() {
    let emu = emulator().await;
    let mut ws = connect(&emu).await;
    recv_json(&mut ws).await;
    send(
        &mut ws,
        json!({"op": 2, "d": {"token": "Bot wrong", "intents": 1, "properties": {}}}),
    )
    .await;
    match recv(&mut ws).await {
        Ws::Close(Some(f)) => assert_eq!(u16::from(f.code), 4004),
        other => panic!("expected close 4004, got {other:?}"),
    }
    assert!(matches!(
        emu.slash_command(1, &EmuUser::new(7, "bob"), "ping", vec![]),
        Err(EmulatorError::NoGatewaySession)
    ));
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn dispatch_serenity_cannot_read_is_refused() {
    let emu = emulator().await;
    let (_ws, _) = identify(&emu).await;
    emu.wait_ready(WAIT).await.unwrap();
    let err = emu
        .dispatch("INTERACTION_CREATE", json!({"id": "1", "type": 2}))
        .unwrap_err();
    assert!(matches!(err, EmulatorError::InvalidPayload(_)), "{err}");
    let err = emu.dispatch("NOT_AN_EVENT", json!({})).unwrap_err();
    assert!(matches!(err, EmulatorError::InvalidPayload(_)), "{err}");
    emu.shutdown().await.unwrap();
}

/// Discord's documented agent shape; the emulator refuses requests without one.
const AGENT: &str = "DiscordBot (https://example.org/raw-test, 1.0)";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .user_agent(AGENT)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_request_without_discords_agent_is_refused_like_cloudflare_does() {
    let emu = emulator().await;
    let me = format!("{}/api/v10/users/@me", emu.proxy_url());
    let bare = reqwest::Client::builder().no_proxy().build().unwrap();
    for agent in [None, Some("curl/8.0"), Some("DiscordBot (no-url)")] {
        let mut req = bare.get(&me).header("authorization", format!("Bot {TOKEN}"));
        if let Some(a) = agent {
            req = req.header("user-agent", a);
        }
        assert_eq!(req.send().await.unwrap().status(), 403, "{agent:?}");
    }
    let ok = client()
        .get(&me)
        .header("authorization", format!("Bot {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn rest_auth_unknown_routes_and_fault_windows() {
    let emu = emulator().await;
    let base = emu.proxy_url();
    let http = client();
    let me = format!("{base}/api/v10/users/@me");

    assert_eq!(http.get(&me).send().await.unwrap().status(), 401);
    let ok = http
        .get(&me)
        .header("authorization", format!("Bot {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.json::<Value>().await.unwrap()["id"],
        emu.config().bot_user_id.to_string()
    );

    let gw: Value = http
        .get(format!("{base}/api/v10/gateway"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gw["url"], emu.gateway_url());

    let nf = http
        .post(format!("{base}/api/v10/guilds/1/bans/2"))
        .header("authorization", format!("Bot {TOKEN}"))
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(nf.status(), 404);
    assert!(nf.json::<Value>().await.unwrap()["message"].is_string());
    let unexpected = emu.unexpected_requests();
    assert_eq!(unexpected.len(), 1);
    assert_eq!(unexpected[0].path, "/guilds/1/bans/2");
    assert_eq!(unexpected[0].body.json(), Some(&json!({"reason": "x"})));

    // Unknown channel, then a window of 503s until cleared.
    let post = |ch: u64| {
        http.post(format!("{base}/api/v10/channels/{ch}/messages"))
            .header("authorization", format!("Bot {TOKEN}"))
            .json(&json!({"content": "hi"}))
            .send()
    };
    assert_eq!(post(42).await.unwrap().status(), 404);
    let ch = emu.config().channels[0].0;
    emu.inject_fault(
        Fault::status(503)
            .for_duration(Duration::from_secs(3600))
            .on_path("/messages"),
    );
    for _ in 0..3 {
        assert_eq!(post(ch).await.unwrap().status(), 503);
    }
    assert_eq!(
        http.get(&me)
            .header("authorization", format!("Bot {TOKEN}"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "other paths unaffected"
    );
    emu.clear_faults();
    let created = post(ch).await.unwrap();
    assert_eq!(created.status(), 200);
    assert_eq!(emu.messages(ch).len(), 1);

    emu.inject_fault(Fault::global_rate_limited(Duration::from_millis(1500)));
    let limited = http.get(&me).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1.5");
    assert_eq!(limited.headers()["x-ratelimit-global"], "true");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["retry_after"], 1.5);
    assert_eq!(body["global"], true);
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn connect_only_to_discord_and_only_when_enabled() {
    let emu = emulator().await;
    let proxied = |host: &'static str| {
        let client = reqwest::Client::builder()
            .user_agent(AGENT)
            .proxy(reqwest::Proxy::all(emu.https_proxy_url()).unwrap())
            .add_root_certificate(
                reqwest::Certificate::from_pem(emu.ca_cert_pem().unwrap().as_bytes()).unwrap(),
            )
            .build()
            .unwrap();
        async move { client.get(format!("https://{host}/api/v10/gateway")).send().await }
    };
    let ok = proxied("discord.com").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(emu.requests().last().unwrap().tls);
    assert!(
        proxied("example.org").await.is_err(),
        "CONNECT to another host is refused"
    );
    emu.shutdown().await.unwrap();

    let plain = Emulator::start(EmulatorConfig {
        https_proxy: false,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    assert!(plain.ca_cert_pem().is_none());
    plain.shutdown().await.unwrap();
}

#[tokio::test]
async fn user_message_is_dispatched_and_stored() {
    let emu = emulator().await;
    let (mut ws, _) = identify(&emu).await;
    recv_json(&mut ws).await; // GUILD_CREATE
    emu.wait_ready(WAIT).await.unwrap();
    let ch = emu.config().channels[0].0;
    let bob = EmuUser::new(7, "bob").with_roles([emu.config().roles[0].0]);
    let msg = emu.post_user_message(ch, &bob, "!status").unwrap();
    let frame = recv_json(&mut ws).await;
    assert_eq!(frame["t"], "MESSAGE_CREATE");
    assert_eq!(frame["d"]["content"], "!status");
    assert_eq!(frame["d"]["author"]["id"], "7");
    assert_eq!(emu.public_messages(ch), vec![msg.clone()]);

    // The bot cannot edit someone else's message, and the refusal is recorded.
    let url = format!(
        "{}/api/v10/channels/{ch}/messages/{}",
        emu.proxy_url(),
        msg["id"].as_str().unwrap()
    );
    let resp = client()
        .patch(url)
        .header("authorization", format!("Bot {TOKEN}"))
        .json(&json!({"content": "hijacked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let reqs = emu
        .wait_for(|r| r.iter().any(|r| r.method == "PATCH"), WAIT)
        .await
        .unwrap();
    assert_eq!(reqs.last().unwrap().status, 403);
    assert_eq!(emu.messages(ch)[0]["content"], "!status");
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_enforced_nonce_creates_a_message_once() {
    let emu = emulator().await;
    let base = emu.proxy_url();
    let http = client();
    let ch = emu.config().channels[0].0;
    let post = |body: Value| {
        http.post(format!("{base}/api/v10/channels/{ch}/messages"))
            .header("authorization", format!("Bot {TOKEN}"))
            .json(&body)
            .send()
    };
    let first: Value = post(json!({"content": "once", "nonce": "n-1", "enforce_nonce": true}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again: Value = post(json!({"content": "once", "nonce": "n-1", "enforce_nonce": true}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["id"], first["id"], "the same message is returned");
    assert_eq!(first["nonce"], "n-1");
    // Without enforce_nonce, Discord does not deduplicate.
    post(json!({"content": "twice", "nonce": "n-2"})).await.unwrap();
    post(json!({"content": "twice", "nonce": "n-2"})).await.unwrap();
    let contents: Vec<Value> = emu.messages(ch).iter().map(|m| m["content"].clone()).collect();
    assert_eq!(contents, [json!("once"), json!("twice"), json!("twice")]);
    emu.shutdown().await.unwrap();
}

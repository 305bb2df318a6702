//! The emulated gateway WebSocket on 127.0.0.1: HELLO, IDENTIFY → READY (+ GUILD_CREATE),
//! heartbeats, RESUME → RESUMED with replay of missed dispatches, and the disconnects tests
//! order through [`crate::Emulator`] (close codes, TCP drop, op 7, op 9).

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::payloads::{self, check_gateway_frame, GuildSpec};
use crate::state::{spawn_scoped, GwControl, Session, Shared};

pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let mut next_conn = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "emulator gateway accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        next_conn += 1;
        let sh = shared.clone();
        let conn_id = next_conn;
        spawn_scoped(&shared, async move {
            connection(sh.clone(), stream, conn_id).await;
            // Whatever ended the connection, it no longer carries a session.
            sh.update(|i| {
                i.connections.remove(&conn_id);
                for s in i.sessions.values_mut() {
                    if s.conn == Some(conn_id) {
                        s.conn = None;
                    }
                }
            });
        });
    }
}

/// Sequences a dispatch in `session`, validates it and returns the frame to send.
pub(crate) fn sequence_dispatch(
    shared: &Shared,
    session: &str,
    t: &str,
    d: Value,
) -> Result<Value, crate::EmulatorError> {
    shared.update(|i| {
        let s = i
            .sessions
            .get_mut(session)
            .ok_or(crate::EmulatorError::NoGatewaySession)?;
        let frame = json!({"op": 0, "s": s.seq + 1, "t": t, "d": d});
        if shared.cfg.validate {
            check_gateway_frame(&frame).map_err(crate::EmulatorError::InvalidPayload)?;
        }
        s.seq += 1;
        s.sent.push(frame.clone());
        Ok(frame)
    })
}

async fn connection(shared: Arc<Shared>, stream: TcpStream, conn_id: u64) {
    let mut ws = match tokio_tungstenite::accept_async(stream).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(error = %e, "gateway handshake failed");
            return;
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    shared.update(|i| {
        i.connections.insert(conn_id, tx);
        i.gateway.connections += 1;
    });
    let hello = json!({"op": 10, "s": null, "t": null, "d": {"heartbeat_interval": shared.cfg.heartbeat_interval.as_millis() as u64}});
    if ws.send(WsMessage::text(hello.to_string())).await.is_err() {
        return;
    }
    let mut session: Option<String> = None;
    loop {
        tokio::select! {
            incoming = ws.next() => {
                let msg = match incoming {
                    Some(Ok(m)) => m,
                    _ => return,
                };
                let text = match msg {
                    WsMessage::Text(t) => t,
                    WsMessage::Binary(b) => String::from_utf8_lossy(&b).to_string(),
                    WsMessage::Close(frame) => {
                        // Echo the close so the client does not wait for a timeout.
                        let _ = ws.send(WsMessage::Close(frame)).await;
                        return;
                    }
                    _ => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    let _ = close(&mut ws, 4002).await;
                    return;
                };
                let out = match v["op"].as_u64() {
                    Some(1) => {
                        shared.update(|i| i.gateway.heartbeats += 1);
                        vec![json!({"op": 11, "s": null, "t": null, "d": null})]
                    }
                    Some(2) => match identify(&shared, conn_id, &v) {
                        Ok((sid, frames)) => { session = Some(sid); frames }
                        Err(code) => { let _ = close(&mut ws, code).await; return; }
                    },
                    Some(6) => match resume(&shared, conn_id, &v) {
                        Some((sid, frames)) => { session = Some(sid); frames }
                        None => vec![json!({"op": 9, "s": null, "t": null, "d": false})],
                    },
                    // Presence and voice updates, request members: accepted and ignored.
                    Some(3) | Some(4) | Some(8) => vec![],
                    _ => { let _ = close(&mut ws, 4001).await; return; }
                };
                for f in out {
                    if ws.send(WsMessage::text(f.to_string())).await.is_err() {
                        return;
                    }
                }
            }
            ctl = rx.recv() => {
                let Some(ctl) = ctl else { return };
                match ctl {
                    GwControl::Frame(f) => {
                        if ws.send(WsMessage::text(f.to_string())).await.is_err() { return; }
                    }
                    GwControl::Close(code) => { let _ = close(&mut ws, code).await; return; }
                    GwControl::Drop => return,
                    GwControl::Reconnect => {
                        let f = json!({"op": 7, "s": null, "t": null, "d": null});
                        if ws.send(WsMessage::text(f.to_string())).await.is_err() { return; }
                    }
                    GwControl::InvalidSession(resumable) => {
                        if !resumable {
                            if let Some(sid) = &session {
                                shared.update(|i| if let Some(s) = i.sessions.get_mut(sid) { s.valid = false; });
                            }
                        }
                        let f = json!({"op": 9, "s": null, "t": null, "d": resumable});
                        if ws.send(WsMessage::text(f.to_string())).await.is_err() { return; }
                    }
                }
            }
        }
    }
}

async fn close(
    ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    code: u16,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    ws.send(WsMessage::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: "emulator".into(),
    })))
    .await?;
    // Give the client the chance to answer the close; bounded so shutdown never hangs.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), async {
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    Ok(())
}

fn token_ok(shared: &Shared, token: Option<&str>) -> bool {
    match (&shared.cfg.token, token) {
        (None, _) => true,
        (Some(expected), Some(got)) => got == expected || got.strip_prefix("Bot ") == Some(expected),
        (Some(_), None) => false,
    }
}

/// IDENTIFY → READY (+ GUILD_CREATE). Err(close code) on a bad token.
fn identify(shared: &Shared, conn_id: u64, v: &Value) -> Result<(String, Vec<Value>), u16> {
    if !token_ok(shared, v["d"]["token"].as_str()) {
        return Err(4004);
    }
    let cfg = &shared.cfg;
    let sid = format!("emu-session-{}", shared.snowflake());
    shared.update(|i| {
        i.sessions.insert(
            sid.clone(),
            Session {
                seq: 0,
                sent: Vec::new(),
                conn: Some(conn_id),
                valid: true,
            },
        );
        i.current_session = Some(sid.clone());
        i.gateway.identifies += 1;
    });
    let ready = json!({
        "v": 10,
        "user": payloads::bot_user_json(cfg.bot_user_id, &cfg.bot_name),
        "guilds": [{"id": cfg.guild_id.to_string(), "unavailable": true}],
        "session_id": sid,
        "resume_gateway_url": shared.gateway_url(),
        "shard": [0, 1],
        "application": {"id": cfg.application_id.to_string(), "flags": 0},
        "private_channels": [],
        "presences": [],
        "relationships": [],
    });
    let mut frames = Vec::new();
    match sequence_dispatch(shared, &sid, "READY", ready) {
        Ok(f) => frames.push(f),
        Err(e) => report_invalid(shared, e),
    }
    if cfg.send_guild_create {
        let spec = GuildSpec {
            id: cfg.guild_id,
            name: &cfg.guild_name,
            owner_id: cfg.bot_user_id,
            roles: &cfg.roles,
            channels: &cfg.channels,
        };
        match sequence_dispatch(shared, &sid, "GUILD_CREATE", payloads::guild_create_json(&spec)) {
            Ok(f) => frames.push(f),
            Err(e) => report_invalid(shared, e),
        }
    }
    shared.update(|i| i.gateway.ready_sent += 1);
    Ok((sid, frames))
}

fn report_invalid(shared: &Shared, e: crate::EmulatorError) {
    match e {
        crate::EmulatorError::InvalidPayload(v) => shared.record_validation(v),
        other => tracing::error!(error = %other, "gateway payload not sent"),
    }
}

/// RESUME → missed dispatches + RESUMED, or None (→ op 9) for an unknown session.
fn resume(shared: &Shared, conn_id: u64, v: &Value) -> Option<(String, Vec<Value>)> {
    if !token_ok(shared, v["d"]["token"].as_str()) {
        return None;
    }
    let sid = v["d"]["session_id"].as_str()?.to_string();
    let client_seq = v["d"]["seq"].as_u64().unwrap_or(0);
    let missed = shared.update(|i| {
        let s = i.sessions.get_mut(&sid).filter(|s| s.valid)?;
        s.conn = Some(conn_id);
        let missed: Vec<Value> = s
            .sent
            .iter()
            .filter(|f| f["s"].as_u64().unwrap_or(0) > client_seq)
            .cloned()
            .collect();
        i.current_session = Some(sid.clone());
        i.gateway.resumes += 1;
        Some(missed)
    })?;
    let mut frames = missed;
    if let Ok(f) = sequence_dispatch(shared, &sid, "RESUMED", json!({})) {
        frames.push(f);
    }
    Some((sid, frames))
}

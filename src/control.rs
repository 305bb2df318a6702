//! The control socket: how `trainwatch send` reaches the supervisor from another terminal, as
//! another login. A Unix socket in the supervisor's state folder; the kernel tells the
//! supervisor who connected (`SO_PEERCRED`), so the sender's identity is established by
//! trainwatch and never taken from what the sender writes — the request has no field for it.
//! Roles come from the supervisor's own config, looked up by the peer's login.
//!
//! A command is carried out while its sender waits on the connection: there is no queue, so
//! nothing can be replayed later or outlive the supervisor it was meant for (a `/kill` sent
//! while no supervisor runs fails at once instead of waiting for the next one). Everything a
//! peer can make the supervisor do is bounded: one request line of at most [`MAX_REQUEST`]
//! bytes, read within [`READ_TIMEOUT`], answered within the handler's own limit.
//!
//! Who may connect is the socket file's mode: owner and group (0660), in a folder the
//! supervisor's login owns. To let a second login send, give the state folder a group both
//! belong to, setgid (`chgrp trainers state && chmod 2770 state`): the socket inherits it.

use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, warn};

/// Longest request line a peer may send.
pub const MAX_REQUEST: usize = 4096;
/// How long a peer has to send its request once connected.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Mode of the socket file: owner and group may connect, others may not.
pub const SOCKET_MODE: u32 = 0o660;

/// The socket's file name in the supervisor's state folder.
pub fn socket_path(state_root: &Path) -> PathBuf {
    state_root.join("control.sock")
}

/// What a sender asks: one command line, as typed at a console (`/validate approve m3 ok`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub line: String,
}

/// One answer line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub accepted: bool,
    pub text: String,
}

/// Who is on the other end, as the kernel says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
    /// The login of `uid` (from the user database; `uid<N>` when it has none).
    pub login: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot use the control socket {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("no trainwatch is supervising with the state folder of this store (nothing listens on {path})")]
    NotRunning { path: PathBuf },
    #[error("permission denied on {path}: ask the supervisor's owner to give your login its group (see `trainwatch send --help`)")]
    Denied { path: PathBuf },
    #[error("the supervisor did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the command is longer than {MAX_REQUEST} bytes")]
    TooLong,
    #[error("the supervisor sent an answer this trainwatch cannot read: {0}")]
    Protocol(String),
}

/// The login name of a user id, from the user database (never from the environment).
pub fn login_of(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => format!("uid{uid}"),
    }
}

/// Listen on the socket (inside a tokio runtime). A socket file left by a supervisor that
/// died is replaced; one that a live supervisor listens on is not (that supervisor holds the
/// store's lock anyway).
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io_err = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io_err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another supervisor listens on it",
            )));
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE)).map_err(io_err)?;
    Ok(listener)
}

/// Serve peers until `shutdown` resolves: each connection is read (one request), handed to
/// `handler` with the peer's identity, and answered. Connections are served one task each.
pub async fn serve<H, F>(listener: UnixListener, handler: H, shutdown: impl Future<Output = ()>)
where
    H: Fn(Peer, Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Vec<Answer>> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve_one(stream, handler).await {
                            debug!(error = %e, "control connection ended");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn serve_one<H, F>(stream: UnixStream, handler: H) -> io::Result<()>
where
    H: Fn(Peer, Request) -> F,
    F: Future<Output = Vec<Answer>>,
{
    let cred = stream.peer_cred()?;
    let peer = Peer {
        uid: cred.uid(),
        pid: cred.pid(),
        login: login_of(cred.uid()),
    };
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let mut limited = BufReader::new(read).take(MAX_REQUEST as u64 + 1);
    let read = limited.read_until(b'\n', &mut line);
    let answers = match tokio::time::timeout(READ_TIMEOUT, read).await {
        Err(_) => vec![refusal(format!("no request within {READ_TIMEOUT:?}"))],
        Ok(Err(e)) => return Err(e),
        Ok(Ok(_)) if line.len() > MAX_REQUEST => {
            vec![refusal(format!("request longer than {MAX_REQUEST} bytes"))]
        }
        Ok(Ok(_)) => match serde_json::from_slice::<Request>(&line) {
            Ok(req) => handler(peer, req).await,
            Err(e) => vec![refusal(format!("unreadable request: {e}"))],
        },
    };
    for a in answers {
        let mut out = serde_json::to_vec(&a).map_err(io::Error::other)?;
        out.push(b'\n');
        write.write_all(&out).await?;
    }
    write.shutdown().await
}

fn refusal(text: String) -> Answer {
    Answer {
        accepted: false,
        text,
    }
}

/// Send one command line and wait (at most `wait`) for the answers.
pub async fn send(path: &Path, line: &str, wait: Duration) -> Result<Vec<Answer>, ControlError> {
    if line.len() + 16 > MAX_REQUEST {
        return Err(ControlError::TooLong);
    }
    let stream = match UnixStream::connect(path).await {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(ControlError::Denied {
                path: path.to_path_buf(),
            })
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ControlError::NotRunning {
                path: path.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(ControlError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let exchange = async {
        let (read, mut write) = stream.into_split();
        let mut req = serde_json::to_vec(&Request {
            line: line.to_string(),
        })
        .map_err(io::Error::other)?;
        req.push(b'\n');
        write.write_all(&req).await?;
        write.shutdown().await?;
        let mut answers = Vec::new();
        let mut lines = BufReader::new(read).lines();
        while let Some(l) = lines.next_line().await? {
            answers.push(
                serde_json::from_str::<Answer>(&l)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            );
        }
        Ok::<_, io::Error>(answers)
    };
    match tokio::time::timeout(wait, exchange).await {
        Err(_) => Err(ControlError::Timeout(wait)),
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => Err(ControlError::Protocol(e.to_string())),
        Ok(Err(source)) => Err(ControlError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(Peer, Request)>>>;

    async fn server(dir: &Path) -> (PathBuf, Seen, tokio::sync::oneshot::Sender<()>) {
        let path = socket_path(dir);
        let listener = bind(&path).unwrap();
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(
            listener,
            move |peer: Peer, req: Request| {
                let s = s.clone();
                async move {
                    let text = format!("{} asked {}", peer.login, req.line);
                    s.lock().unwrap().push((peer, req));
                    vec![Answer { accepted: true, text }]
                }
            },
            async {
                let _ = stopped.await;
            },
        ));
        (path, seen, stop)
    }

    #[tokio::test]
    async fn the_peer_is_who_the_kernel_says() {
        let dir = tempfile::tempdir().unwrap();
        let (path, seen, _stop) = server(dir.path()).await;
        let answers = send(&path, "/status m", Duration::from_secs(5)).await.unwrap();
        assert_eq!(answers.len(), 1);
        assert!(answers[0].accepted);
        let seen = seen.lock().unwrap();
        let (peer, req) = &seen[0];
        assert_eq!(peer.uid, nix::unistd::getuid().as_raw());
        assert_eq!(peer.pid, Some(std::process::id() as i32));
        assert_eq!(peer.login, login_of(peer.uid));
        assert_eq!(req.line, "/status m");
    }

    /// A sender cannot claim to be someone else: the request has no such field, and one that
    /// adds it is refused before the handler sees anything.
    #[tokio::test]
    async fn a_claimed_identity_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, seen, _stop) = server(dir.path()).await;
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(b"{\"line\":\"/kill m\",\"by\":\"director\"}\n")
            .await
            .unwrap();
        s.shutdown().await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let a: Answer = serde_json::from_str(out.trim()).unwrap();
        assert!(!a.accepted && a.text.contains("unknown field"), "{a:?}");
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_oversized_request_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let (path, seen, _stop) = server(dir.path()).await;
        let long = "x".repeat(MAX_REQUEST * 2);
        assert!(matches!(
            send(&path, &long, Duration::from_secs(5)).await,
            Err(ControlError::TooLong)
        ));
        // A peer that sends it anyway: the server reads no more than the limit, answers and
        // closes (the kernel resets a connection closed with unread data, so the peer sees the
        // refusal or the reset).
        let mut s = UnixStream::connect(&path).await.unwrap();
        let _ = s.write_all(format!("{{\"line\":\"{long}\"}}\n").as_bytes()).await;
        let mut out = String::new();
        let r = s.read_to_string(&mut out).await;
        let reset = matches!(&r, Err(e) if e.kind() == io::ErrorKind::ConnectionReset);
        assert!(out.contains("longer than") || reset, "{out} {r:?}");
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn nothing_listening_fails_at_once_and_nothing_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(dir.path());
        let err = send(&path, "/kill m", Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, ControlError::NotRunning { .. }), "{err}");
        // A socket file left behind by a supervisor that died: still nothing listens.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let err = send(&path, "/kill m", Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, ControlError::NotRunning { .. }), "{err}");
        // The next supervisor replaces that stale file and serves.
        let (path, _seen, _stop) = server(dir.path()).await;
        assert!(send(&path, "/status", Duration::from_secs(5)).await.unwrap()[0].accepted);
    }

    #[tokio::test]
    async fn a_live_supervisors_socket_is_not_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _seen, _stop) = server(dir.path()).await;
        assert!(bind(&path).is_err());
        assert!(send(&path, "/status", Duration::from_secs(5)).await.unwrap()[0].accepted);
    }

    #[tokio::test]
    async fn the_socket_is_closed_to_other_logins() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _seen, _stop) = server(dir.path()).await;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, SOCKET_MODE);
    }

    // Paused time: the timeout passes in virtual time while the peer stays silent.
    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_dropped_after_the_read_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let (path, seen, _stop) = server(dir.path()).await;
        let mut s = UnixStream::connect(&path).await.unwrap();
        // Say nothing; the server answers with a refusal once READ_TIMEOUT has passed.
        let mut out = String::new();
        tokio::time::timeout(READ_TIMEOUT * 3, s.read_to_string(&mut out))
            .await
            .expect("the server gives up on a silent peer")
            .unwrap();
        assert!(out.contains("no request"), "{out}");
        assert!(seen.lock().unwrap().is_empty());
    }
}

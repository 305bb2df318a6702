//! HTTP transport of the emulated REST API on 127.0.0.1: plain requests (serenity's
//! `HttpBuilder::proxy` mode, paths `/api/v10/...`) and an HTTPS proxy mode where
//! `CONNECT discord.com:443` is accepted and TLS is terminated with a test certificate.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::rest::{self, Incoming, Reply};
use crate::state::{spawn_scoped, Shared};

/// Hosts the HTTPS proxy mode agrees to impersonate.
pub(crate) const TLS_HOSTS: &[&str] = &["discord.com", "discordapp.com", "www.discord.com"];

/// Error that makes hyper drop the connection without an answer (fault injection).
#[derive(Debug)]
struct DropConnection;
impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("emulated connection drop")
    }
}
impl std::error::Error for DropConnection {}

type Resp = Response<Full<Bytes>>;

/// Accepts connections until shutdown.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "emulator HTTP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let sh = shared.clone();
        spawn_scoped(&shared, async move {
            let svc = hyper::service::service_fn(move |req| handle(sh.clone(), req, false));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "emulator HTTP connection ended");
            }
        });
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Body>, tls: bool) -> Result<Resp, DropConnection> {
    if req.method() == Method::CONNECT {
        return Ok(connect(shared, req));
    }
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(DropConnection),
    };
    let reply = rest::handle(
        &shared,
        Incoming {
            method: &method,
            path: &path,
            query: query.as_deref(),
            headers,
            body: &body,
            tls,
        },
    );
    match reply {
        Reply::DropConnection => Err(DropConnection),
        Reply::Respond {
            status,
            headers,
            body,
        } => {
            let mut b = Response::builder().status(status);
            for (k, v) in headers {
                b = b.header(k, v);
            }
            let bytes = match body {
                Some(v) => {
                    b = b.header("content-type", "application/json");
                    Bytes::from(v.to_string())
                }
                None => Bytes::new(),
            };
            Ok(b.body(Full::new(bytes))
                .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR)))
        }
    }
}

fn plain(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// `CONNECT host:443`: answer 200, then speak TLS on the upgraded stream and serve the
/// same REST API inside it.
fn connect(shared: Arc<Shared>, req: Request<Body>) -> Resp {
    let authority = req.uri().authority().map(|a| a.to_string()).unwrap_or_default();
    let host = authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(&authority)
        .to_string();
    let Some(tls) = shared.tls.clone() else {
        tracing::warn!("CONNECT refused: the emulator was started without the HTTPS proxy mode");
        return plain(StatusCode::METHOD_NOT_ALLOWED);
    };
    if !TLS_HOSTS.contains(&host.as_str()) {
        tracing::warn!(%authority, "CONNECT refused: the emulator only impersonates Discord's API host");
        return plain(StatusCode::FORBIDDEN);
    }
    let sh = shared.clone();
    spawn_scoped(&shared, async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "CONNECT upgrade failed");
                return;
            }
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let stream = match acceptor.accept(TokioIo::new(upgraded)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "TLS handshake with client failed");
                return;
            }
        };
        let svc = hyper::service::service_fn(move |req| handle(sh.clone(), req, true));
        if let Err(e) = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .await
        {
            tracing::debug!(error = %e, "emulator HTTPS connection ended");
        }
    });
    plain(StatusCode::OK)
}

/// A fresh test CA and a server certificate for Discord's API hosts signed by it.
/// Returns (CA certificate PEM, rustls server config).
pub(crate) fn make_tls() -> Result<(String, Arc<rustls::ServerConfig>), crate::EmulatorError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    };
    let tls_err = |e: &dyn std::fmt::Display| crate::EmulatorError::Tls(e.to_string());

    let ca_key = KeyPair::generate().map_err(|e| tls_err(&e))?;
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "discord-emulator test CA");
    ca_params.distinguished_name = dn;
    let ca = ca_params.self_signed(&ca_key).map_err(|e| tls_err(&e))?;

    let leaf_key = KeyPair::generate().map_err(|e| tls_err(&e))?;
    let mut leaf_params = CertificateParams::new(TLS_HOSTS.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .map_err(|e| tls_err(&e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "discord.com");
    leaf_params.distinguished_name = dn;
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .map_err(|e| tls_err(&e))?;

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let chain = vec![leaf.der().clone(), ca.der().clone()];
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls_err(&e))?;
    // HTTP/1.1 only: the REST service is served by hyper's http1 connection.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca.pem(), Arc::new(cfg)))
}

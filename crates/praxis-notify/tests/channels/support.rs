//! Test fixtures: the aiosmtpd child process (in `smtp_sink`) and the axum webhook receiver.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use praxis_notify::workers::channels::standard_webhooks::{self, Secret, WebhookHeaders};
use praxis_notify::workers::channels::{Outgoing, WebhookSettings};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::smtp_sink::SmtpServer;

/// The test signing secret (the Standard Webhooks spec's example key).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Webhook settings of the tests (the SSRF guard off: receivers are on 127.0.0.1).
pub fn webhook_settings(timeout: Duration) -> WebhookSettings {
    WebhookSettings {
        secret: SECRET.to_owned(),
        timeout,
        user_agent: "praxis-notify-test/1".to_owned(),
        // The receivers listen on 127.0.0.1: the SSRF guard would refuse them.
        ssrf: praxis_notify::domain::ssrf::SsrfPolicy::allow_all(),
        trust: praxis_infra::tls::TrustPolicy::system(),
    }
}

pub fn outgoing(id: &str, address: &str) -> Outgoing {
    Outgoing {
        delivery_id: id.to_owned(),
        address: address.to_owned(),
        subject: "Héllo ✓".to_owned(),
        text: "Hi Ada,\nyour order shipped.\n".to_owned(),
        html: None,
        event_type: "order.shipped".to_owned(),
        data: serde_json::json!({"order": 42, "name": "Ada"}),
        unsubscribe_url: None,
    }
}

/// A fresh UUIDv7 text, like the pipeline's delivery ids.
pub fn delivery_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A port on which nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One request as the webhook receiver saw it.
#[derive(Debug, Clone)]
pub struct ReceivedHook {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The result of `standard_webhooks::verify` against [`SECRET`] with a 5 minute tolerance.
    pub verified: Result<(), standard_webhooks::VerifyError>,
}

impl ReceivedHook {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the receiver answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'static str,
    /// Wait this long before answering (for the timeout case).
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: "",
            delay: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: &'static str) -> Reply {
        self.body = body;
        self
    }

    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<ReceivedHook>>,
    /// Scripted replies in order; 204 once they run out.
    replies: Mutex<VecDeque<Reply>>,
}

/// An axum server on 127.0.0.1:0 that records and verifies every request.
pub struct Receiver {
    pub addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

/// A TLS listener for axum: each connection completes its handshake before axum sees it; a
/// failed handshake (a client that refuses the certificate) is skipped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let secret = Secret::parse(SECRET).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let verified = WebhookHeaders::from_header_map(&headers)
        .and_then(|h| standard_webhooks::verify(&secret, &h, &body, now, 300));
    state.received.lock().push(ReceivedHook {
        path: uri.path().to_owned(),
        headers,
        body,
        verified,
    });
    let reply = state
        .replies
        .lock()
        .pop_front()
        .unwrap_or_else(|| Reply::status(204));
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            addr,
            scheme: "http",
            state,
            task,
        }
    }

    /// The receiver over HTTPS, presenting the certificate `cert_pem` (with its key).
    pub async fn start_tls(cert_pem: &std::path::Path, key_pem: &std::path::Path) -> Receiver {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(cert_pem)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key_pem).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        };
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            addr,
            scheme: "https",
            state,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// Queues the replies to the next requests.
    pub fn reply_with(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.replies.lock().extend(replies);
    }

    pub fn received(&self) -> Vec<ReceivedHook> {
        self.state.received.lock().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

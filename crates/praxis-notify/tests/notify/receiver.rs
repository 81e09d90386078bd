//! A real webhook receiver: an axum server on 127.0.0.1 that verifies every request's
//! Standard Webhooks signature, answers as its mode says, and records what it saw.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::oneshot;

use praxis_notify::workers::channels::standard_webhooks::{Secret, WebhookHeaders, verify};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 204 to every request.
    Ok,
    /// 503 to every other request (the 1st, 3rd, ...), 204 to the others.
    FailEveryOther,
    /// This status to every request (with `Retry-After: 0` for 429 and 503).
    Status(u16),
}

/// One request the receiver accepted (answered 2xx).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `webhook-id`.
    pub id: String,
    /// The JSON body.
    pub body: Value,
    /// When it arrived, unix ms.
    pub at_ms: i64,
}

#[derive(Debug, Default)]
struct Seen {
    requests: u64,
    bad_signatures: u64,
    accepted: Vec<Delivery>,
    refused_by_id: HashMap<String, u64>,
}

#[derive(Clone)]
struct Shared {
    secret: Secret,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Seen>>,
}

/// A running receiver (stopped when dropped).
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn now_ms() -> i64 {
    praxis_notify::domain::model::now_ms()
}

async fn handle(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = WebhookHeaders::from_header_map(&headers)
        .map_err(|e| e.to_string())
        .and_then(|h| {
            verify(&s.secret, &h, &body, now_ms() / 1000, 300)
                .map(|()| h.id.to_owned())
                .map_err(|e| e.to_string())
        });
    let id = match parsed {
        Ok(id) => id,
        Err(e) => {
            s.seen.lock().bad_signatures += 1;
            return (StatusCode::UNAUTHORIZED, e).into_response();
        }
    };
    let mode = *s.mode.lock();
    let mut seen = s.seen.lock();
    seen.requests += 1;
    let status = match mode {
        Mode::Ok => 204,
        Mode::FailEveryOther => {
            if seen.requests % 2 == 1 {
                503
            } else {
                204
            }
        }
        Mode::Status(code) => code,
    };
    if (200..300).contains(&status) {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        seen.accepted.push(Delivery {
            id,
            body,
            at_ms: now_ms(),
        });
        return StatusCode::NO_CONTENT.into_response();
    }
    *seen.refused_by_id.entry(id).or_default() += 1;
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if matches!(status, 429 | 503) {
        (code, [("retry-after", "0")], "try again").into_response()
    } else {
        (code, "refused").into_response()
    }
}

impl Receiver {
    /// Starts a receiver on a free port.
    pub async fn start(secret: &str) -> Receiver {
        Self::start_on(secret, 0).await
    }

    /// Starts a receiver on `port` (retrying a little while the port is still taken).
    pub async fn start_on(secret: &str, port: u16) -> Receiver {
        let shared = Shared {
            secret: Secret::parse(secret).expect("test secret"),
            mode: Arc::new(Mutex::new(Mode::Ok)),
            seen: Arc::new(Mutex::new(Seen::default())),
        };
        Self::serve(shared, port).await
    }

    async fn serve(shared: Shared, port: u16) -> Receiver {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => break l,
                Err(e) if tries < 100 => {
                    tries += 1;
                    tracing::debug!(error = %e, port, "receiver port busy; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot bind the receiver on port {port}: {e}"),
            }
        };
        let addr = listener.local_addr().expect("receiver address");
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            addr,
            shared,
            stop: Some(stop),
        }
    }

    /// Stops listening (connections are refused until [`Receiver::restart`]).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Listens again on the same port, keeping what it saw.
    pub async fn restart(&mut self) {
        self.stop();
        let mut again = Self::serve(self.shared.clone(), self.addr.port()).await;
        self.stop = again.stop.take();
    }

    /// A URL on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes how it answers.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock() = mode;
    }

    /// Requests accepted (2xx), in arrival order.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.shared.seen.lock().accepted.clone()
    }

    /// How many requests were accepted per `webhook-id`.
    pub fn accepted_per_id(&self) -> HashMap<String, u64> {
        let mut out = HashMap::new();
        for d in &self.shared.seen.lock().accepted {
            *out.entry(d.id.clone()).or_default() += 1;
        }
        out
    }

    /// Requests refused (non-2xx), in total.
    pub fn refused(&self) -> u64 {
        self.shared.seen.lock().refused_by_id.values().sum()
    }

    /// Requests whose signature did not verify.
    pub fn bad_signatures(&self) -> u64 {
        self.shared.seen.lock().bad_signatures
    }
}

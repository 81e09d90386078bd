//! A small HTTP upstream for the gateway's tests and labs. It prints `listening ADDR` on its
//! first line of output, then answers every request with its instance id (`x-upstream-id` and
//! a JSON body echoing the method, path, `traceparent` and `x-forwarded-for` it received), after
//! a delay and with a status (the body also names the HTTP version it was spoken to in) that can be changed while it runs:
//!
//! - `PUT /_stub/mode?status=503&delay_ms=50&hold=true&ready=false` (any subset);
//! - `POST /_stub/release`: lets held requests go (and stops holding);
//! - `GET /_stub/stats`: `{"id", "served", "in_flight"}`;
//! - `GET /readyz`: 200, or 503 when `ready=false`.
//!
//! Usage: `gateway-upstream --id NAME [--listen 127.0.0.1:0]`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

struct Stub {
    id: String,
    status: AtomicU16,
    delay_ms: AtomicU64,
    ready: AtomicBool,
    hold: watch::Sender<bool>,
    served: AtomicU64,
    in_flight: AtomicU64,
}

fn reply(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn set_mode(stub: &Stub, query: &str) -> Result<(), String> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not key=value"))?;
        let bad = |_| format!("{k}={v:?} is not a number");
        match k {
            "status" => stub.status.store(v.parse().map_err(bad)?, Ordering::SeqCst),
            "delay_ms" => stub
                .delay_ms
                .store(v.parse().map_err(bad)?, Ordering::SeqCst),
            "ready" => stub.ready.store(v == "true", Ordering::SeqCst),
            "hold" => {
                stub.hold.send_replace(v == "true");
            }
            _ => return Err(format!("unknown mode key {k:?}")),
        }
    }
    Ok(())
}

async fn handle(
    stub: Arc<Stub>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    match (req.method().as_str(), path.as_str()) {
        ("PUT", "/_stub/mode") => {
            let query = req.uri().query().unwrap_or("").to_owned();
            return Ok(match set_mode(&stub, &query) {
                Ok(()) => reply(StatusCode::NO_CONTENT, String::new()),
                Err(e) => reply(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({ "error": e }).to_string(),
                ),
            });
        }
        ("POST", "/_stub/release") => {
            stub.hold.send_replace(false);
            return Ok(reply(StatusCode::NO_CONTENT, String::new()));
        }
        ("GET", "/_stub/stats") => {
            let body = serde_json::json!({
                "id": stub.id,
                "served": stub.served.load(Ordering::SeqCst),
                "in_flight": stub.in_flight.load(Ordering::SeqCst),
            });
            return Ok(reply(StatusCode::OK, body.to_string()));
        }
        ("GET", "/readyz") => {
            let ok = stub.ready.load(Ordering::SeqCst);
            let status = if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return Ok(reply(
                status,
                serde_json::json!({ "ready": ok }).to_string(),
            ));
        }
        _ => {}
    }
    stub.served.fetch_add(1, Ordering::SeqCst);
    stub.in_flight.fetch_add(1, Ordering::SeqCst);
    let mut hold = stub.hold.subscribe();
    while *hold.borrow_and_update() {
        if hold.changed().await.is_err() {
            break;
        }
    }
    let delay = stub.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body = serde_json::json!({
        "id": stub.id,
        "method": req.method().as_str(),
        "version": format!("{:?}", req.version()),
        "path": path,
        "traceparent": header("traceparent"),
        "x_forwarded_for": header("x-forwarded-for"),
    });
    let status = StatusCode::from_u16(stub.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK);
    let mut resp = reply(status, body.to_string());
    if let Ok(v) = http::HeaderValue::from_str(&stub.id) {
        resp.headers_mut().insert("x-upstream-id", v);
    }
    stub.in_flight.fetch_sub(1, Ordering::SeqCst);
    Ok(resp)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut id = String::from("upstream");
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--id" => id = args.next().ok_or("--id needs a value")?,
            "--listen" => listen = args.next().ok_or("--listen needs HOST:PORT")?.parse()?,
            other => return Err(format!(
                "unknown argument {other:?}; usage: gateway-upstream --id NAME [--listen HOST:PORT]"
            )
            .into()),
        }
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let mut out = tokio::io::stdout();
    out.write_all(format!("listening {addr}\n").as_bytes())
        .await?;
    out.flush().await?;
    let (hold, _) = watch::channel(false);
    let stub = Arc::new(Stub {
        id,
        status: AtomicU16::new(200),
        delay_ms: AtomicU64::new(0),
        ready: AtomicBool::new(true),
        hold,
        served: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let stub = stub.clone();
        let conn = builder
            .serve_connection(
                TokioIo::new(stream),
                service_fn(move |req| handle(stub.clone(), req)),
            )
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

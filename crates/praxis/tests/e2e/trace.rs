//! One trace end to end: a `notify/send` with a `traceparent` and a webhook recipient. The
//! request's trace id must reach the access log, the log line of the dispatcher that delivers
//! the message (after the bus and the delivery queue), and the `traceparent` header of the
//! outgoing webhook; embedded, scaled with the delivering consumer in another process, and
//! with spans exported over OTLP to a collector.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{ADMIN_KEY, Scaled, Server, client, env_refs, temp_dir};

/// Log filter that adds the dispatcher's per-delivery `delivered` line (debug) to the defaults.
const LOG_LEVEL: &str = "info,praxis_notify::workers::dispatch=debug";

/// An HTTP server on a free local port: every POST to `path` is answered 204 and its headers
/// and body are handed to the test.
struct Capture {
    url: String,
    requests: mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
}

impl Capture {
    async fn start(path: &'static str) -> Capture {
        let (tx, requests) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            path,
            post(move |headers: HeaderMap, body: Bytes| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((headers, body));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr: SocketAddr = listener.local_addr().expect("bound address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Capture {
            url: format!("http://{addr}"),
            requests,
        }
    }

    /// The next request, within 60 s.
    async fn next(&mut self) -> (HeaderMap, Bytes) {
        tokio::time::timeout(Duration::from_secs(60), self.requests.recv())
            .await
            .expect("a request arrives within 60 s")
            .expect("the capture server runs")
    }
}

/// A fresh W3C trace: (trace id, parent span id, `traceparent`).
fn new_trace() -> (String, String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let traceparent = format!("00-{trace_id}-{span_id}-01");
    (trace_id, span_id, traceparent)
}

/// The trace id and parent id of a `traceparent` header (version 00).
fn parse_traceparent(headers: &HeaderMap) -> (String, String) {
    let value = headers
        .get("traceparent")
        .unwrap_or_else(|| panic!("the webhook carries a traceparent: {headers:?}"))
        .to_str()
        .expect("ascii");
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[0], "00", "{value}");
    (parts[1].to_owned(), parts[2].to_owned())
}

async fn create_template(server: &Server) {
    let created = client()
        .post(server.url("/api/v1/notify/templates"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "traced", "channels": {"webhook": {"text": "n={{ n }}"}}}))
        .send()
        .await
        .expect("template request");
    assert_eq!(created.status().as_u16(), 201, "{}", server.logs());
}

/// Sends a notification to `hook` with a new caller trace and waits for the webhook: it must
/// continue the caller's trace with the delivery as its parent. Returns the trace id and the
/// webhook's parent span id.
async fn send_to_webhook(server: &Server, hook: &mut Capture) -> (String, String) {
    let (trace_id, parent, traceparent) = new_trace();
    let to = json!({"webhook": format!("{}/hook", hook.url)});
    let resp = client()
        .post(server.url("/api/v1/notify/send"))
        .bearer_auth(ADMIN_KEY)
        .header("traceparent", &traceparent)
        .json(&json!({"to": to, "template": "traced", "data": {"n": 1}}))
        .send()
        .await
        .expect("send request");
    assert_eq!(resp.status().as_u16(), 202, "{}", server.logs());
    let (headers, _) = hook.next().await;
    let (sent_trace, sent_parent) = parse_traceparent(&headers);
    assert_eq!(
        sent_trace, trace_id,
        "the webhook continues the caller's trace"
    );
    assert_ne!(
        sent_parent, parent,
        "its parent is the delivery, not the caller"
    );
    (trace_id, sent_parent)
}

/// Waits (up to 30 s) for a JSON log line of `server` that `matches`.
fn wait_for_line(server: &Server, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(line) = server.json_logs().into_iter().find(|l| matches(l)) {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} line within 30 s\n{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_access_of(line: &Value, route: &str) -> bool {
    line["target"] == "access" && line["route"] == route
}

fn is_delivered(line: &Value) -> bool {
    line["message"] == "delivered" && line["target"] == "praxis_notify::workers::dispatch"
}

/// The access log of the send and the dispatcher's line carry the trace id; returns the
/// dispatcher's line.
fn assert_logged(api: &Server, delivering: &Server, trace_id: &str) -> Value {
    let access = wait_for_line(api, "access log of the send", |l| {
        is_access_of(l, "/api/v1/notify/send")
    });
    assert_eq!(access["trace_id"], trace_id, "{access}");
    assert_eq!(
        access["span_id"].as_str().map(str::len),
        Some(16),
        "{access}"
    );
    let delivered = wait_for_line(delivering, "delivered", is_delivered);
    assert_eq!(delivered["trace_id"], trace_id, "{delivered}");
    delivered
}

fn notify_args(data: &str) -> Vec<&str> {
    vec![
        "--data-dir",
        data,
        "--log-level",
        LOG_LEVEL,
        "--notify-webhook-allow-cidrs",
        "127.0.0.0/8",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_keeps_its_trace_through_the_bus_to_the_webhook() {
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let server = Server::start(
        dir.path(),
        &notify_args(&data),
        &[("PRAXIS_ADMIN_KEY", ADMIN_KEY)],
    );
    create_template(&server).await;
    let mut hook = Capture::start("/hook").await;

    let (trace_id, sent_parent) = send_to_webhook(&server, &mut hook).await;
    let delivered = assert_logged(&server, &server, &trace_id);
    assert_eq!(delivered["span_id"], sent_parent.as_str(), "{delivered}");

    // Without a traceparent a trace starts: the access log has its own ids, and an invalid
    // header is ignored rather than refused.
    let resp = client()
        .get(server.url("/healthz"))
        .header("traceparent", "00-not-a-trace")
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status().as_u16(), 200);
    let health = wait_for_line(&server, "access log of /healthz", |l| {
        is_access_of(l, "/healthz")
    });
    let own = health["trace_id"].as_str().expect("a trace id");
    assert_eq!(own.len(), 32, "{health}");
    assert_ne!(own, trace_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_the_trace_crosses_nats_to_a_consumer_in_another_process() {
    let scaled = Scaled::new().await;
    let env = scaled.env();
    let (dir_api, dir_workers) = (temp_dir(), temp_dir());
    let data_api = dir_api.path().join("data").display().to_string();
    let data_workers = dir_workers.path().join("data").display().to_string();
    let mut api_env = env_refs(&env);
    api_env.push(("PRAXIS_NOTIFY_WORKERS", "false"));
    // The API process only accepts; the other one expands (bus consumer) and delivers.
    let api = Server::start(dir_api.path(), &notify_args(&data_api), &api_env);
    let workers = Server::start(
        dir_workers.path(),
        &notify_args(&data_workers),
        &env_refs(&env),
    );
    create_template(&api).await;
    let mut hook = Capture::start("/hook").await;

    let (trace_id, _) = send_to_webhook(&api, &mut hook).await;
    assert_logged(&api, &workers, &trace_id);
    assert!(
        !api.json_logs().iter().any(is_delivered),
        "the API process delivers nothing\n{}",
        api.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_an_otlp_collector() {
    let mut collector = Capture::start("/v1/traces").await;
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let mut args = notify_args(&data);
    args.extend(["--otel-endpoint", collector.url.as_str()]);
    let mut server = Server::start(dir.path(), &args, &[("PRAXIS_ADMIN_KEY", ADMIN_KEY)]);
    create_template(&server).await;
    let mut hook = Capture::start("/hook").await;

    let (trace_id, sent_parent) = send_to_webhook(&server, &mut hook).await;
    assert_logged(&server, &server, &trace_id);

    // Shutting down flushes the batch: the collector receives OTLP protobuf holding the
    // trace, and the delivery span that the webhook named as its parent.
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
    let mut received = Vec::new();
    let trace_bytes = hex_bytes(&trace_id);
    let span_bytes = hex_bytes(&sent_parent);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(contains(&received, &trace_bytes) && contains(&received, &span_bytes)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (headers, body) = tokio::time::timeout(left, collector.requests.recv())
            .await
            .unwrap_or_else(|_| panic!("the collector got the spans\n{}", server.logs()))
            .expect("the collector runs");
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/x-protobuf")
        );
        received.extend_from_slice(&body);
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

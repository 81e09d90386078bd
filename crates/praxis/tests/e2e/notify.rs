//! kill -9 of `praxis serve` while it delivers 10,000 queued notifications, then a restart:
//! the webhook receiver (a real axum server verifying every signature) sees every
//! notification, and one twice only if its send was in flight at the kill (at most the
//! configured concurrency).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use praxis_notify::workers::channels::standard_webhooks::{Secret, WebhookHeaders, verify};

use crate::support::{ADMIN_KEY, Scaled, Server, client, env_refs, temp_dir};

/// The webhook signing secret the servers are configured with.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Notifications queued before the kill.
const TOTAL: usize = 10_000;
/// Messages per bulk request.
const BULK: usize = 1000;
/// `notify_concurrency` of the webhook channel: the most sends in flight at the kill.
const CONCURRENCY: u64 = 32;
/// Deliveries the receiver has accepted when the process is killed (at least).
const KILL_AFTER: usize = 1000;

#[derive(Default)]
struct Seen {
    per_id: HashMap<String, u64>,
    numbers: HashSet<u64>,
    bad_signatures: u64,
}

#[derive(Clone)]
struct Receiver {
    secret: Arc<Secret>,
    seen: Arc<Mutex<Seen>>,
    /// How long each request is held before it is answered, ms: 200 while the test queues
    /// (at most 160 deliveries/s, so a slow machine still has most of the 10,000 queued when
    /// queueing ends), 50 until the kill, 0 after it.
    delay_ms: Arc<AtomicU64>,
}

async fn receive(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let id = match WebhookHeaders::from_header_map(&headers)
        .ok()
        .filter(|h| verify(&rx.secret, h, &body, now_s, 300).is_ok())
    {
        Some(h) => h.id.to_owned(),
        None => {
            rx.seen.lock().expect("lock").bad_signatures += 1;
            return StatusCode::UNAUTHORIZED;
        }
    };
    let delay = rx.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let n = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["data"]["n"].as_u64());
    let mut seen = rx.seen.lock().expect("lock");
    *seen.per_id.entry(id).or_default() += 1;
    if let Some(n) = n {
        seen.numbers.insert(n);
    }
    StatusCode::NO_CONTENT
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let rx = Receiver {
            secret: Arc::new(Secret::parse(SECRET).expect("secret")),
            seen: Arc::new(Mutex::new(Seen::default())),
            delay_ms: Arc::new(AtomicU64::new(200)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
        let app = axum::Router::new().fallback(receive).with_state(rx.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (rx, url)
    }

    fn accepted(&self) -> usize {
        self.seen.lock().expect("lock").per_id.len()
    }
}

fn flags(data: &str) -> Vec<String> {
    [
        "--data-dir",
        data,
        "--notify-concurrency",
        &format!("8,webhook={CONCURRENCY}"),
        "--notify-lease",
        "5s",
        "--notify-provider-timeout",
        "2s",
        "--notify-retry-base",
        "100ms",
        "--notify-retry-max",
        "2s",
        // The receiver listens on 127.0.0.1, which the SSRF guard refuses by default.
        "--notify-webhook-allow-cidrs",
        "127.0.0.0/8",
        "--access-log=false",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Queues `TOTAL` webhooks to `url` through `server` (bulk sends of `BULK`).
async fn queue_all(server: &Server, url: &str) {
    let http = client();
    let created = http
        .post(server.url("/api/v1/notify/templates"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "crash", "channels": {"webhook": {"text": "n={{ n }}"}}}))
        .send()
        .await
        .expect("template request");
    assert_eq!(created.status().as_u16(), 201, "{}", server.logs());
    for chunk in 0..TOTAL / BULK {
        let messages: Vec<Value> = (chunk * BULK..(chunk + 1) * BULK)
            .map(|n| json!({"to": {"webhook": url}, "template": "crash", "data": {"n": n}}))
            .collect();
        let resp = http
            .post(server.url("/api/v1/notify/send/bulk"))
            .bearer_auth(ADMIN_KEY)
            .timeout(Duration::from_secs(120))
            .json(&json!({ "messages": messages }))
            .send()
            .await
            .expect("bulk request");
        assert_eq!(resp.status().as_u16(), 200, "{}", server.logs());
        let body: Value = resp.json().await.expect("bulk answer");
        assert_eq!(body["accepted"], BULK, "{body}");
    }
}

async fn kill_then_restart(label: &str, start: impl Fn() -> Server) {
    let (rx, url) = Receiver::start().await;
    let mut server = start();
    queue_all(&server, &url).await;
    rx.delay_ms.store(50, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(300);
    while rx.accepted() < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "{label}: fewer than {KILL_AFTER} deliveries within 300s\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    let at_kill = rx.accepted();
    assert!(
        at_kill < TOTAL,
        "{label}: everything was delivered before the kill; nothing was tested"
    );
    drop(server);
    rx.delay_ms.store(0, Ordering::Relaxed);

    let restarted = start();
    let deadline = Instant::now() + Duration::from_secs(600);
    while rx.accepted() < TOTAL {
        assert!(
            Instant::now() < deadline,
            "{label}: {} of {TOTAL} delivered within 600s of the restart\n{}",
            rx.accepted(),
            restarted.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let in-flight retries of already delivered ids (if any) land before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = rx.seen.lock().expect("lock");
    let duplicates: u64 = seen.per_id.values().map(|n| n - 1).sum();
    let twice: usize = seen.per_id.values().filter(|n| **n > 1).count();
    eprintln!(
        "{label}: {TOTAL} queued, {at_kill} delivered before kill -9, {} distinct after restart, {duplicates} duplicate deliveries ({twice} ids twice), concurrency {CONCURRENCY}",
        seen.per_id.len()
    );
    assert_eq!(seen.bad_signatures, 0, "{label}: bad signatures");
    assert_eq!(seen.per_id.len(), TOTAL, "{label}: distinct webhook-ids");
    assert_eq!(
        seen.numbers,
        (0..TOTAL as u64).collect::<HashSet<_>>(),
        "{label}: every notification arrived"
    );
    assert!(
        duplicates <= CONCURRENCY,
        "{label}: {duplicates} duplicates, more than the {CONCURRENCY} sends that can be in flight at the kill"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_embedded_delivers_every_queued_notification() {
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let args = flags(&data);
    let env = [
        ("PRAXIS_ADMIN_KEY", ADMIN_KEY),
        ("PRAXIS_NOTIFY_WEBHOOK_SECRET", SECRET),
    ];
    kill_then_restart("embedded", || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start(dir.path(), &args, &env)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_scaled_delivers_every_queued_notification() {
    let scaled = Scaled::new().await;
    let mut env = scaled.env();
    env.push(("PRAXIS_NOTIFY_WEBHOOK_SECRET", SECRET.to_owned()));
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let args = flags(&data);
    kill_then_restart("scaled", || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start(dir.path(), &args, &env_refs(&env))
    })
    .await;
}

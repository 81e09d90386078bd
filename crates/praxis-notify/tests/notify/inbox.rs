//! The in-app inbox API: list, read state, unread count, subscriber tokens and the SSE stream
//! (with `Last-Event-ID` replay, and across processes on the scaled backend). Each case runs
//! on every backend.

use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::http::{Method, Request};
use futures::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use praxis_infra::Platform;
use praxis_infra::platform::PlatformOptions;
use praxis_infra::sql::DbOptions;
use praxis_notify::workers::inapp::{InboxItem, publish};
use praxis_testkit::backend::bus_options;

use crate::support::{DEADLINE, Harness, Kind, settings};

praxis_testkit::backend_matrix!(crate::inbox: [
    inbox_lists_counts_and_marks_read,
    subscriber_tokens_open_only_their_inbox,
    stream_sends_new_items_and_replays_missed_ones,
]);

/// A harness with an in-app template `note` and subscribers `u1`, `u2`.
async fn inbox_harness(kind: Kind) -> Harness {
    let h = Harness::start(kind, settings()).await;
    h.template(
        "note",
        json!({"in_app": {"subject": "Note {{ n }}", "text": "Body {{ n }}"}}),
    )
    .await;
    h.subscriber("u1", json!({})).await;
    h.subscriber("u2", json!({})).await;
    h
}

/// Sends note `n` to `to` and waits until it is delivered; returns the inbox item id (the
/// delivery id).
async fn deliver_note(h: &Harness, to: &str, n: i64) -> String {
    let id = h
        .notify(json!({"to": to, "template": "note", "data": {"n": n}}))
        .await;
    let m = h.wait_state(&id, "delivered").await;
    m["deliveries"][0]["id"]
        .as_str()
        .expect("delivery id")
        .to_owned()
}

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["title"].as_str().expect("title").to_owned())
        .collect()
}

pub async fn inbox_lists_counts_and_marks_read(kind: Kind) {
    let h = inbox_harness(kind).await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(deliver_note(&h, "u1", n).await);
    }
    deliver_note(&h, "u2", 9).await;

    let page = h
        .call(Method::GET, "/api/v1/notify/inbox/u1", None)
        .await
        .ok(200);
    assert_eq!(titles(&page), vec!["Note 3", "Note 2", "Note 1"]);
    assert_eq!(page["items"][0]["id"], ids[2].as_str());
    assert_eq!(page["items"][0]["body"], "Body 3");
    assert_eq!(page["items"][0]["data"], json!({"n": 3}));
    assert_eq!(page["items"][0]["read"], false);
    assert!(page.get("next_cursor").is_none());

    // Cursor pages: newest first, no overlap.
    let first = h
        .call(Method::GET, "/api/v1/notify/inbox/u1?limit=2", None)
        .await
        .ok(200);
    assert_eq!(titles(&first), vec!["Note 3", "Note 2"]);
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let second = h
        .call(
            Method::GET,
            &format!("/api/v1/notify/inbox/u1?limit=2&cursor={cursor}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(titles(&second), vec!["Note 1"]);
    assert!(second.get("next_cursor").is_none());

    // Bad cursor and limit: 400 naming the parameter.
    let r = h
        .call(Method::GET, "/api/v1/notify/inbox/u1?cursor=nope!", None)
        .await;
    r.problem(400);
    assert_eq!(r.fields(), vec!["cursor"]);
    // Outside 1 to the route's maximum: a 400 naming limit, never capped. Each list route.
    for path in [
        "/api/v1/notify/inbox/u1?limit=0",
        "/api/v1/notify/inbox/u1?limit=501",
        "/api/v1/notify/dead-letters?limit=501",
        "/api/v1/notify/subscribers?limit=501",
        "/api/v1/notify/templates?limit=201",
        "/api/v1/notify/topics/t?limit=1001",
    ] {
        let r = h.call(Method::GET, path, None).await;
        r.problem(400);
        assert_eq!(r.fields(), vec!["limit"], "{path}");
    }

    let unread = |who: &'static str| {
        let h = &h;
        async move {
            h.call(
                Method::GET,
                &format!("/api/v1/notify/inbox/{who}/unread-count"),
                None,
            )
            .await
            .ok(200)["unread"]
                .as_i64()
                .expect("unread")
        }
    };
    assert_eq!(unread("u1").await, 3);
    assert_eq!(unread("u2").await, 1);

    // Mark one read: idempotent, keeps the first read time.
    let path = format!("/api/v1/notify/inbox/u1/{}/read", ids[0]);
    let read = h.call(Method::POST, &path, None).await.ok(200);
    assert_eq!(read["read"], true);
    let read_at = read["read_at"].as_str().expect("read_at").to_owned();
    let again = h.call(Method::POST, &path, None).await.ok(200);
    assert_eq!(again["read_at"], read_at.as_str());
    assert_eq!(unread("u1").await, 2);
    let only_unread = h
        .call(
            Method::GET,
            "/api/v1/notify/inbox/u1?unread_only=true",
            None,
        )
        .await
        .ok(200);
    assert_eq!(titles(&only_unread), vec!["Note 3", "Note 2"]);

    // An item of another inbox, or none at all: 404.
    h.call(
        Method::POST,
        &format!("/api/v1/notify/inbox/u2/{}/read", ids[1]),
        None,
    )
    .await
    .problem(404);
    h.call(Method::POST, "/api/v1/notify/inbox/u1/nope/read", None)
        .await
        .problem(404);

    // Read all: only this subscriber's.
    let all = h
        .call(Method::POST, "/api/v1/notify/inbox/u1/read-all", None)
        .await
        .ok(200);
    assert_eq!(all["marked"], 2);
    assert_eq!(unread("u1").await, 0);
    assert_eq!(unread("u2").await, 1);

    // Principals: notify:read reads, changing read state needs notify:write; other scopes and
    // anonymous callers are refused.
    h.call_as(
        Some("reader-token"),
        Method::GET,
        "/api/v1/notify/inbox/u2",
        None,
    )
    .await
    .ok(200);
    h.call_as(
        Some("reader-token"),
        Method::POST,
        "/api/v1/notify/inbox/u2/read-all",
        None,
    )
    .await
    .problem(403);
    h.call_as(
        Some("links-token"),
        Method::GET,
        "/api/v1/notify/inbox/u2",
        None,
    )
    .await
    .problem(403);
    h.call_as(None, Method::GET, "/api/v1/notify/inbox/u2", None)
        .await
        .problem(401);
}

async fn token_of(h: &Harness, subscriber: &str) -> String {
    let r = h
        .call(
            Method::POST,
            &format!("/api/v1/notify/subscribers/{subscriber}/inbox-token"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(r["subscriber_id"], subscriber);
    r["token"].as_str().expect("token").to_owned()
}

pub async fn subscriber_tokens_open_only_their_inbox(kind: Kind) {
    let h = inbox_harness(kind).await;
    let item = deliver_note(&h, "u1", 1).await;
    deliver_note(&h, "u2", 2).await;
    let t1 = token_of(&h, "u1").await;
    assert_eq!(t1.len(), 64);
    assert_eq!(token_of(&h, "u1").await, t1, "tokens are stable");
    assert_ne!(token_of(&h, "u2").await, t1);

    // Issuing tokens: notify:write, known subscribers only.
    h.call(
        Method::POST,
        "/api/v1/notify/subscribers/ghost/inbox-token",
        None,
    )
    .await
    .problem(404);
    h.call_as(
        Some("reader-token"),
        Method::POST,
        "/api/v1/notify/subscribers/u1/inbox-token",
        None,
    )
    .await
    .problem(403);

    let with = |token: &str| format!("Subscriber {token}");
    let as_sub = |path: String, method: Method, token: String| {
        let h = &h;
        async move {
            h.call_with(method, &path, None, &[("authorization", &with(&token))])
                .await
        }
    };
    // Its own inbox, by header or query parameter.
    let page = as_sub("/api/v1/notify/inbox/u1".into(), Method::GET, t1.clone())
        .await
        .ok(200);
    assert_eq!(titles(&page), vec!["Note 1"]);
    let page = h
        .call_as(
            None,
            Method::GET,
            &format!("/api/v1/notify/inbox/u1?token={t1}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(titles(&page), vec!["Note 1"]);
    let count = as_sub(
        "/api/v1/notify/inbox/u1/unread-count".into(),
        Method::GET,
        t1.clone(),
    )
    .await
    .ok(200);
    assert_eq!(count["unread"], 1);
    as_sub(
        format!("/api/v1/notify/inbox/u1/{item}/read"),
        Method::POST,
        t1.clone(),
    )
    .await
    .ok(200);
    as_sub(
        "/api/v1/notify/inbox/u1/read-all".into(),
        Method::POST,
        t1.clone(),
    )
    .await
    .ok(200);

    // Another subscriber's inbox, or a forged token: 401 (the token is the
    // inbox's credential, and it does not verify).
    for path in [
        "/api/v1/notify/inbox/u2",
        "/api/v1/notify/inbox/u2/unread-count",
        "/api/v1/notify/inbox/u2/stream",
    ] {
        as_sub(path.into(), Method::GET, t1.clone())
            .await
            .problem(401);
    }
    as_sub(
        "/api/v1/notify/inbox/u2/read-all".into(),
        Method::POST,
        t1.clone(),
    )
    .await
    .problem(401);
    h.call_as(
        None,
        Method::GET,
        &format!("/api/v1/notify/inbox/u2?token={t1}"),
        None,
    )
    .await
    .problem(401);
    let forged = format!("{}{}", &t1[..63], if t1.ends_with('0') { "1" } else { "0" });
    as_sub("/api/v1/notify/inbox/u1".into(), Method::GET, forged)
        .await
        .problem(401);
    as_sub("/api/v1/notify/inbox/u1".into(), Method::GET, "x".into())
        .await
        .problem(401);
    // A token is not a bearer credential for other routes.
    h.call_with(
        Method::GET,
        "/api/v1/notify/subscribers/u1",
        None,
        &[("authorization", &with(&t1))],
    )
    .await
    .problem(401);
}

/// Reads Server-Sent Events from a response body.
struct SseReader {
    body: BodyDataStream,
    buf: String,
}

impl SseReader {
    /// Opens `path` on `h`'s app with `headers`; asserts a 200 event stream.
    async fn open(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut b = Request::builder().method(Method::GET).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = h
            .app
            .clone()
            .oneshot(b.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .expect("content-type")
                .starts_with("text/event-stream")
        );
        Self {
            body: resp.into_body().into_data_stream(),
            buf: String::new(),
        }
    }

    /// The next event's `(id, data)`, skipping comments; panics after `DEADLINE`.
    async fn next(&mut self) -> (String, Value) {
        tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let mut id = None;
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            id = Some(v.trim_start().to_owned());
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim_start());
                        }
                    }
                    if let Some(id) = id {
                        return (id, serde_json::from_str(&data).expect("event data is JSON"));
                    }
                    continue;
                }
                let chunk = self
                    .body
                    .next()
                    .await
                    .expect("the stream ended")
                    .expect("body chunk");
                self.buf
                    .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no event within {DEADLINE:?}"))
    }

    /// Asserts that no event comes within `wait` (only after events that were expected).
    async fn quiet_for(&mut self, wait: Duration) {
        if let Ok(event) = tokio::time::timeout(wait, self.next()).await {
            panic!("unexpected event {event:?}");
        }
    }
}

pub async fn stream_sends_new_items_and_replays_missed_ones(kind: Kind) {
    let h = inbox_harness(kind).await;
    let t1 = token_of(&h, "u1").await;
    let mut live = SseReader::open(
        &h,
        &format!("/api/v1/notify/inbox/u1/stream?token={t1}"),
        &[],
    )
    .await;
    // Another subscriber's item does not reach u1's stream; u1's does, with its id.
    deliver_note(&h, "u2", 0).await;
    let first = deliver_note(&h, "u1", 1).await;
    let (id, data) = live.next().await;
    assert_eq!(id, first);
    assert_eq!(data["id"], first.as_str());
    assert_eq!(data["title"], "Note 1");
    assert_eq!(data["read"], false);
    drop(live);

    // Missed while disconnected: replayed from the table after Last-Event-ID, oldest first,
    // then the stream goes on live.
    let second = deliver_note(&h, "u1", 2).await;
    let third = deliver_note(&h, "u1", 3).await;
    let mut again = SseReader::open(
        &h,
        "/api/v1/notify/inbox/u1/stream",
        &[
            ("authorization", &format!("Subscriber {t1}")),
            ("last-event-id", &first),
        ],
    )
    .await;
    assert_eq!(again.next().await.0, second);
    assert_eq!(again.next().await.0, third);
    let fourth = deliver_note(&h, "u1", 4).await;
    let (id, data) = again.next().await;
    assert_eq!(id, fourth);
    assert_eq!(data["title"], "Note 4");

    // An admin reads the stream too (bearer); without Last-Event-ID nothing is replayed.
    let mut admin = SseReader::open(
        &h,
        "/api/v1/notify/inbox/u1/stream",
        &[("authorization", &format!("Bearer {}", crate::support::KEY))],
    )
    .await;
    admin.quiet_for(Duration::from_millis(300)).await;

    if kind == Kind::Scaled {
        // An item published by another process (its own platform: NATS or Redis broadcast)
        // reaches this process's streams.
        let other = Platform::connect_with(
            &h.backend.config,
            &PlatformOptions {
                db: DbOptions {
                    max_connections: 2,
                    ..DbOptions::default()
                },
                bus: bus_options(),
            },
        )
        .await
        .expect("second platform");
        let item = InboxItem {
            id: "remote-item".into(),
            subscriber_id: "u1".into(),
            message_id: "remote-message".into(),
            title: "From afar".into(),
            body: "b".into(),
            data: json!({}),
            created_at: praxis_notify::domain::model::now_ms(),
            read_at: None,
        };
        publish(&other.broadcaster, &item).await;
        let (id, data) = admin.next().await;
        assert_eq!(id, "remote-item");
        assert_eq!(data["title"], "From afar");
        assert_eq!(again.next().await.0, "remote-item");
        other.shutdown.cancel();
    }
}

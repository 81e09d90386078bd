//! The cases, each run on every backend.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

use praxis_notify::domain::model::now_ms;
use praxis_notify::store::Store;
use praxis_notify::{PerChannel, ProviderLimit};

use crate::receiver::{Mode, Receiver};
use crate::support::{DEADLINE, Harness, Kind, SECRET, eventually, settings, webhook_template};

fn rfc3339(ms: i64) -> String {
    praxis_notify::domain::model::rfc3339(ms)
}

/// Sends `n` messages to subscriber `to` in one bulk call (data `{"n": i}`); returns the ids.
async fn send_many(h: &Harness, to: &str, n: usize) -> Vec<String> {
    let messages: Vec<Value> = (0..n)
        .map(|i| json!({"to": to, "template": "t", "data": {"n": i}}))
        .collect();
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/send/bulk",
            Some(json!({ "messages": messages })),
        )
        .await
        .ok(200);
    assert_eq!(r["accepted"], n, "{r}");
    r["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn wait_all(h: &Harness, ids: &[String], state: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ids {
        out.push(h.wait_state(id, state).await);
    }
    out
}

fn assert_exactly_once(rx: &Receiver, expected: usize) {
    let per_id = rx.accepted_per_id();
    let dups: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "delivered more than once: {dups:?}");
    assert_eq!(
        per_id.len(),
        expected,
        "distinct webhook-ids at the receiver"
    );
    assert_eq!(rx.bad_signatures(), 0, "requests with a bad signature");
}

pub async fn webhook_is_delivered_signed(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    h.template(
        "order-shipped",
        json!({"webhook": {"text": "order {{ order }} shipped"}}),
    )
    .await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/hooks")}))
        .await;
    let id = h
        .notify(json!({"to": "u1", "template": "order-shipped", "data": {"order": 42}}))
        .await;
    let m = h.wait_state(&id, "delivered").await;
    let d = &m["deliveries"][0];
    assert_eq!(d["channel"], "webhook", "{m}");
    assert_eq!(d["attempts"], 1, "{m}");
    assert_eq!(d["attempt_log"][0]["ok"], true, "{m}");
    assert_eq!(d["attempt_log"][0]["provider"], "webhook", "{m}");
    let got = rx.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(Some(got[0].id.as_str()), d["id"].as_str());
    assert_eq!(got[0].body["type"], "order-shipped");
    assert_eq!(got[0].body["data"]["order"], 42);
    assert_eq!(rx.bad_signatures(), 0);

    // Inline address and an event type of the sender's choosing.
    let id = h
        .notify(json!({
            "to": {"webhook": rx.url("/other")},
            "template": "order-shipped",
            "data": {"order": 7},
            "event_type": "order.shipped"
        }))
        .await;
    h.wait_state(&id, "delivered").await;
    let got = rx.accepted();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].body["type"], "order.shipped");
    assert_exactly_once(&rx, 2);
}

pub async fn idempotency_key_sends_once(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    h.template("t", webhook_template()).await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/h")}))
        .await;
    let body = json!({"to": "u1", "template": "t", "data": {"n": 1}, "idempotency_key": "order-1"});
    let first = h
        .call(Method::POST, "/api/v1/notify/send", Some(body.clone()))
        .await
        .ok(202);
    let again = h
        .call(Method::POST, "/api/v1/notify/send", Some(body.clone()))
        .await
        .ok(200);
    assert_eq!(first["id"], again["id"]);

    // The header works as well.
    let plain = json!({"to": "u1", "template": "t", "data": {"n": 2}});
    let headers = [
        ("authorization", "Bearer test-admin-key"),
        ("idempotency-key", "order-2"),
    ];
    let by_header = h
        .call_with(
            Method::POST,
            "/api/v1/notify/send",
            Some(plain.clone()),
            &headers,
        )
        .await
        .ok(202);
    let by_header_again = h
        .call_with(Method::POST, "/api/v1/notify/send", Some(plain), &headers)
        .await
        .ok(200);
    assert_eq!(by_header["id"], by_header_again["id"]);

    // The same key for another message is refused.
    let other =
        json!({"to": "u1", "template": "t", "data": {"n": 3}, "idempotency_key": "order-1"});
    let p = h
        .call(Method::POST, "/api/v1/notify/send", Some(other))
        .await
        .problem(422);
    assert!(
        p["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("idempotency-key-reused")),
        "{p}"
    );
    // Header and body disagreeing is a 422 (well formed, but which key?) naming the field.
    let both = json!({"to": "u1", "template": "t", "data": {"n": 4}, "idempotency_key": "x"});
    let r = h
        .call_with(Method::POST, "/api/v1/notify/send", Some(both), &headers)
        .await;
    r.problem(422);
    assert_eq!(r.fields(), vec!["idempotency_key"]);

    // Keys belong to their sender: another sender may use the same key.
    let alice = h
        .call_as(
            Some("alice-token"),
            Method::POST,
            "/api/v1/notify/send",
            Some(body),
        )
        .await
        .ok(202);
    assert_ne!(alice["id"], first["id"]);

    for id in [&first["id"], &by_header["id"], &alice["id"]] {
        h.wait_state(id.as_str().expect("id"), "delivered").await;
    }
    assert_exactly_once(&rx, 3);
}

pub async fn bad_requests_are_problems(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    h.template("t", webhook_template()).await;
    h.subscriber("u1", json!({"webhook_url": "https://hooks.example.com/u1"}))
        .await;
    h.subscriber("u2", json!({"email": "u2@example.com"})).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"to": "u1", "template": "nope", "data": {"n": 1}}),
            "template",
        ),
        (
            json!({"to": "u1", "template": "t", "version": 9, "data": {"n": 1}}),
            "version",
        ),
        (json!({"to": "u1", "template": "t", "data": {}}), "data.n"),
        (json!({"to": "u1", "template": "t", "data": [1]}), "data"),
        (
            json!({"to": "ghost", "template": "t", "data": {"n": 1}}),
            "to",
        ),
        (
            json!({"to": {"email": "not-an-email"}, "template": "t", "data": {"n": 1}}),
            "to.email",
        ),
        (
            json!({"to": {"webhook": "ftp://x.example/"}, "template": "t", "data": {"n": 1}}),
            "to.webhook",
        ),
        (
            json!({"to": {"phone": "12"}, "template": "t", "data": {"n": 1}}),
            "to.phone",
        ),
        (
            json!({"to": {"fax": "1"}, "template": "t", "data": {"n": 1}}),
            "to.fax",
        ),
        (
            json!({"to": "u1", "template": "t", "channels": ["email"], "data": {"n": 1}}),
            "channels[0]",
        ),
        (
            json!({"to": "u1", "template": "t", "channels": ["fax"], "data": {"n": 1}}),
            "channels[0]",
        ),
        (
            json!({"to": "u1", "template": "t", "channels": ["sms"], "data": {"n": 1}}),
            "channels[0]",
        ),
        (
            json!({"to": "u2", "template": "t", "channels": ["webhook"], "data": {"n": 1}}),
            "channels[0]",
        ),
        (
            json!({"to": "u1", "template": "t", "data": {"n": 1}, "send_at": "tomorrow"}),
            "send_at",
        ),
        (
            json!({"to": "u1", "template": "Bad Name", "data": {"n": 1}}),
            "template",
        ),
        (json!({"to": 5, "template": "t", "data": {"n": 1}}), "to"),
    ];
    // Not the documented shape: 400. Well formed but not possible as things stand (no such
    // template, version or subscriber; data the template misses; a channel the server or the
    // recipient lacks): 422.
    let unprocessable = |body: &Value, field: &str| match field {
        "template" => body["template"] == "nope",
        "version" | "data.n" => true,
        "to" => body["to"] == "ghost",
        "channels[0]" => body["channels"][0] != "fax",
        _ => false,
    };
    for (body, field) in cases {
        let r = h
            .call(Method::POST, "/api/v1/notify/send", Some(body.clone()))
            .await;
        let p = r.problem(if unprocessable(&body, field) {
            422
        } else {
            400
        });
        assert!(
            r.fields().iter().any(|f| f == field),
            "{body} should name {field}: {p}"
        );
    }
    // The disabled channel says how to enable it.
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/send",
            Some(json!({"to": "u1", "template": "t", "channels": ["sms"], "data": {"n": 1}})),
        )
        .await;
    assert!(
        r.json()["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("notify_sms_url"))
    );

    // Malformed and mistyped bodies.
    let r = h
        .call_with(
            Method::POST,
            "/api/v1/notify/send",
            None,
            &[
                ("authorization", "Bearer test-admin-key"),
                ("content-type", "application/json"),
            ],
        )
        .await;
    r.problem(400);
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/send",
            Some(json!({"to": "u1", "template": "t", "colour": 1})),
        )
        .await;
    r.problem(400);

    // Templates that do not parse, or miss a variable of their example data.
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/templates",
            Some(json!({"name": "broken", "channels": {"webhook": {"text": "ok\n{% if %}"}}})),
        )
        .await;
    let p = r.problem(400);
    assert_eq!(r.fields(), vec!["channels.webhook.text"], "{p}");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("line 2")),
        "{p}"
    );
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/templates",
            Some(json!({"name": "strict", "channels": {"email": {"subject": "Hi {{ name }}", "text": "x"}}, "example_data": {}})),
        )
        .await;
    let p = r.problem(400);
    assert_eq!(r.fields(), vec!["channels.email.subject"], "{p}");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("name")),
        "{p}"
    );
    // A nested value missing is named by its path; an optional one may be left out.
    h.template(
        "nested",
        json!({"webhook": {"text": "{{ order.total }}{% if note is defined %} {{ note }}{% endif %}"}}),
    )
    .await;
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/send",
            Some(json!({"to": "u1", "template": "nested", "data": {"order": {}}})),
        )
        .await;
    let p = r.problem(422);
    assert_eq!(r.fields(), vec!["data.order.total"], "{p}");
    // Nothing was queued by any of these.
    let depth =
        praxis_notify::store::queue::Queue::new(h.platform.db.clone(), Duration::from_secs(5))
            .depth(now_ms())
            .await
            .expect("depth");
    assert!(depth.is_empty(), "{depth:?}");
}

pub async fn flaky_receiver_gets_each_exactly_once(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    rx.set_mode(Mode::FailEveryOther);
    h.template("t", webhook_template()).await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/flaky")}))
        .await;
    const N: usize = 40;
    let ids = send_many(&h, "u1", N).await;
    let views = wait_all(&h, &ids, "delivered").await;
    assert_exactly_once(&rx, N);
    assert!(rx.refused() > 0, "the receiver refused nothing");
    let ns: HashSet<i64> = rx
        .accepted()
        .iter()
        .filter_map(|d| d.body["data"]["n"].as_i64())
        .collect();
    assert_eq!(ns.len(), N);
    let retried = views
        .iter()
        .filter(|v| v["deliveries"][0]["attempts"].as_i64().unwrap_or(0) > 1)
        .count();
    assert!(retried > 0, "no delivery needed a retry");
    // A delivery's log ends with its one success.
    for v in &views {
        let log = v["deliveries"][0]["attempt_log"].as_array().expect("log");
        assert_eq!(log.iter().filter(|a| a["ok"] == true).count(), 1, "{v}");
        assert_eq!(log.last().map(|a| a["ok"] == true), Some(true), "{v}");
    }
}

pub async fn breaker_opens_while_receiver_is_down_and_recovers(kind: Kind) {
    let mut s = settings();
    s.breaker.failures = 3;
    s.breaker.open_for = Duration::from_millis(300);
    s.max_attempts = PerChannel::all(50);
    let h = Harness::start(kind, s).await;
    let mut rx = Receiver::start(SECRET).await;
    let url = rx.url("/down");
    rx.stop();
    h.template("t", webhook_template()).await;
    h.subscriber("u1", json!({"webhook_url": url})).await;
    const N: usize = 10;
    let ids = send_many(&h, "u1", N).await;
    let key = format!("webhook:http://{}", rx.addr);
    eventually(DEADLINE, "the receiver's breaker opens", || async {
        let p = h
            .call(Method::GET, "/api/v1/notify/providers", None)
            .await
            .ok(200);
        let webhook = p["channels"]
            .as_array()?
            .iter()
            .find(|c| c["channel"] == "webhook")?
            .clone();
        webhook["breakers"]
            .as_array()?
            .iter()
            .any(|b| b["key"] == key.as_str() && b["state"] != "closed")
            .then_some(())
    })
    .await;
    // Deliveries wait while it is open: none is a dead letter.
    let dead = h
        .call(Method::GET, "/api/v1/notify/dead-letters", None)
        .await
        .ok(200);
    assert_eq!(dead["items"].as_array().map(Vec::len), Some(0), "{dead}");

    rx.restart().await;
    let views = wait_all(&h, &ids, "delivered").await;
    assert_exactly_once(&rx, N);
    let attempts: i64 = views
        .iter()
        .map(|v| v["deliveries"][0]["attempts"].as_i64().unwrap_or(0))
        .sum();
    assert!(
        attempts >= N as i64 + 3,
        "the outage cost no failed attempt ({attempts})"
    );
    eventually(DEADLINE, "the breaker closes again", || async {
        let p = h
            .call(Method::GET, "/api/v1/notify/providers", None)
            .await
            .ok(200);
        let webhook = p["channels"]
            .as_array()?
            .iter()
            .find(|c| c["channel"] == "webhook")?
            .clone();
        webhook["breakers"]
            .as_array()?
            .iter()
            .all(|b| b["key"] != key.as_str() || b["state"] == "closed")
            .then_some(())
    })
    .await;
}

pub async fn send_at_waits_and_survives_a_restart(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    h.template("t", webhook_template()).await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/later")}))
        .await;
    let at = now_ms() + 3000;
    let id = h
        .notify(json!({"to": "u1", "template": "t", "data": {"n": 1}, "send_at": rfc3339(at)}))
        .await;
    let m = eventually(DEADLINE, "the message is expanded", || async {
        let m = h.message(&id).await;
        (!m["deliveries"].as_array()?.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(m["send_at"], rfc3339(at), "{m}");
    let d = &m["deliveries"][0];
    if d["state"] == "queued" {
        assert_eq!(d["next_attempt_at"], rfc3339(at), "{m}");
    }
    let h = h.restart().await;
    h.wait_state(&id, "delivered").await;
    let got = rx.accepted();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].at_ms >= at,
        "sent {} ms before send_at",
        at - got[0].at_ms
    );
}

pub async fn dead_letters_can_be_requeued(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    rx.set_mode(Mode::Status(400));
    h.template("t", webhook_template()).await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/reject")}))
        .await;
    let id = h
        .notify(json!({"to": "u1", "template": "t", "data": {"n": 1}}))
        .await;
    let m = h.wait_state(&id, "failed").await;
    let d = &m["deliveries"][0];
    let delivery = d["id"].as_str().expect("delivery id").to_owned();
    assert_eq!(d["attempts"], 1, "a permanent failure is not retried: {m}");
    assert!(
        d["last_error"].as_str().is_some_and(|e| e.contains("400")),
        "{m}"
    );

    let dead = h
        .call(
            Method::GET,
            "/api/v1/notify/dead-letters?channel=webhook",
            None,
        )
        .await
        .ok(200);
    assert!(
        dead["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["id"] == delivery.as_str()),
        "{dead}"
    );
    let none = h
        .call(
            Method::GET,
            "/api/v1/notify/dead-letters?channel=email",
            None,
        )
        .await
        .ok(200);
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0));
    h.call(Method::GET, "/api/v1/notify/dead-letters?channel=fax", None)
        .await
        .problem(400);

    rx.set_mode(Mode::Ok);
    let requeued = h
        .call(
            Method::POST,
            &format!("/api/v1/notify/dead-letters/{delivery}/requeue"),
            None,
        )
        .await
        .ok(202);
    assert_ne!(requeued["state"], "failed");
    let m = h.wait_state(&id, "delivered").await;
    let log = m["deliveries"][0]["attempt_log"]
        .as_array()
        .expect("log")
        .clone();
    assert_eq!(log.len(), 2, "{m}");
    assert_eq!(
        (log[0]["ok"].clone(), log[1]["ok"].clone()),
        (json!(false), json!(true))
    );
    assert_exactly_once(&rx, 1);

    h.call(
        Method::POST,
        &format!("/api/v1/notify/dead-letters/{delivery}/requeue"),
        None,
    )
    .await
    .problem(409);
    h.call(
        Method::POST,
        "/api/v1/notify/dead-letters/no-such-delivery/requeue",
        None,
    )
    .await
    .problem(404);
    let dead = h
        .call(Method::GET, "/api/v1/notify/dead-letters", None)
        .await
        .ok(200);
    assert_eq!(dead["items"].as_array().map(Vec::len), Some(0), "{dead}");
}

pub async fn transient_failures_run_out_of_attempts(kind: Kind) {
    let mut s = settings();
    s.max_attempts = PerChannel::all(20).with(praxis_notify::domain::channel::Channel::Webhook, 3);
    let h = Harness::start(kind, s).await;
    let rx = Receiver::start(SECRET).await;
    rx.set_mode(Mode::Status(503));
    h.template("t", webhook_template()).await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/busy")}))
        .await;
    let id = h
        .notify(json!({"to": "u1", "template": "t", "data": {"n": 1}}))
        .await;
    let m = h.wait_state(&id, "failed").await;
    let d = &m["deliveries"][0];
    assert_eq!(d["attempts"], 3, "{m}");
    assert!(
        d["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("gave up after 3 attempts")),
        "{m}"
    );
    assert_eq!(rx.refused(), 3);
    assert!(rx.accepted().is_empty());
}

pub async fn in_app_writes_the_inbox_once(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    h.template(
        "welcome",
        json!({"in_app": {"subject": "Hi {{ name }}", "text": "Welcome, {{ name }}!"}}),
    )
    .await;
    h.subscriber("u1", json!({})).await;
    let ids = [
        h.notify(json!({"to": "u1", "template": "welcome", "data": {"name": "Ada"}}))
            .await,
        h.notify(json!({"to": "u1", "template": "welcome", "data": {"name": "Grace"}}))
            .await,
    ];
    for id in &ids {
        let m = h.wait_state(id, "delivered").await;
        assert_eq!(m["deliveries"][0]["channel"], "in_app");
        assert_eq!(m["deliveries"][0]["attempts"], 1);
    }
    let store = Store::new(h.platform.db.clone());
    assert_eq!(store.inbox_count("u1").await.expect("count"), 2);
    let titles: Vec<String> = sqlx::query_scalar(
        "SELECT title FROM notify_inbox WHERE subscriber_id = $1 ORDER BY title",
    )
    .bind("u1")
    .fetch_all(h.platform.db.pool())
    .await
    .expect("titles");
    assert_eq!(titles, vec!["Hi Ada", "Hi Grace"]);
    // In-app needs a subscriber.
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/send",
            Some(json!({"to": {"email": "a@example.com"}, "template": "welcome", "channels": ["in_app"], "data": {"name": "x"}})),
        )
        .await;
    r.problem(422);
    assert_eq!(r.fields(), vec!["channels[0]"]);
}

pub async fn email_becomes_an_eml_file(kind: Kind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = settings();
    s.eml_dir = Some(dir.path().to_path_buf());
    let h = Harness::start(kind, s).await;
    h.template(
        "hello",
        json!({"email": {"subject": "Hi {{ name }}", "text": "Hello {{ name }}", "html": "<p>Hello {{ name }}</p>"}}),
    )
    .await;
    let id = h
        .notify(json!({"to": {"email": "ada@example.com"}, "template": "hello", "data": {"name": "Ada <3"}}))
        .await;
    let m = h.wait_state(&id, "delivered").await;
    let d = &m["deliveries"][0];
    assert_eq!(d["attempt_log"][0]["provider"], "eml-file", "{m}");
    let delivery = d["id"].as_str().expect("delivery id");
    let path = dir.path().join(format!("{delivery}.eml"));
    let eml = std::fs::read_to_string(&path).expect("the .eml file exists");
    assert!(eml.contains("Subject: Hi Ada <3"), "{eml}");
    assert!(eml.contains(&format!("Message-ID: <{delivery}@")), "{eml}");
    assert!(eml.contains("To: ada@example.com"), "{eml}");
    assert!(eml.contains("&lt;3"), "the HTML part is escaped: {eml}");
    let files = std::fs::read_dir(dir.path()).expect("dir").count();
    assert_eq!(files, 1);
}

pub async fn bulk_send_reports_each_item(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    h.template("t", webhook_template()).await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/bulk")}))
        .await;
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/send/bulk",
            Some(json!({"messages": [
                {"to": "u1", "template": "t", "data": {"n": 0}, "idempotency_key": "k1"},
                {"to": {"email": "nope"}, "template": "t", "data": {"n": 1}},
                {"to": "u1", "template": "t", "data": {"n": 0}, "idempotency_key": "k1"},
                {"to": "u1", "template": "missing", "data": {"n": 3}},
                {"to": "u1", "tmpl": "t"},
            ]})),
        )
        .await
        .ok(200);
    let statuses: Vec<u64> = r["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|i| i["status"].as_u64().expect("status"))
        .collect();
    // A template that does not exist: well formed, not possible (422).
    assert_eq!(statuses, vec![202, 400, 200, 422, 400], "{r}");
    assert_eq!(
        (
            r["accepted"].clone(),
            r["duplicates"].clone(),
            r["failed"].clone()
        ),
        (json!(1), json!(1), json!(3))
    );
    assert_eq!(r["results"][0]["id"], r["results"][2]["id"]);
    let field = |i: usize| r["results"][i]["problem"]["errors"][0]["field"].clone();
    assert_eq!(field(1), "messages[1].to.email");
    assert_eq!(field(3), "messages[3].template");
    assert!(
        field(4)
            .as_str()
            .is_some_and(|f| f.starts_with("messages[4]")),
        "{r}"
    );
    h.wait_state(r["results"][0]["id"].as_str().expect("id"), "delivered")
        .await;
    assert_exactly_once(&rx, 1);

    for n in [0usize, 1001] {
        let messages: Vec<Value> = (0..n)
            .map(|i| json!({"to": "u1", "template": "t", "data": {"n": i}}))
            .collect();
        let r = h
            .call(
                Method::POST,
                "/api/v1/notify/send/bulk",
                Some(json!({"messages": messages})),
            )
            .await;
        r.problem(400);
        assert_eq!(r.fields(), vec!["messages"]);
    }
}

pub async fn templates_are_versioned_and_checked(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    let v1 = h.template("t", webhook_template()).await;
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["variables"], json!(["n"]));
    let same = h
        .call(
            Method::POST,
            "/api/v1/notify/templates",
            Some(json!({"name": "t", "channels": webhook_template()})),
        )
        .await
        .ok(200);
    assert_eq!(same["version"], 1);
    let v2 = h
        .template("t", json!({"webhook": {"text": "v2 {{ n }} {{ who }}"}}))
        .await;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["variables"], json!(["n", "who"]));
    let latest = h
        .call(Method::GET, "/api/v1/notify/templates/t", None)
        .await
        .ok(200);
    assert_eq!(latest["version"], 2);
    let first = h
        .call(Method::GET, "/api/v1/notify/templates/t/versions/1", None)
        .await
        .ok(200);
    assert_eq!(first["channels"]["webhook"]["text"], "event {{ n }}");
    h.call(Method::GET, "/api/v1/notify/templates/t/versions/9", None)
        .await
        .problem(404);
    h.call(Method::GET, "/api/v1/notify/templates/nope", None)
        .await
        .problem(404);
    h.template("a-first", webhook_template()).await;
    let list = h
        .call(Method::GET, "/api/v1/notify/templates?limit=1", None)
        .await
        .ok(200);
    assert_eq!(list["items"][0]["name"], "a-first");
    let cursor = list["next_cursor"].as_str().expect("cursor");
    let next = h
        .call(
            Method::GET,
            &format!("/api/v1/notify/templates?limit=1&cursor={cursor}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(next["items"][0]["name"], "t");
    assert_eq!(next["items"][0]["version"], 2);

    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/templates",
            Some(json!({"name": "Bad Name", "channels": {"fax": {"text": "x"}}})),
        )
        .await;
    r.problem(400);
    let mut fields = r.fields();
    fields.sort();
    assert_eq!(fields, vec!["channels.fax", "name"]);

    // A send uses the latest version unless it names one; v2 needs `who`.
    h.subscriber("u1", json!({"webhook_url": rx.url("/v")}))
        .await;
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/send",
            Some(json!({"to": "u1", "template": "t", "data": {"n": 1}})),
        )
        .await;
    r.problem(422);
    assert_eq!(r.fields(), vec!["data.who"]);
    let id = h
        .notify(json!({"to": "u1", "template": "t", "version": 1, "data": {"n": 1}}))
        .await;
    let m = h.wait_state(&id, "delivered").await;
    assert_eq!(m["version"], 1);
    // Optional variables stay optional.
    h.template(
        "optional",
        json!({"webhook": {"text": "{{ n }}{% if note is defined %} ({{ note }}){% endif %}"}}),
    )
    .await;
    let id = h
        .notify(json!({"to": "u1", "template": "optional", "data": {"n": 2}}))
        .await;
    h.wait_state(&id, "delivered").await;
}

pub async fn subscribers_are_managed(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let r = h
        .call(
            Method::PUT,
            "/api/v1/notify/subscribers/u1",
            Some(json!({"email": "x", "phone": "123", "webhook_url": "ftp://h/", "timezone": "Mars/Olympus"})),
        )
        .await;
    r.problem(400);
    let mut fields = r.fields();
    fields.sort();
    assert_eq!(fields, vec!["email", "phone", "timezone", "webhook_url"]);
    let r = h
        .call(
            Method::PUT,
            "/api/v1/notify/subscribers/utc",
            Some(json!({"quiet_hours": {"start": "22:00", "end": "07:00"}})),
        )
        .await;
    // Quiet hours without a time zone are in UTC.
    assert!(matches!(r.status.as_u16(), 200 | 201), "{r:?}");
    h.call(Method::DELETE, "/api/v1/notify/subscribers/utc", None)
        .await
        .ok(204);
    h.call(
        Method::PUT,
        "/api/v1/notify/subscribers/bad%20id",
        Some(json!({})),
    )
    .await
    .problem(400);

    let body = json!({
        "email": "ada@example.com",
        "phone": "+44 20 7946 0958",
        "timezone": "Europe/London",
        "quiet_hours": {"start": "22:00", "end": "07:00"}
    });
    let created = h
        .call(
            Method::PUT,
            "/api/v1/notify/subscribers/u1",
            Some(body.clone()),
        )
        .await
        .ok(201);
    assert_eq!(created["phone"], "+442079460958");
    assert_eq!(created["quiet_hours"]["start"], "22:00");
    h.call(
        Method::PUT,
        "/api/v1/notify/subscribers/u1",
        Some(json!({"email": "ada@example.org"})),
    )
    .await
    .ok(200);
    let got = h
        .call(Method::GET, "/api/v1/notify/subscribers/u1", None)
        .await
        .ok(200);
    assert_eq!(got["email"], "ada@example.org");
    assert!(got.get("phone").is_none(), "PUT replaces: {got}");
    h.subscriber("u2", json!({})).await;
    let list = h
        .call(Method::GET, "/api/v1/notify/subscribers", None)
        .await
        .ok(200);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["u1", "u2"]);
    h.call(Method::DELETE, "/api/v1/notify/subscribers/u1", None)
        .await
        .ok(204);
    h.call(Method::GET, "/api/v1/notify/subscribers/u1", None)
        .await
        .problem(404);
    h.call(Method::DELETE, "/api/v1/notify/subscribers/u1", None)
        .await
        .problem(404);
    h.template("t", webhook_template()).await;
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/send",
            Some(json!({"to": "u1", "template": "t", "data": {"n": 1}})),
        )
        .await;
    // A deleted subscriber: well formed, not possible (422).
    r.problem(422);
    assert_eq!(r.fields(), vec!["to"]);
}

pub async fn routes_need_the_right_caller(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    h.template("t", webhook_template()).await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/auth")}))
        .await;
    let send = json!({"to": "u1", "template": "t", "data": {"n": 1}});
    h.call_as(
        None,
        Method::POST,
        "/api/v1/notify/send",
        Some(send.clone()),
    )
    .await
    .unauthorized();
    h.call_as(
        Some("nobody"),
        Method::POST,
        "/api/v1/notify/send",
        Some(send.clone()),
    )
    .await
    .unauthorized();
    h.call_as(
        Some("links-token"),
        Method::POST,
        "/api/v1/notify/send",
        Some(send.clone()),
    )
    .await
    .problem(403);
    h.call_as(
        Some("reader-token"),
        Method::POST,
        "/api/v1/notify/send",
        Some(send.clone()),
    )
    .await
    .problem(403);
    h.call_as(
        Some("reader-token"),
        Method::GET,
        "/api/v1/notify/templates/t",
        None,
    )
    .await
    .ok(200);
    h.call_as(
        Some("reader-token"),
        Method::GET,
        "/api/v1/notify/subscribers/u1",
        None,
    )
    .await
    .ok(200);
    h.call_as(
        Some("reader-token"),
        Method::POST,
        "/api/v1/notify/templates",
        Some(json!({"name": "x", "channels": webhook_template()})),
    )
    .await
    .problem(403);
    h.call_as(
        Some("reader-token"),
        Method::GET,
        "/api/v1/notify/dead-letters",
        None,
    )
    .await
    .problem(403);
    h.call_as(
        Some("links-token"),
        Method::GET,
        "/api/v1/notify/templates",
        None,
    )
    .await
    .problem(403);

    let sent = h
        .call_as(
            Some("alice-token"),
            Method::POST,
            "/api/v1/notify/send",
            Some(send),
        )
        .await
        .ok(202);
    let id = sent["id"].as_str().expect("id");
    let path = format!("/api/v1/notify/messages/{id}");
    h.call_as(Some("alice-token"), Method::GET, &path, None)
        .await
        .ok(200);
    h.call_as(Some("bob-token"), Method::GET, &path, None)
        .await
        .problem(404);
    h.call(Method::GET, &path, None).await.ok(200);
    h.call(Method::GET, "/api/v1/notify/messages/nope", None)
        .await
        .problem(404);

    let p = h
        .call(Method::GET, "/api/v1/notify/providers", None)
        .await
        .ok(200);
    let channels: BTreeMap<String, String> = p["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().unwrap_or_default().to_owned(),
                c["provider"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        channels,
        BTreeMap::from([
            ("email".to_owned(), "eml-file".to_owned()),
            ("in_app".to_owned(), "in_app".to_owned()),
            ("webhook".to_owned(), "webhook".to_owned()),
        ])
    );
    let spec = h
        .call_as(None, Method::GET, "/api/openapi.json", None)
        .await
        .ok(200);
    for path in [
        "/api/v1/notify/send",
        "/api/v1/notify/send/bulk",
        "/api/v1/notify/messages/{id}",
        "/api/v1/notify/templates",
        "/api/v1/notify/subscribers/{id}",
        "/api/v1/notify/dead-letters/{id}/requeue",
    ] {
        assert!(spec["paths"].get(path).is_some(), "openapi lacks {path}");
    }
}

pub async fn provider_rate_limit_spreads_sends(kind: Kind) {
    let mut s = settings();
    s.rate_limits.insert(
        "webhook".to_owned(),
        ProviderLimit {
            limit: 5,
            period: Duration::from_secs(1),
        },
    );
    let h = Harness::start(kind, s).await;
    let rx = Receiver::start(SECRET).await;
    h.template("t", webhook_template()).await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/limited")}))
        .await;
    const N: usize = 12;
    let before = now_ms();
    let ids = send_many(&h, "u1", N).await;
    wait_all(&h, &ids, "delivered").await;
    assert_exactly_once(&rx, N);
    // GCRA at 5/s with a burst of 5: the last 7 sends need 7 * 200 ms after the first
    // decision, which came after `before`. (A lower bound the limiter guarantees.)
    let last = rx.accepted().iter().map(|d| d.at_ms).max().expect("some");
    assert!(
        last - before >= 1350,
        "12 sends at 5/s took only {} ms",
        last - before
    );
}

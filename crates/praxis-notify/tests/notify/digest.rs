//! Digest mode (events of a window become one message per channel) and the dedupe window,
//! each case run on every backend. Windows are short and every wait is for a condition; the
//! cases that check joining either accept the events in one transaction (a bulk send) or use
//! a window far longer than the test, so no outcome depends on timing.

use axum::http::Method;
use serde_json::{Value, json};

use praxis_infra::Platform;
use praxis_infra::platform::PlatformOptions;
use praxis_infra::sql::DbOptions;
use praxis_notify::store::Store;
use praxis_testkit::backend::bus_options;

use crate::receiver::Receiver;
use crate::support::{DEADLINE, Harness, Kind, SECRET, eventually, settings, webhook_template};

praxis_testkit::backend_matrix!(crate::digest: [
    digest_sends_a_window_of_events_as_one_message_per_channel,
    digest_joins_later_sends_until_the_batch_is_claimed,
    dedupe_window_queues_one_message,
    bad_digest_and_dedupe_values_are_400_or_422,
]);

/// A second process, stopped when dropped.
struct Process(Platform);

impl Drop for Process {
    fn drop(&mut self) {
        self.0.shutdown.cancel();
    }
}

/// Every channel.
const CHANNELS: [&str; 5] = ["webhook", "in_app", "email", "sms", "push"];

/// The delivery of `m` on `channel`.
fn on<'a>(m: &'a Value, channel: &str) -> &'a Value {
    m["deliveries"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["channel"] == channel))
        .unwrap_or_else(|| panic!("no {channel} delivery: {m}"))
}

async fn bulk(h: &Harness, messages: Vec<Value>) -> Value {
    h.call(
        Method::POST,
        "/api/v1/notify/send/bulk",
        Some(json!({ "messages": messages })),
    )
    .await
    .ok(200)
}

fn ids(r: &Value) -> Vec<String> {
    r["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

fn ns(events: &Value) -> Vec<i64> {
    events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["n"].as_i64().expect("n"))
        .collect()
}

pub async fn digest_sends_a_window_of_events_as_one_message_per_channel(kind: Kind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rx = Receiver::start(SECRET).await;
    let gateway = Receiver::start(SECRET).await;
    let mut s = settings();
    s.eml_dir = Some(dir.path().to_path_buf());
    s.sms_url = Some(gateway.url("/sms"));
    s.push_url = Some(gateway.url("/push"));
    let h = Harness::start(kind, s).await;
    h.template(
        "comments",
        json!({
            "webhook": {"text": "{{ digest.count }} new comments"},
            "sms": {"text": "{{ digest.count }} new comments"},
            "push": {"subject": "{{ digest.count }} new comments", "text": "last: {{ who }}"},
            "in_app": {
                "subject": "{{ digest.count }} new comments",
                "text": "{% for e in digest.events %}{{ e.n }};{% endfor %}"
            },
            "email": {
                "subject": "{{ digest.count }} new comments, the last by {{ who }}",
                "text": "{% for e in digest.events %}{{ e.who }} {% endfor %}"
            }
        }),
    )
    .await;
    h.subscriber(
        "u1",
        json!({"webhook_url": rx.url("/u1"), "email": "u1@example.com",
               "phone": "+14155550123", "push_token": "device-1"}),
    )
    .await;

    // Three events accepted in one transaction: expanded together, so all three are in the
    // batch whatever the timing.
    let events: Vec<Value> = (0..3)
        .map(|i| {
            json!({"to": "u1", "template": "comments", "data": {"n": i, "who": format!("w{i}")},
                   "digest": {"window": 1}})
        })
        .collect();
    let r = bulk(&h, events).await;
    assert_eq!(r["accepted"], 3, "{r}");
    let ids = ids(&r);

    let first = h.wait_state(&ids[0], "delivered").await;
    assert_eq!(first["digest"]["window"], 1, "{first}");
    assert_eq!(first["digest"]["key"], "comments", "{first}");
    for channel in CHANNELS {
        let batch = on(&first, channel);
        assert_eq!(batch["state"], "delivered", "{first}");
        assert_eq!(batch["digest_count"], 3, "{first}");
        assert_eq!(batch["digest_key"], "comments", "{first}");
        assert_eq!(batch["attempts"], 1, "{first}");
    }
    // The later events went into the batches, and say so.
    for id in &ids[1..] {
        let m = h.wait_state(id, "digested").await;
        for channel in CHANNELS {
            let d = on(&m, channel);
            assert_eq!(d["state"], "digested", "{m}");
            assert_eq!(d["digest_of"], on(&first, channel)["id"], "{m}");
            assert_eq!(d["digest_message_id"], ids[0].as_str(), "{m}");
            assert_eq!(d["attempts"], 0, "{m}");
        }
    }

    // One webhook: the latest event's data plus the digest, events oldest first.
    let got = rx.accepted();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].id.as_str(),
        on(&first, "webhook")["id"].as_str().expect("id")
    );
    let data = &got[0].body["data"];
    assert_eq!(data["digest"]["count"], 3, "{data}");
    assert_eq!(ns(&data["digest"]["events"]), vec![0, 1, 2], "{data}");
    assert_eq!(data["n"], 2, "the latest event's data: {data}");
    assert_eq!(rx.bad_signatures(), 0);

    // One SMS and one push through the gateways.
    let mut sent: Vec<(String, String, String, i64)> = gateway
        .accepted()
        .iter()
        .map(|d| {
            (
                d.body["to"].as_str().unwrap_or_default().to_owned(),
                d.body["title"].as_str().unwrap_or_default().to_owned(),
                d.body["text"].as_str().unwrap_or_default().to_owned(),
                d.body["data"]["digest"]["count"]
                    .as_i64()
                    .unwrap_or_default(),
            )
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        vec![
            (
                "+14155550123".into(),
                String::new(),
                "3 new comments".into(),
                3
            ),
            (
                "device-1".into(),
                "3 new comments".into(),
                "last: w2".into(),
                3
            ),
        ]
    );

    // One inbox item, one email.
    let store = Store::new(h.platform.db.clone());
    assert_eq!(store.inbox_count("u1").await.expect("count"), 1);
    let (title, body): (String, String) =
        sqlx::query_as("SELECT title, body FROM notify_inbox WHERE subscriber_id = $1")
            .bind("u1")
            .fetch_one(h.platform.db.pool())
            .await
            .expect("inbox item");
    assert_eq!(
        (title.as_str(), body.as_str()),
        ("3 new comments", "0;1;2;")
    );
    let emails: Vec<_> = std::fs::read_dir(dir.path())
        .expect("eml dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(emails.len(), 1, "{emails:?}");
    let eml = std::fs::read_to_string(emails[0].path()).expect("eml");
    assert!(
        eml.contains("Subject: 3 new comments, the last by w2"),
        "{eml}"
    );
    assert!(eml.contains("w0 w1 w2"), "{eml}");

    // An event after the batch was sent opens a new batch.
    let late = h
        .notify(
            json!({"to": "u1", "template": "comments", "channels": ["webhook"],
                       "data": {"n": 9, "who": "w9"}, "digest": {"window": 1}}),
        )
        .await;
    let m = h.wait_state(&late, "delivered").await;
    let d = on(&m, "webhook");
    assert_eq!(d["digest_count"], 1, "{m}");
    assert!(d.get("digest_of").is_none(), "{m}");
    let got = rx.accepted();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].body["data"]["digest"]["count"], 1);
    assert_eq!(ns(&got[1].body["data"]["digest"]["events"]), vec![9]);
    assert_eq!(rx.accepted_per_id().len(), 2, "each batch sent once");
}

pub async fn digest_joins_later_sends_until_the_batch_is_claimed(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    h.template(
        "likes",
        json!({"webhook": {"text": "{{ digest.count }} likes"}}),
    )
    .await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/u1")}))
        .await;
    h.subscriber("u2", json!({"webhook_url": rx.url("/u2")}))
        .await;
    // A window far longer than the test: the batch stays open while it runs.
    let event = |to: &str, n: i64, key: Option<&str>| {
        let mut digest = json!({"window": 3600});
        if let Some(k) = key {
            digest["key"] = json!(k);
        }
        json!({"to": to, "template": "likes", "data": {"n": n}, "digest": digest})
    };
    let first = h.notify(event("u1", 1, None)).await;
    // Expansion runs events in parallel on PostgreSQL, in no set order: the second event is
    // sent once the first has opened the batch, so the batch is the first's.
    eventually(DEADLINE, "the first event opens the batch", || async {
        let m1 = h.message(&first).await;
        (!m1["deliveries"].as_array().expect("list").is_empty()).then_some(())
    })
    .await;
    let second = h.notify(event("u1", 2, None)).await;
    let m = h.wait_state(&second, "digested").await;
    let m1 = h.message(&first).await;
    assert_eq!(m1["state"], "queued", "{m1}");
    let batch = on(&m1, "webhook");
    assert_eq!(on(&m, "webhook")["digest_of"], batch["id"], "{m}");
    assert_eq!(on(&m, "webhook")["digest_message_id"], first.as_str());
    eventually(DEADLINE, "the batch counts two events", || async {
        let m1 = h.message(&first).await;
        (on(&m1, "webhook")["digest_count"] == 2).then_some(())
    })
    .await;
    // Due at the accept time + window.
    let time = |v: &Value| {
        v.as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .unwrap_or_else(|| panic!("not a time: {v}"))
            .as_millisecond()
    };
    assert_eq!(
        time(&batch["next_attempt_at"]) - time(&m1["created_at"]),
        3_600_000,
        "{m1}"
    );

    // Another key, another subscriber or another sender: another batch.
    let other_key = h.notify(event("u1", 3, Some("likes:photos"))).await;
    let other_sub = h.notify(event("u2", 4, None)).await;
    let r = h
        .call_as(
            Some("alice-token"),
            Method::POST,
            "/api/v1/notify/send",
            Some(event("u1", 5, None)),
        )
        .await
        .ok(202);
    let by_alice = r["id"].as_str().expect("id").to_owned();
    for id in [&other_key, &other_sub] {
        let m = eventually(DEADLINE, "expanded", || async {
            let m = h.message(id).await;
            (!m["deliveries"].as_array().expect("list").is_empty()).then_some(m)
        })
        .await;
        let d = on(&m, "webhook");
        assert_eq!(d["state"], "queued", "{m}");
        assert_eq!(d["digest_count"], 1, "{m}");
    }
    let m = eventually(DEADLINE, "alice's event expanded", || async {
        let m = h
            .call_as(
                Some("alice-token"),
                Method::GET,
                &format!("/api/v1/notify/messages/{by_alice}"),
                None,
            )
            .await
            .ok(200);
        (!m["deliveries"].as_array().expect("list").is_empty()).then_some(m)
    })
    .await;
    assert_eq!(on(&m, "webhook")["digest_count"], 1, "{m}");

    // Events sent at once share one batch, also when two processes expand them (scaled: a
    // second process on the same PostgreSQL and NATS consumer group). The expansions lock the
    // subscriber row; this checks the outcome, it cannot force the interleaving.
    h.subscriber("u3", json!({"webhook_url": rx.url("/u3")}))
        .await;
    let _other = match kind {
        Kind::Scaled => {
            let platform = Platform::connect_with(
                &h.backend.config,
                &PlatformOptions {
                    db: DbOptions {
                        max_connections: 4,
                        ..DbOptions::default()
                    },
                    bus: bus_options(),
                },
            )
            .await
            .expect("second platform");
            // The first process applied the migrations on this database.
            praxis_notify::Notify::launch(&platform, h.settings.clone())
                .await
                .expect("second notify process");
            Some(Process(platform))
        }
        Kind::Embedded => None,
    };
    let answers = futures::future::join_all((0..20).map(|n| {
        h.call(
            Method::POST,
            "/api/v1/notify/send",
            Some(event("u3", 100 + n, None)),
        )
    }))
    .await;
    let sent: Vec<String> = answers
        .iter()
        .map(|r| r.ok(202)["id"].as_str().expect("id").to_owned())
        .collect();
    let mut batches = std::collections::BTreeSet::new();
    for id in &sent {
        let m = eventually(DEADLINE, "expanded", || async {
            let m = h.message(id).await;
            (!m["deliveries"].as_array().expect("list").is_empty()).then_some(m)
        })
        .await;
        let d = on(&m, "webhook");
        batches.insert(match d["digest_of"].as_str() {
            Some(of) => of.to_owned(),
            None => d["id"].as_str().expect("id").to_owned(),
        });
    }
    assert_eq!(batches.len(), 1, "one batch: {batches:?}");
    let count: i64 = sqlx::query_scalar("SELECT digest_count FROM notify_deliveries WHERE id = $1")
        .bind(batches.first().expect("batch"))
        .fetch_one(h.platform.db.pool())
        .await
        .expect("count");
    assert_eq!(count, 20);

    // A batch claimed by a dispatcher takes no more events: the next one opens a new batch.
    let batch_id = batch["id"].as_str().expect("batch id").to_owned();
    let set = |sql: &'static str| {
        let db = h.platform.db.clone();
        let id = batch_id.clone();
        async move {
            sqlx::query(sql)
                .bind(id)
                .execute(db.pool())
                .await
                .expect("update the batch");
        }
    };
    set("UPDATE notify_deliveries SET state = 'sending' WHERE id = $1").await;
    let third = h.notify(event("u1", 7, None)).await;
    let m3 = eventually(DEADLINE, "the third event expanded", || async {
        let m = h.message(&third).await;
        (!m["deliveries"].as_array().expect("list").is_empty()).then_some(m)
    })
    .await;
    let newer = on(&m3, "webhook");
    assert_eq!(newer["state"], "queued", "{m3}");
    assert_eq!(newer["digest_count"], 1, "{m3}");
    assert!(newer.get("digest_of").is_none(), "{m3}");
    // Tried once and queued for a retry: still closed; the next event joins the newer batch.
    set("UPDATE notify_deliveries SET state = 'queued', attempts = 1 WHERE id = $1").await;
    let fourth = h.notify(event("u1", 8, None)).await;
    let m4 = h.wait_state(&fourth, "digested").await;
    assert_eq!(on(&m4, "webhook")["digest_of"], newer["id"], "{m4}");
    assert_eq!(
        on(&h.message(&first).await, "webhook")["digest_count"],
        2,
        "the claimed batch did not change"
    );

    // Preferences apply before joining: an opted-out channel is suppressed, not digested.
    h.call(
        Method::PUT,
        "/api/v1/notify/subscribers/u1/preferences",
        Some(json!({"channels": {"webhook": false}})),
    )
    .await
    .ok(200);
    let muted = h.notify(event("u1", 6, None)).await;
    let m = h.wait_state(&muted, "suppressed").await;
    assert!(on(&m, "webhook").get("digest_of").is_none(), "{m}");
    let m1 = h.message(&first).await;
    assert_eq!(on(&m1, "webhook")["digest_count"], 2, "{m1}");
    assert!(rx.accepted().is_empty(), "nothing is due yet");
}

pub async fn dedupe_window_queues_one_message(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    h.template("t", webhook_template()).await;
    h.subscriber("u1", json!({"webhook_url": rx.url("/u1")}))
        .await;
    h.subscriber("u2", json!({"webhook_url": rx.url("/u2")}))
        .await;
    let send = |to: &str, n: i64, window: i64| json!({"to": to, "template": "t", "data": {"n": n}, "dedupe_window": window});

    // A second send within the window (even with other data) answers the first id.
    let first = h
        .call(Method::POST, "/api/v1/notify/send", Some(send("u1", 1, 1)))
        .await
        .ok(202);
    let first = first["id"].as_str().expect("id").to_owned();
    let again = h
        .call(Method::POST, "/api/v1/notify/send", Some(send("u1", 2, 1)))
        .await;
    // Either still inside the window (200, the first id) or, on a very slow machine, after it.
    if again.status == 200 {
        assert_eq!(again.json()["id"], first.as_str());
    } else {
        let id = again.ok(202)["id"].as_str().expect("id").to_owned();
        h.wait_state(&id, "delivered").await;
    }
    let m = h.wait_state(&first, "delivered").await;
    assert_eq!(m["dedupe_window"], 1, "{m}");

    // After the window: a new message.
    let later = eventually(DEADLINE, "the window ends", || async {
        let r = h
            .call(Method::POST, "/api/v1/notify/send", Some(send("u1", 3, 1)))
            .await;
        match r.status.as_u16() {
            202 => Some(r.json()["id"].as_str().expect("id").to_owned()),
            200 => None,
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    })
    .await;
    assert_ne!(later, first);
    h.wait_state(&later, "delivered").await;

    // Concurrent identical sends: one is queued, every answer names it.
    let body = send("u2", 7, 3600);
    let answers = futures::future::join_all(
        (0..8).map(|_| h.call(Method::POST, "/api/v1/notify/send", Some(body.clone()))),
    )
    .await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        7,
        "{statuses:?}"
    );
    let queued: Vec<String> = answers
        .iter()
        .map(|r| r.json()["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(queued.iter().all(|id| *id == queued[0]), "{queued:?}");
    h.wait_state(&queued[0], "delivered").await;

    // Per item in a bulk send; another recipient or template is not a duplicate.
    h.template("t2", webhook_template()).await;
    let r = bulk(
        &h,
        vec![
            send("u2", 8, 3600),
            json!({"to": "u2", "template": "t2", "data": {"n": 9}, "dedupe_window": 3600}),
            json!({"to": "u2", "template": "t2", "data": {"n": 10}, "dedupe_window": 3600}),
            json!({"to": "u1", "template": "t2", "data": {"n": 11}, "dedupe_window": 3600}),
        ],
    )
    .await;
    let statuses: Vec<u64> = r["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|i| i["status"].as_u64().expect("status"))
        .collect();
    assert_eq!(statuses, vec![200, 202, 200, 202], "{r}");
    let got = ids(&r);
    assert_eq!(got[0], queued[0]);
    assert_eq!(got[1], got[2]);
    assert_eq!(r["duplicates"], 2, "{r}");
    for id in [&got[1], &got[3]] {
        h.wait_state(id, "delivered").await;
    }

    // Each queued message was sent once; the duplicates were never queued.
    let store = Store::new(h.platform.db.clone());
    let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notify_messages")
        .fetch_one(store.db().pool())
        .await
        .expect("count");
    let expected = 3 + i64::from(again.status == 202) + 2;
    assert_eq!(messages, expected);
    let per_id = rx.accepted_per_id();
    assert_eq!(per_id.len() as i64, expected, "{per_id:?}");
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");
}

pub async fn bad_digest_and_dedupe_values_are_400_or_422(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    h.template(
        "d",
        json!({"webhook": {"text": "{{ digest.count }} (last {{ n }}): {% for e in digest.events %}{{ e.n }}{% endfor %}"}}),
    )
    .await;
    h.subscriber("u1", json!({"webhook_url": "https://hooks.example.com/u1"}))
        .await;
    let ok = json!({"to": "u1", "template": "d", "data": {"n": 1}, "digest": {"window": 60}});
    let with = |patch: Value| {
        let mut body = ok.clone();
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(json!({"digest": {"window": 0}})), "digest.window"),
        (
            with(json!({"digest": {"window": 604_801}})),
            "digest.window",
        ),
        (with(json!({"digest": {"window": "soon"}})), "digest.window"),
        (
            with(json!({"digest": {"window": 60, "key": "a b"}})),
            "digest.key",
        ),
        (
            with(json!({"digest": {"window": 60, "every": 2}})),
            "digest",
        ),
        (with(json!({"digest": 60})), "digest"),
        (
            with(json!({"to": {"webhook": "https://hooks.example.com/x"}})),
            "digest",
        ),
        (with(json!({"to": {"topic": "news"}})), "digest"),
        (with(json!({"send_at": "2030-01-01T00:00:00Z"})), "digest"),
        (
            with(json!({"data": {"n": 1, "digest": "mine"}})),
            "data.digest",
        ),
        (with(json!({"data": {}})), "data.n"),
        (with(json!({"dedupe_window": 0})), "dedupe_window"),
        (with(json!({"dedupe_window": 604_801})), "dedupe_window"),
        (with(json!({"dedupe_window": "1h"})), "dedupe_window"),
        (
            with(json!({"dedupe_window": 60, "idempotency_key": "k1"})),
            "dedupe_window",
        ),
        // The template reads the digest: without digest mode the data lacks it.
        (
            json!({"to": "u1", "template": "d", "data": {"n": 1}}),
            "data.digest",
        ),
    ];
    // The shape (what the OpenAPI schema states) is a 400; fields that exclude each other, a
    // recipient that cannot take a digest and data the template misses are a 422.
    let unprocessable = |body: &serde_json::Value, field: &str| {
        matches!(field, "data.digest" | "data.n")
            || (field == "digest" && (body["to"].is_object() || body.get("send_at").is_some()))
            || (field == "dedupe_window" && body.get("idempotency_key").is_some())
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
            r.fields()
                .iter()
                .any(|f| f == field || f.starts_with(&format!("{field}."))),
            "{body} should name {field}: {p}"
        );
    }
    // With the Idempotency-Key header too.
    let r = h
        .call_with(
            Method::POST,
            "/api/v1/notify/send",
            Some(with(json!({"dedupe_window": 60}))),
            &[
                ("authorization", "Bearer test-admin-key"),
                ("idempotency-key", "k2"),
            ],
        )
        .await;
    r.problem(422);
    assert_eq!(r.fields(), vec!["dedupe_window"]);
    // In a bulk send, named per item.
    let r = bulk(
        &h,
        vec![ok.clone(), with(json!({"digest": {"window": -5}}))],
    )
    .await;
    assert_eq!(r["results"][0]["status"], 202, "{r}");
    assert_eq!(r["results"][1]["status"], 400, "{r}");
    assert_eq!(
        r["results"][1]["problem"]["errors"][0]["field"], "messages[1].digest.window",
        "{r}"
    );
    // The valid one is fine.
    h.call(Method::POST, "/api/v1/notify/send", Some(ok))
        .await
        .ok(202);
    // Both fields are in the OpenAPI description.
    let spec = h
        .call_as(None, Method::GET, "/api/openapi.json", None)
        .await
        .ok(200);
    let schemas = &spec["components"]["schemas"];
    assert!(
        schemas["DigestRequest"]["properties"]["window"].is_object(),
        "{schemas}"
    );
    assert!(
        schemas["SendRequest"]["properties"]["dedupe_window"].is_object(),
        "{schemas}"
    );
}

//! Preferences (opt-outs -> suppressed deliveries), quiet hours (a later due time) and topics
//! (broadcast), each case run on every backend.

use axum::http::Method;
use serde_json::{Value, json};

use praxis_notify::domain::model::now_ms;
use praxis_notify::store::Store;

use crate::receiver::Receiver;
use crate::support::{DEADLINE, Harness, Kind, SECRET, eventually, settings};

praxis_testkit::backend_matrix!(crate::preferences: [
    opt_outs_are_suppressed_and_never_sent,
    quiet_hours_delay_to_the_window_end,
    topic_broadcast_reaches_every_subscriber_once,
    bad_preferences_and_topics_are_400,
]);

/// The delivery of `m` on `channel` to `address`.
fn delivery<'a>(m: &'a Value, channel: &str, address: &str) -> &'a Value {
    m["deliveries"]
        .as_array()
        .and_then(|ds| {
            ds.iter()
                .find(|d| d["channel"] == channel && d["address"] == address)
        })
        .unwrap_or_else(|| panic!("no {channel} delivery to {address}: {m}"))
}

async fn put_preferences(h: &Harness, id: &str, body: Value) -> crate::support::Resp {
    h.call(
        Method::PUT,
        &format!("/api/v1/notify/subscribers/{id}/preferences"),
        Some(body),
    )
    .await
}

pub async fn opt_outs_are_suppressed_and_never_sent(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    h.template(
        "t",
        json!({"webhook": {"text": "hello {{ n }}"}, "in_app": {"subject": "s", "text": "hello {{ n }}"}}),
    )
    .await;
    let hook1 = rx.url("/u1");
    let hook2 = rx.url("/u2");
    h.subscriber("u1", json!({"webhook_url": hook1})).await;
    h.subscriber("u2", json!({"webhook_url": hook2})).await;
    let prefs = json!({"channels": {"webhook": false}, "topics": {"marketing": {"in_app": false}}});
    let stored = put_preferences(&h, "u1", prefs.clone()).await.ok(200);
    assert_eq!(stored, prefs);
    let got = h
        .call(
            Method::GET,
            "/api/v1/notify/subscribers/u1/preferences",
            None,
        )
        .await
        .ok(200);
    assert_eq!(got, prefs);
    // Replacing the subscriber's addresses keeps its preferences.
    h.subscriber("u1", json!({"webhook_url": hook1})).await;

    // Opted out of webhook: suppressed, in-app still delivered.
    let first = h
        .notify(json!({"to": "u1", "template": "t", "data": {"n": 1}, "channels": ["webhook", "in_app"]}))
        .await;
    let m = h.wait_state(&first, "delivered").await;
    let d = delivery(&m, "webhook", &hook1);
    assert_eq!(d["state"], "suppressed", "{m}");
    assert_eq!(d["attempts"], 0, "{m}");
    assert!(
        d["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("opted out of webhook")),
        "{m}"
    );
    assert!(d.get("next_attempt_at").is_none(), "{m}");
    assert_eq!(delivery(&m, "in_app", "u1")["state"], "delivered", "{m}");

    // Opted out of the topic on in-app: the whole message is suppressed.
    let second = h
        .notify(json!({"to": "u1", "template": "t", "data": {"n": 2}, "channels": ["in_app"], "topic": "marketing"}))
        .await;
    let m = h.wait_state(&second, "suppressed").await;
    assert!(
        delivery(&m, "in_app", "u1")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("marketing")),
        "{m}"
    );

    // Someone who did not opt out gets it: the receiver works, and saw only that one.
    let third = h
        .notify(json!({"to": "u2", "template": "t", "data": {"n": 3}, "channels": ["webhook"], "topic": "marketing"}))
        .await;
    h.wait_state(&third, "delivered").await;
    let accepted = rx.accepted();
    assert_eq!(accepted.len(), 1, "only u2's webhook reaches the receiver");
    let store = Store::new(h.platform.db.clone());
    assert_eq!(store.inbox_count("u1").await.expect("count"), 1);

    // Opting back in: sent again.
    put_preferences(&h, "u1", json!({})).await.ok(200);
    let fourth = h
        .notify(json!({"to": "u1", "template": "t", "data": {"n": 4}, "channels": ["webhook"]}))
        .await;
    h.wait_state(&fourth, "delivered").await;
    assert_eq!(rx.accepted().len(), 2);
}

pub async fn quiet_hours_delay_to_the_window_end(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    h.template("t", json!({"in_app": {"subject": "s", "text": "x"}}))
        .await;
    // Asia/Kolkata is UTC+05:30 all year (no daylight saving).
    h.subscriber(
        "night-owl",
        json!({"timezone": "Asia/Kolkata", "quiet_hours": {"start": "22:00", "end": "07:00"}}),
    )
    .await;
    h.subscriber("no-quiet", json!({"timezone": "Asia/Kolkata"}))
        .await;
    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;
    // A UTC midnight at least a day ahead; 03:00 local that date is midnight - 2h30 (UTC),
    // inside the window, which ends at 07:00 local = midnight + 1h30.
    let midnight = (now_ms() / DAY + 2) * DAY;
    let send_at = midnight - 5 * HOUR / 2;
    let release = midnight + 3 * HOUR / 2;
    let at = praxis_notify::domain::model::rfc3339;
    let quiet = h
        .notify(json!({"to": "night-owl", "template": "t", "send_at": at(send_at)}))
        .await;
    let plain = h
        .notify(json!({"to": "no-quiet", "template": "t", "send_at": at(send_at)}))
        .await;
    for (id, due) in [(&quiet, release), (&plain, send_at)] {
        let m = eventually(DEADLINE, "the message is expanded", || async {
            let m = h.message(id).await;
            (!m["deliveries"].as_array().is_none_or(Vec::is_empty)).then_some(m)
        })
        .await;
        let d = &m["deliveries"][0];
        assert_eq!(d["state"], "queued", "{m}");
        assert_eq!(d["next_attempt_at"], at(due).as_str(), "{m}");
        assert_eq!(d["scheduled_at"], at(due).as_str(), "{m}");
        assert_eq!(d["attempts"], 0, "{m}");
    }
}

pub async fn topic_broadcast_reaches_every_subscriber_once(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    let rx = Receiver::start(SECRET).await;
    h.template("news", json!({"webhook": {"text": "news {{ n }}"}}))
        .await;
    for id in ["s1", "s2", "s3", "s5"] {
        h.subscriber(id, json!({"webhook_url": rx.url(&format!("/{id}"))}))
            .await;
    }
    h.subscriber("s4", json!({"email": "s4@example.com"})).await;
    let r = h
        .call(
            Method::PUT,
            "/api/v1/notify/topics/news",
            Some(json!({"name": "News"})),
        )
        .await
        .ok(201);
    assert_eq!(r["subscriber_count"], 0, "{r}");
    h.call(Method::PUT, "/api/v1/notify/topics/news", None)
        .await
        .ok(200);
    let add = |ids: Value| {
        h.call(
            Method::POST,
            "/api/v1/notify/topics/news/subscribers",
            Some(json!({ "subscribers": ids })),
        )
    };
    assert_eq!(
        add(json!(["s1", "s2", "s3", "s4", "s5"])).await.ok(200)["added"],
        5
    );
    assert_eq!(add(json!(["s1"])).await.ok(200)["added"], 0);
    h.call(
        Method::DELETE,
        "/api/v1/notify/topics/news/subscribers/s3",
        None,
    )
    .await
    .ok(204);
    h.call(
        Method::DELETE,
        "/api/v1/notify/topics/news/subscribers/s3",
        None,
    )
    .await
    .problem(404);
    let topic = h
        .call(Method::GET, "/api/v1/notify/topics/news?limit=2", None)
        .await
        .ok(200);
    assert_eq!(topic["name"], "News", "{topic}");
    assert_eq!(topic["subscriber_count"], 4, "{topic}");
    assert_eq!(topic["subscribers"], json!(["s1", "s2"]), "{topic}");
    let cursor = topic["next_cursor"].as_str().expect("cursor").to_owned();
    let rest = h
        .call(
            Method::GET,
            &format!("/api/v1/notify/topics/news?limit=2&cursor={cursor}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(rest["subscribers"], json!(["s4", "s5"]), "{rest}");
    // s2 opted out of this topic's webhooks.
    put_preferences(&h, "s2", json!({"topics": {"news": {"webhook": false}}}))
        .await
        .ok(200);

    let id = h
        .notify(json!({"to": {"topic": "news"}, "template": "news", "data": {"n": 1}}))
        .await;
    let m = h.wait_state(&id, "delivered").await;
    assert_eq!(m["to"], json!({"topic": "news"}), "{m}");
    let deliveries = m["deliveries"].as_array().expect("deliveries");
    assert_eq!(
        deliveries.len(),
        3,
        "s1, s2 (suppressed), s5; s4 has no webhook: {m}"
    );
    assert_eq!(
        delivery(&m, "webhook", &rx.url("/s1"))["state"],
        "delivered"
    );
    assert_eq!(
        delivery(&m, "webhook", &rx.url("/s5"))["state"],
        "delivered"
    );
    assert_eq!(
        delivery(&m, "webhook", &rx.url("/s2"))["state"],
        "suppressed"
    );
    let per_id = rx.accepted_per_id();
    assert_eq!(per_id.len(), 2, "{per_id:?}");
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");

    // A redelivered accept event creates nothing new.
    let store = Store::new(h.platform.db.clone());
    let again = praxis_notify::workers::expand::expand(&store, std::slice::from_ref(&id))
        .await
        .expect("expand");
    assert!(again.is_empty());
    assert_eq!(
        h.message(&id).await["deliveries"].as_array().map(Vec::len),
        Some(3)
    );

    // Unknown topics are refused at the accept (well formed, not possible: 422).
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/send",
            Some(json!({"to": {"topic": "nope"}, "template": "news", "data": {"n": 1}})),
        )
        .await;
    r.problem(422);
    assert_eq!(r.fields(), vec!["to.topic"]);
}

pub async fn bad_preferences_and_topics_are_400(kind: Kind) {
    let h = Harness::start(kind, settings()).await;
    h.subscriber("u1", json!({})).await;
    for (body, fields) in [
        (json!({"channels": {"fax": false}}), vec!["channels.fax"]),
        (json!({"channels": {"email": "no"}}), vec!["channels.email"]),
        (json!({"channels": []}), vec!["channels"]),
        (
            json!({"topics": {"bad key": {"email": false}}}),
            vec!["topics.bad key"],
        ),
        (
            json!({"topics": {"news": {"pigeon": false}}}),
            vec!["topics.news.pigeon"],
        ),
        (json!({"colour": 1}), vec!["colour"]),
    ] {
        let r = put_preferences(&h, "u1", body.clone()).await;
        r.problem(400);
        assert_eq!(r.fields(), fields, "{body}");
    }
    put_preferences(&h, "nobody", json!({})).await.problem(404);

    for (body, fields) in [
        (
            json!({"timezone": "Mars/Olympus", "quiet_hours": {"start": "22:00", "end": "07:00"}}),
            vec!["timezone"],
        ),
        (
            json!({"timezone": "UTC", "quiet_hours": {"start": "25:00", "end": "07:00"}}),
            vec!["quiet_hours.start"],
        ),
        (
            json!({"timezone": "UTC", "quiet_hours": {"start": "07:00", "end": "07:00"}}),
            vec!["quiet_hours"],
        ),
    ] {
        let r = h
            .call(
                Method::PUT,
                "/api/v1/notify/subscribers/u2",
                Some(body.clone()),
            )
            .await;
        r.problem(400);
        assert_eq!(r.fields(), fields, "{body}");
    }
    // Quiet hours without a time zone are in UTC.
    let r = h
        .call(
            Method::PUT,
            "/api/v1/notify/subscribers/u2",
            Some(json!({"quiet_hours": {"start": "22:00", "end": "07:00"}})),
        )
        .await;
    assert!(matches!(r.status.as_u16(), 200 | 201), "{r:?}");

    let r = h
        .call(Method::PUT, "/api/v1/notify/topics/bad!key", None)
        .await;
    r.problem(400);
    assert_eq!(r.fields(), vec!["key"]);
    h.call(Method::PUT, "/api/v1/notify/topics/t1", None)
        .await
        .ok(201);
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/topics/t1/subscribers",
            Some(json!({"subscribers": ["u1", "ghost"]})),
        )
        .await;
    // An id of no subscriber: 404 naming it (a malformed id is a 400 naming its item).
    let p = r.problem(404);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("subscribers[1] \"ghost\"")),
        "{p}"
    );
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/topics/t1/subscribers",
            Some(json!({"subscribers": ["u1", "bad id"]})),
        )
        .await;
    r.problem(400);
    assert_eq!(r.fields(), vec!["subscribers[1]"]);
    h.call(
        Method::POST,
        "/api/v1/notify/topics/none/subscribers",
        Some(json!({"subscribers": ["u1"]})),
    )
    .await
    .problem(404);
    h.call(Method::GET, "/api/v1/notify/topics/none", None)
        .await
        .problem(404);
    // Reading topics needs notify:read, writing notify:write.
    h.call_as(
        Some("reader-token"),
        Method::GET,
        "/api/v1/notify/topics/t1",
        None,
    )
    .await
    .ok(200);
    h.call_as(
        Some("reader-token"),
        Method::PUT,
        "/api/v1/notify/topics/t2",
        None,
    )
    .await
    .problem(403);
}

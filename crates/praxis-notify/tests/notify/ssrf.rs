//! The SSRF guard of webhook URLs, each case run on every backend: literal IPs in refused
//! ranges are a 400 at accept, names resolving to refused addresses fail permanently at send
//! time without reaching the receiver, and the CIDR setting allows chosen ranges.

use axum::http::Method;
use serde_json::json;

use praxis_notify::NotifySettings;

use crate::receiver::Receiver;
use crate::support::{Harness, Kind, SECRET, settings, webhook_template};

praxis_testkit::backend_matrix!(crate::ssrf: [
    literal_private_ips_are_refused_at_accept,
    names_resolving_to_loopback_fail_without_reaching_the_receiver,
    allowed_cidrs_are_delivered,
]);

/// The test settings with the guard on (the default of a deployment).
fn guarded() -> NotifySettings {
    NotifySettings {
        webhook_allow_private: false,
        ..settings()
    }
}

async fn literal_private_ips_are_refused_at_accept(kind: Kind) {
    let h = Harness::start(kind, guarded()).await;
    let rx = Receiver::start(SECRET).await;
    h.template("t", webhook_template()).await;
    for url in [
        rx.url("/h"),
        "http://[::1]:9/h".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.0.0.1/h".to_owned(),
        "http://[::ffff:192.168.1.1]/h".to_owned(),
    ] {
        let r = h
            .call(
                Method::POST,
                "/api/v1/notify/send",
                Some(json!({"to": {"webhook": url}, "template": "t", "data": {"n": 1}})),
            )
            .await;
        let p = r.problem(400);
        assert_eq!(r.fields(), vec!["to.webhook"], "{url}: {p}");
        let message = p["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("SSRF guard")
                && message.contains("notify_webhook_allow_cidrs")
                && message.contains("notify_webhook_allow_private"),
            "{url}: {message}"
        );

        let r = h
            .call(
                Method::PUT,
                "/api/v1/notify/subscribers/u1",
                Some(json!({"webhook_url": url})),
            )
            .await;
        let p = r.problem(400);
        assert_eq!(r.fields(), vec!["webhook_url"], "{url}: {p}");
    }
    // Still refused: not http(s).
    let r = h
        .call(
            Method::PUT,
            "/api/v1/notify/subscribers/u1",
            Some(json!({"webhook_url": "file:///etc/passwd"})),
        )
        .await;
    r.problem(400);
    assert_eq!(r.fields(), vec!["webhook_url"]);
    // Public addresses and names are accepted (names are judged at send time).
    h.subscriber("u1", json!({"webhook_url": "https://hooks.example.com/u1"}))
        .await;
    h.subscriber("u2", json!({"webhook_url": "http://8.8.8.8/u2"}))
        .await;
    assert!(rx.accepted().is_empty() && rx.refused() == 0);
}

async fn names_resolving_to_loopback_fail_without_reaching_the_receiver(kind: Kind) {
    let h = Harness::start(kind, guarded()).await;
    let rx = Receiver::start(SECRET).await;
    h.template("t", webhook_template()).await;
    // `localhost` is a name: accepted, then refused by the resolver at send time.
    let url = rx.url("/h").replace("127.0.0.1", "localhost");
    h.subscriber("u1", json!({"webhook_url": url})).await;
    for body in [
        json!({"to": "u1", "template": "t", "data": {"n": 1}}),
        json!({"to": {"webhook": url}, "template": "t", "data": {"n": 2}}),
    ] {
        let id = h.notify(body).await;
        let m = h.wait_state(&id, "failed").await;
        let d = &m["deliveries"][0];
        assert_eq!(d["attempts"], 1, "permanent: no retry: {m}");
        let detail = d["attempt_log"][0]["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(
                "blocked by the SSRF guard: localhost resolves only to refused addresses"
            ) && detail.contains("127.0.0.1: loopback"),
            "{m}"
        );
        assert_eq!(d["attempt_log"][0]["ok"], false, "{m}");
    }
    assert!(rx.accepted().is_empty(), "the receiver was reached");
    assert_eq!(rx.refused(), 0, "the receiver was reached");
}

async fn allowed_cidrs_are_delivered(kind: Kind) {
    let h = Harness::start(
        kind,
        NotifySettings {
            webhook_allow_cidrs: vec!["127.0.0.0/8".parse().expect("cidr")],
            ..guarded()
        },
    )
    .await;
    let rx = Receiver::start(SECRET).await;
    h.template("t", webhook_template()).await;
    // A literal address in the allowed range, as a subscriber's URL and inline.
    h.subscriber("u1", json!({"webhook_url": rx.url("/literal")}))
        .await;
    let a = h
        .notify(json!({"to": "u1", "template": "t", "data": {"n": 1}}))
        .await;
    let b = h
        .notify(json!({"to": {"webhook": rx.url("/inline")}, "template": "t", "data": {"n": 2}}))
        .await;
    // A name: `localhost` may also resolve to ::1, which stays refused and is dropped.
    let c = h
        .notify(json!({
            "to": {"webhook": rx.url("/name").replace("127.0.0.1", "localhost")},
            "template": "t",
            "data": {"n": 3}
        }))
        .await;
    for id in [&a, &b, &c] {
        let m = h.wait_state(id, "delivered").await;
        assert_eq!(m["deliveries"][0]["attempts"], 1, "{m}");
    }
    let mut got: Vec<i64> = rx
        .accepted()
        .iter()
        .filter_map(|d| d.body["data"]["n"].as_i64())
        .collect();
    got.sort_unstable();
    assert_eq!(got, vec![1, 2, 3]);
    // Outside the allowed range: still refused.
    let r = h
        .call(
            Method::POST,
            "/api/v1/notify/send",
            Some(
                json!({"to": {"webhook": "http://10.1.2.3/h"}, "template": "t", "data": {"n": 4}}),
            ),
        )
        .await;
    r.problem(400);
    assert_eq!(r.fields(), vec!["to.webhook"]);
}

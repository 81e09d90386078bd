//! Expiry, visit limits, query forwarding, unknown codes.

use std::time::Duration;

use axum::http::Method;
use serde_json::json;

use crate::support::{Harness, code, eventually};

pub async fn expiry_is_gone(h: &Harness) {
    let past = h
        .create(json!({"url": "https://example.com/p", "expires_at": "2001-02-03T04:05:06Z"}))
        .await;
    assert_eq!(past["status"], "expired");
    assert_eq!(past["expires_at"], "2001-02-03T04:05:06Z");
    let p = h.follow(&code(&past)).await.problem(410);
    assert!(p["type"].as_str().unwrap_or("").ends_with("gone"), "{p}");

    let soon = h
        .create(json!({"url": "https://example.com/soon", "ttl_seconds": 1}))
        .await;
    let c = code(&soon);
    let first = h.follow(&c).await;
    assert_eq!(first.status.as_u16(), 301);
    assert_eq!(first.header("cache-control"), Some("no-store"));
    eventually(
        Duration::from_secs(5),
        "link with ttl 1 s expires",
        || async { (h.follow(&c).await.status.as_u16() == 410).then_some(()) },
    )
    .await;

    let both = h
        .call(
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://e.com", "ttl_seconds": 5, "expires_at": "2999-01-01T00:00:00Z"})),
        )
        .await;
    // Both: the earlier of the two (the ttl here).
    let both = both.ok(201);
    let at = both["expires_at"].as_str().expect("expires_at");
    assert!(at < "2999", "{both}");
    let bad = h
        .call(
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://e.com", "expires_at": "tomorrow"})),
        )
        .await;
    bad.problem(400);
    assert_eq!(bad.fields(), ["expires_at"]);
}

pub async fn max_visits_is_exact(h: &Harness) {
    let link = h
        .create(json!({"url": "https://example.com/limited", "max_visits": 3}))
        .await;
    let c = code(&link);
    assert_eq!(link["remaining_visits"], 3);
    // HEAD never uses a visit.
    let head = h.call_with(Method::HEAD, &format!("/{c}"), None, &[]).await;
    assert_eq!(head.status.as_u16(), 301);
    for _ in 0..3 {
        let r = h.follow(&c).await;
        assert_eq!(r.status.as_u16(), 301);
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    h.follow(&c).await.problem(410);
    let head = h.call_with(Method::HEAD, &format!("/{c}"), None, &[]).await;
    assert_eq!(head.status.as_u16(), 410);
    let view = h
        .call(Method::GET, &format!("/api/v1/links/{c}"), None)
        .await
        .ok(200);
    assert_eq!(view["remaining_visits"], 0);
    assert_eq!(view["status"], "exhausted");

    // Concurrent followers: exactly max_visits redirects.
    let c = code(
        &h.create(json!({"url": "https://example.com/race", "max_visits": 5}))
            .await,
    );
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = h.app.clone();
            let path = format!("/{c}");
            tokio::spawn(async move {
                use tower::ServiceExt;
                let req = axum::http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .expect("request");
                app.oneshot(req)
                    .await
                    .expect("infallible")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut redirects = 0;
    for t in tasks {
        match t.await.expect("task") {
            301 => redirects += 1,
            410 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(redirects, 5);

    // Raising the limit lets it redirect again.
    h.call(
        Method::PATCH,
        &format!("/api/v1/links/{c}"),
        Some(json!({"max_visits": 6})),
    )
    .await
    .ok(200);
    assert_eq!(h.follow(&c).await.status.as_u16(), 301);
    h.follow(&c).await.problem(410);
    h.call(
        Method::PATCH,
        &format!("/api/v1/links/{c}"),
        Some(json!({"max_visits": null})),
    )
    .await
    .ok(200);
    assert_eq!(h.follow(&c).await.status.as_u16(), 301);
}

pub async fn query_forwarding(h: &Harness) {
    let fwd = code(
        &h.create(json!({"url": "https://example.com/p?x=1&utm=a", "forward_query": true}))
            .await,
    );
    let r = h.follow(&format!("{fwd}?utm=b&y=%20z")).await;
    assert_eq!(
        r.header("location"),
        Some("https://example.com/p?x=1&utm=b&y=%20z")
    );
    let r = h.follow(&fwd).await;
    assert_eq!(
        r.header("location"),
        Some("https://example.com/p?x=1&utm=a")
    );

    let plain = code(&h.create(json!({"url": "https://example.com/q#frag"})).await);
    let r = h.follow(&format!("{plain}?a=1")).await;
    assert_eq!(
        r.header("location"),
        Some("https://example.com/q#frag"),
        "not forwarded by default"
    );

    let frag = code(
        &h.create(json!({"url": "https://example.com/q#frag", "forward_query": true}))
            .await,
    );
    let r = h.follow(&format!("{frag}?a=1")).await;
    assert_eq!(r.header("location"), Some("https://example.com/q?a=1#frag"));
}

pub async fn unknown_codes(h: &Harness) {
    for path in [
        "/nope123",
        "/a",
        "/has.dot",
        "/%F0%9F%98%80",
        &format!("/{}", "x".repeat(300)),
    ] {
        let r = h.call_with(Method::GET, path, None, &[]).await;
        r.problem(404);
    }
    let head = h.call_with(Method::HEAD, "/nope123", None, &[]).await;
    assert_eq!(head.status.as_u16(), 404);
    // A flood of unknown codes is answered by the Bloom filter, without error.
    let metrics = praxis_http::install_metrics_recorder();
    let before = counter(&metrics.render(), "praxis_shortener_bloom_rejections_total");
    for i in 0..200 {
        assert_eq!(h.follow(&format!("zz{i}")).await.status.as_u16(), 404);
    }
    let after = counter(&metrics.render(), "praxis_shortener_bloom_rejections_total");
    // Other tests add rejections too; a false positive (about 1 %) reaches the database.
    assert!(
        after >= before + 190.0,
        "bloom rejections went from {before} to {after}"
    );
}

pub async fn small_bloom_grows(h: &Harness) {
    let small = h
        .sibling(
            praxis_shortener::ShortenerSettings {
                bloom_capacity: 4,
                ..crate::support::settings()
            },
            false,
        )
        .await;
    let links: Vec<serde_json::Value> = (0..40)
        .map(|i| json!({"url": format!("https://e.com/{i}")}))
        .collect();
    let r = small
        .call(
            Method::POST,
            "/api/v1/links/bulk",
            Some(json!({ "links": links })),
        )
        .await
        .ok(200);
    for item in r["results"].as_array().expect("results") {
        let c = item["link"]["code"].as_str().expect("code");
        assert_eq!(small.follow(c).await.status.as_u16(), 301, "{c}");
    }
    // After the rebuild the filter still rejects unknown codes (and answers 404).
    for i in 0..50 {
        small.follow(&format!("unknown{i}")).await.problem(404);
    }
}

/// The value of an unlabelled counter in Prometheus text (0 when absent).
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

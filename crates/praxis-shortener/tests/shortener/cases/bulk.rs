//! Bulk creation.

use axum::http::Method;
use serde_json::{Value, json};

use crate::support::Harness;

pub async fn bulk_mixed_items(h: &Harness) {
    h.create(json!({"url": "https://example.com/taken", "alias": "taken-alias"}))
        .await;
    let body = json!({"links": [
        {"url": "https://example.com/1"},
        {"url": "ftp://example.com/2"},
        {"url": "https://example.com/3", "alias": "taken-alias"},
        {"url": 5},
        {"url": "https://example.com/5", "alias": "fresh-alias", "max_visits": 2},
        {"url": "https://example.com/6", "alias": "fresh-alias"},
        {"url": "https://example.com/7", "unknown": true},
        "not an object",
        {"url": "https://example.com/taken", "find_if_exists": true}
    ]});
    let r = h
        .call(Method::POST, "/api/v1/links/bulk", Some(body))
        .await
        .ok(200);
    let statuses: Vec<u64> = r["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|i| i["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        statuses,
        [201, 400, 409, 400, 201, 409, 400, 400, 200],
        "{r}"
    );
    assert_eq!(r["succeeded"], 3);
    assert_eq!(r["failed"], 6);
    let results = r["results"].as_array().expect("results");
    for (i, item) in results.iter().enumerate() {
        assert_eq!(item["index"], i);
    }
    assert_eq!(
        results[1]["problem"]["errors"][0]["field"], "links[1].url",
        "{r}"
    );
    assert_eq!(
        results[3]["problem"]["errors"][0]["field"], "links[3].url",
        "{r}"
    );
    assert_eq!(
        results[6]["problem"]["errors"][0]["field"], "links[6].unknown",
        "{r}"
    );
    assert_eq!(results[8]["link"]["code"], "taken-alias");

    let generated = results[0]["link"]["code"].as_str().expect("code");
    assert_eq!(
        h.follow(generated).await.header("location"),
        Some("https://example.com/1")
    );
    assert_eq!(
        h.follow("fresh-alias").await.header("location"),
        Some("https://example.com/5")
    );
}

pub async fn bulk_limits(h: &Harness) {
    h.call(
        Method::POST,
        "/api/v1/links/bulk",
        Some(json!({"links": []})),
    )
    .await
    .problem(400);
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"url": format!("https://e.com/{i}")}))
        .collect();
    let r = h
        .call(
            Method::POST,
            "/api/v1/links/bulk",
            Some(json!({ "links": too_many })),
        )
        .await;
    r.problem(400);
    assert_eq!(r.fields(), ["links"]);
    h.call(
        Method::POST,
        "/api/v1/links/bulk",
        Some(json!({"links": "nope"})),
    )
    .await
    .problem(400);
    h.raw(
        Method::POST,
        "/api/v1/links/bulk",
        "application/json",
        "{\"links\": [",
    )
    .await
    .problem(400);

    let full: Vec<Value> = (0..1000)
        .map(|i| json!({"url": format!("https://e.com/{i}")}))
        .collect();
    let r = h
        .call(
            Method::POST,
            "/api/v1/links/bulk",
            Some(json!({ "links": full })),
        )
        .await
        .ok(200);
    assert_eq!(r["succeeded"], 1000);
    let codes: std::collections::HashSet<&str> = r["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|i| i["link"]["code"].as_str())
        .collect();
    assert_eq!(codes.len(), 1000);
    let some = r["results"][999]["link"]["code"].as_str().expect("code");
    assert_eq!(
        h.follow(some).await.header("location"),
        Some("https://e.com/999")
    );

    // Idempotent bulk.
    let headers = [
        ("authorization", &*format!("Bearer {}", crate::support::KEY)),
        ("idempotency-key", "bulk-1"),
    ];
    let body = json!({"links": [{"url": "https://e.com/i"}]});
    let a = h
        .call_with(
            Method::POST,
            "/api/v1/links/bulk",
            Some(body.clone()),
            &headers,
        )
        .await
        .ok(200);
    let b = h
        .call_with(Method::POST, "/api/v1/links/bulk", Some(body), &headers)
        .await
        .ok(200);
    assert_eq!(a, b);
}

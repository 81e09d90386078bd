//! The HTTP route: counting to the limit, hits, shared limits across processes, the config
//! endpoint and the OpenAPI document.

use axum::http::Method;
use serde_json::json;

use praxis_testkit::{TestBackend, scaled_pair};

use crate::support::{CHECKER, Harness, app_for, request};

/// 3 per day on every value of `ip` (the default fixed window; a day boundary during the test
/// is the only way it could reset).
pub const THREE_PER_DAY: &str = r#"
domain = "edge"

[[descriptors]]
key = "ip"
rate_limit = { unit = "day", requests_per_unit = 3, name = "per-ip" }
"#;

pub async fn http_check_counts_to_the_limit(backend: TestBackend) {
    let h = Harness::new(backend, THREE_PER_DAY).await;
    for remaining in [2, 1, 0] {
        let body = h.check(request("edge", &[&[("ip", "203.0.113.7")]])).await;
        assert_eq!(body["overall_code"], "OK", "{body}");
        let s = &body["statuses"][0];
        assert_eq!(s["code"], "OK");
        assert_eq!(s["limit_remaining"], remaining, "{body}");
        assert_eq!(
            s["current_limit"],
            json!({"name": "per-ip", "requests_per_unit": 3, "unit": "DAY"})
        );
        let reset = s["duration_until_reset"].as_str().expect("reset");
        assert!(reset.ends_with('s'), "{reset}");
    }
    let body = h.check(request("edge", &[&[("ip", "203.0.113.7")]])).await;
    assert_eq!(body["overall_code"], "OVER_LIMIT", "{body}");
    assert_eq!(body["statuses"][0]["code"], "OVER_LIMIT");
    assert_eq!(body["statuses"][0]["limit_remaining"], 0);
    // Another value of the key has its own counter.
    assert_eq!(
        h.check_one("edge", &[("ip", "198.51.100.1")]).await,
        ("OK".to_owned(), 2)
    );
}

pub async fn hits_are_added_per_request_and_descriptor(backend: TestBackend) {
    let limits = r#"
domain = "edge"
[[descriptors]]
key = "ip"
rate_limit = { unit = "hour", requests_per_unit = 10, algorithm = "sliding-log" }
"#;
    let h = Harness::new(backend, limits).await;
    let body = h
        .check(json!({
            "domain": "edge",
            "hits": 4,
            "descriptors": [
                {"entries": [{"key": "ip", "value": "a"}]},
                {"entries": [{"key": "ip", "value": "b"}], "hits": 7},
            ],
        }))
        .await;
    assert_eq!(body["statuses"][0]["limit_remaining"], 6, "{body}");
    assert_eq!(body["statuses"][1]["limit_remaining"], 3, "{body}");
    // hits 0 checks without counting.
    let peek = h
        .check(json!({
            "domain": "edge",
            "hits": 0,
            "descriptors": [{"entries": [{"key": "ip", "value": "a"}]}],
        }))
        .await;
    assert_eq!(peek["statuses"][0]["limit_remaining"], 6, "{peek}");
    // A request larger than what is left is refused whole and counts nothing.
    let big = h
        .check(json!({
            "domain": "edge",
            "descriptors": [{"entries": [{"key": "ip", "value": "b"}], "hits": 4}],
        }))
        .await;
    assert_eq!(big["overall_code"], "OVER_LIMIT", "{big}");
    assert_eq!(
        h.check_one("edge", &[("ip", "b")]).await,
        ("OK".to_owned(), 2)
    );
}

pub async fn config_reports_the_version(backend: TestBackend) {
    let h = Harness::new(backend, THREE_PER_DAY).await;
    let cfg = h.config().await;
    assert_eq!(cfg["generation"], 1, "{cfg}");
    assert_eq!(cfg["version"].as_str().map(str::len), Some(16), "{cfg}");
    assert_eq!(cfg["domains"], json!([{"domain": "edge", "limits": 1}]));
    assert!(
        cfg["source"]
            .as_str()
            .is_some_and(|s| s.ends_with("limits.toml")),
        "{cfg}"
    );
    assert!(cfg["loaded_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(cfg.get("last_error").is_none(), "{cfg}");
}

pub async fn openapi_lists_routes(backend: TestBackend) {
    let h = Harness::new(backend, THREE_PER_DAY).await;
    let doc = h
        .call(Method::GET, "/api/openapi.json", None, None)
        .await
        .ok(200);
    for path in ["/api/v1/ratelimit/check", "/api/v1/ratelimit/config"] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["components"]["schemas"]["CheckRequest"].is_object());
    assert!(doc["components"]["schemas"]["CheckResponse"].is_object());
}

/// Two processes (two platforms on one Redis prefix) share each counter: exactly the limit is
/// allowed in all, whichever process is asked.
pub async fn two_processes_share_one_limit() {
    let (a, b) = scaled_pair().await;
    let limits = r#"
domain = "edge"
[[descriptors]]
key = "ip"
rate_limit = { unit = "hour", requests_per_unit = 10, algorithm = "sliding-log" }
"#;
    let ha = Harness::new(a, limits).await;
    let sb = praxis_ratelimit::DecisionService::start(
        &b.platform,
        praxis_ratelimit::RateLimitServiceSettings {
            limits: Some(ha.limits.clone()),
            ..praxis_ratelimit::RateLimitServiceSettings::default()
        },
    )
    .await
    .expect("second process");
    let app_b = app_for(&b, &sb);
    let mut allowed = 0;
    for i in 0..30 {
        let body = if i % 2 == 0 {
            ha.check(request("edge", &[&[("ip", "shared")]])).await
        } else {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let req = axum::http::Request::post("/api/v1/ratelimit/check")
                .header("authorization", format!("Bearer {CHECKER}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    request("edge", &[&[("ip", "shared")]]).to_string(),
                ))
                .expect("request");
            let res = app_b.clone().oneshot(req).await.expect("infallible");
            assert_eq!(res.status(), 200);
            let bytes = res.into_body().collect().await.expect("body").to_bytes();
            serde_json::from_slice(&bytes).expect("json")
        };
        if body["overall_code"] == "OK" {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10, "one limit across both processes");
    drop(b);
}

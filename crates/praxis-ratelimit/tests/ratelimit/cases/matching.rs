//! Which limit applies: nested descriptors, exact values, prefixes, key-only defaults,
//! `unlimited` and `shadow_mode`.

use praxis_testkit::TestBackend;
use serde_json::json;

use crate::support::{Harness, request};

const TREE: &str = r#"
domain = "edge"

[[descriptors]]
key = "remote_address"
rate_limit = { unit = "hour", requests_per_unit = 2, algorithm = "sliding-log" }

[[descriptors]]
key = "remote_address"
value = "10.0.0.7"
rate_limit = { unit = "hour", requests_per_unit = 5, algorithm = "sliding-log" }

[[descriptors]]
key = "path"
value = "/static/*"
rate_limit = { unit = "hour", requests_per_unit = 4, algorithm = "sliding-log" }

[[descriptors]]
key = "path"
value = "/api/v1/links"

  [[descriptors.descriptors]]
  key = "api_key"
  rate_limit = { unit = "minute", requests_per_unit = 3, algorithm = "gcra" }

  [[descriptors.descriptors]]
  key = "api_key"
  value = "vip"
  rate_limit = { unlimited = true }

[[descriptors]]
key = "canary"
shadow_mode = true
rate_limit = { unit = "hour", requests_per_unit = 1, algorithm = "sliding-log" }
"#;

/// (requests_per_unit of the applied limit or None, remaining) of one descriptor.
async fn applied(h: &Harness, entries: &[(&str, &str)]) -> (Option<u64>, u64) {
    let body = h.check(request("edge", &[entries])).await;
    let s = &body["statuses"][0];
    (
        s["current_limit"]["requests_per_unit"].as_u64(),
        s["limit_remaining"].as_u64().expect("remaining"),
    )
}

pub async fn most_specific_match_wins(backend: TestBackend) {
    let h = Harness::new(backend, TREE).await;
    // Key-only node: every IP its own counter of 2.
    assert_eq!(
        applied(&h, &[("remote_address", "1.1.1.1")]).await,
        (Some(2), 1)
    );
    // The exact value beats the key-only node.
    assert_eq!(
        applied(&h, &[("remote_address", "10.0.0.7")]).await,
        (Some(5), 4)
    );
    // A value ending in * matches by prefix.
    assert_eq!(
        applied(&h, &[("path", "/static/app.js")]).await,
        (Some(4), 3)
    );
    // Nested: path then api_key; each key its own counter.
    let links: &[(&str, &str)] = &[("path", "/api/v1/links"), ("api_key", "k1")];
    assert_eq!(applied(&h, links).await, (Some(3), 2));
    assert_eq!(
        applied(&h, &[("path", "/api/v1/links"), ("api_key", "k2")]).await,
        (Some(3), 2)
    );
    // The path alone, a longer descriptor and unknown keys have no limit.
    assert_eq!(applied(&h, &[("path", "/api/v1/links")]).await, (None, 0));
    assert_eq!(
        applied(&h, &[("remote_address", "1.1.1.1"), ("path", "/x")]).await,
        (None, 0)
    );
    assert_eq!(applied(&h, &[("user", "u1")]).await, (None, 0));
    // Unknown domains are not limited.
    let body = h
        .check(request("elsewhere", &[&[("remote_address", "1.1.1.1")]]))
        .await;
    assert_eq!(body["overall_code"], "OK");
    assert_eq!(
        body["statuses"][0],
        json!({"code": "OK", "limit_remaining": 0})
    );
}

pub async fn unlimited_and_shadow_mode(backend: TestBackend) {
    // Counters made before a recorder is installed record nothing.
    praxis_http::install_metrics_recorder();
    let h = Harness::new(backend, TREE).await;
    let vip: &[(&str, &str)] = &[("path", "/api/v1/links"), ("api_key", "vip")];
    for _ in 0..5 {
        let body = h.check(request("edge", &[vip])).await;
        assert_eq!(body["overall_code"], "OK");
        assert_eq!(
            body["statuses"][0],
            json!({"code": "OK", "limit_remaining": 0})
        );
    }
    // Shadow mode: counted (remaining reaches 0), never OVER_LIMIT.
    for remaining in [0, 0, 0] {
        let body = h.check(request("edge", &[&[("canary", "c")]])).await;
        assert_eq!(body["overall_code"], "OK", "{body}");
        assert_eq!(body["statuses"][0]["code"], "OK");
        assert_eq!(body["statuses"][0]["limit_remaining"], remaining);
        assert_eq!(body["statuses"][0]["current_limit"]["requests_per_unit"], 1);
    }
    let text = praxis_http::install_metrics_recorder().render();
    assert!(
        text.contains("praxis_ratelimit_service_decisions_total{domain=\"edge\",limit=\"canary\",result=\"shadow_over_limit\"}"),
        "{text}"
    );
}

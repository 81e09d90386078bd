//! RED metrics per matched route, rendered by /metrics with the pool gauge.

use crate::support::{TestApp, options};

#[tokio::test]
async fn requests_are_counted_per_route_template() {
    let app = TestApp::new().await;
    for id in [1, 2, 3] {
        assert_eq!(
            app.get(&format!("/api/v1/test/items/{id}")).await.status,
            200
        );
    }
    app.get("/api/v1/test/slow").await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("text/plain"));
    let text = r.text();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("praxis_http_requests_total")
                && l.contains(r#"route="/api/v1/test/items/{id}""#)
                && l.contains(r#"status="200""#)
        })
        .unwrap_or_else(|| panic!("no counter line in {text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{line}");
    assert!(
        text.contains(r#"route="/api/v1/test/slow",status="503""#),
        "timeouts counted with final status"
    );
    assert!(
        text.contains("praxis_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"praxis_db_pool_connections{state="idle"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"praxis_db_pool_connections{state="in_use"}"#),
        "{text}"
    );
    assert!(
        !text.contains("/api/v1/test/items/1\""),
        "raw paths never become labels"
    );
}

#[tokio::test]
async fn metrics_can_be_switched_off() {
    let app = TestApp::with_options(praxis_http::HttpOptions {
        metrics: None,
        ..options()
    })
    .await;
    app.get("/metrics").await.assert_problem(404, "not-found");
}

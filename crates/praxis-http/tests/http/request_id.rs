//! Request ids are taken when sane, generated otherwise, and always echoed.

use axum::body::Body;
use axum::http::Request;

use crate::support::TestApp;

#[tokio::test]
async fn sane_id_is_taken_and_echoed() {
    let app = TestApp::new().await;
    let req = Request::get("/no/route")
        .header("x-request-id", "client-abc-123")
        .body(Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.header("x-request-id"), "client-abc-123");
    assert_eq!(r.json()["request_id"], "client-abc-123");
}

#[tokio::test]
async fn missing_id_is_generated_as_uuid_v7() {
    let app = TestApp::new().await;
    let r = app.get("/healthz").await;
    let id = uuid::Uuid::parse_str(r.header("x-request-id")).expect("uuid");
    assert_eq!(id.get_version_num(), 7);
    let other = app.get("/healthz").await;
    assert_ne!(other.header("x-request-id"), r.header("x-request-id"));
}

#[tokio::test]
async fn insane_ids_are_replaced() {
    let app = TestApp::new().await;
    for bad in ["has space".to_owned(), "x".repeat(129), String::new()] {
        let req = Request::get("/healthz")
            .header("x-request-id", bad.as_str())
            .body(Body::empty())
            .unwrap();
        let r = app.send(req).await;
        assert_ne!(r.header("x-request-id"), bad);
        assert!(uuid::Uuid::parse_str(r.header("x-request-id")).is_ok());
    }
}

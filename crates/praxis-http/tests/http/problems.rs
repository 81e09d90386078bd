//! Every client mistake is a 4xx problem that names what is wrong; panics and timeouts are
//! problems too.

use axum::body::Body;
use axum::http::Request;

use crate::support::{BODY_LIMIT, TestApp};

#[tokio::test]
async fn malformed_json_is_400_with_position() {
    let app = TestApp::new().await;
    let r = app
        .post_json("/api/v1/test/items", "{\"name\": \"a\",\n \"count\": }")
        .await;
    let p = r.assert_problem(400, "malformed-json");
    assert!(
        p["detail"].as_str().unwrap().contains("line 2 column"),
        "{p}"
    );
}

#[tokio::test]
async fn empty_body_is_400() {
    let app = TestApp::new().await;
    app.post_json("/api/v1/test/items", "")
        .await
        .assert_problem(400, "malformed-json");
}

#[tokio::test]
async fn wrong_field_type_names_the_field() {
    let app = TestApp::new().await;
    let r = app
        .post_json("/api/v1/test/items", r#"{"name":"a","count":"three"}"#)
        .await;
    let p = r.assert_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "count");
    let r = app.post_json("/api/v1/test/items", r#"{"count":3}"#).await;
    assert_eq!(
        r.assert_problem(400, "validation")["errors"][0]["field"],
        "name"
    );
    let r = app
        .post_json("/api/v1/test/items", r#"{"name":"a","count":3,"extra":1}"#)
        .await;
    assert_eq!(
        r.assert_problem(400, "validation")["errors"][0]["field"],
        "extra"
    );
}

#[tokio::test]
async fn valid_json_is_accepted() {
    let app = TestApp::new().await;
    let r = app
        .post_json("/api/v1/test/items", r#"{"name":"a","count":3}"#)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.json()["name"], "a");
}

#[tokio::test]
async fn missing_or_wrong_content_type_is_415() {
    let app = TestApp::new().await;
    let missing = Request::post("/api/v1/test/items")
        .body(Body::from("{}"))
        .unwrap();
    app.send(missing)
        .await
        .assert_problem(415, "unsupported-media-type");
    let wrong = Request::post("/api/v1/test/items")
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let p = app
        .send(wrong)
        .await
        .assert_problem(415, "unsupported-media-type");
    assert!(p["detail"].as_str().unwrap().contains("text/plain"));
}

#[tokio::test]
async fn too_large_body_is_413() {
    let app = TestApp::new().await;
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(BODY_LIMIT * 2));
    // Declared length over the limit: refused before the handler.
    let declared = Request::post("/api/v1/test/items")
        .header("content-type", "application/json")
        .header("content-length", big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    app.send(declared)
        .await
        .assert_problem(413, "payload-too-large");
    // Undeclared (streamed) length: the extractor stops at the limit.
    let streamed = Request::post("/api/v1/test/items")
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    app.send(streamed)
        .await
        .assert_problem(413, "payload-too-large");
}

#[tokio::test]
async fn streaming_routes_have_no_body_limit_and_no_timeout() {
    let app = TestApp::new().await;
    let big = vec![7u8; BODY_LIMIT * 3];
    let declared = Request::post("/api/v1/test/stream/fast")
        .header("content-length", big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let r = app.send(declared).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["bytes"], BODY_LIMIT * 3);
    // Past the 1 s timeout of the other routes.
    let r = app
        .send(
            Request::post("/api/v1/test/stream/slow")
                .body(Body::from(big))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["bytes"], BODY_LIMIT * 3);
    // The same stack still limits and times out its other routes.
    app.get("/api/v1/test/slow")
        .await
        .assert_problem(503, "timeout");
}

#[tokio::test]
async fn unknown_route_is_404() {
    let app = TestApp::new().await;
    app.get("/no/such/route")
        .await
        .assert_problem(404, "not-found");
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = TestApp::new().await;
    let r = app
        .send(
            Request::delete("/api/v1/test/items")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_problem(405, "method-not-allowed");
    let allow = r.header("allow");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[tokio::test]
async fn bad_path_and_query_params_are_400() {
    let app = TestApp::new().await;
    let p = app
        .get("/api/v1/test/items/abc")
        .await
        .assert_problem(400, "validation");
    assert!(
        p["detail"].as_str().unwrap().contains("path parameter"),
        "{p}"
    );
    let p = app
        .get("/api/v1/test/items?limit=many")
        .await
        .assert_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "limit");
    assert_eq!(app.get("/api/v1/test/items/7").await.json()["id"], 7);
}

#[tokio::test]
async fn panic_is_500_problem() {
    let app = TestApp::new().await;
    let p = app
        .get("/api/v1/test/panic")
        .await
        .assert_problem(500, "internal");
    assert!(
        !p["detail"].as_str().unwrap().contains("boom"),
        "panic message not leaked"
    );
    // The app keeps serving.
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn timeout_is_503_problem() {
    let app = TestApp::new().await;
    let p = app
        .get("/api/v1/test/slow")
        .await
        .assert_problem(503, "timeout");
    assert!(p["detail"].as_str().unwrap().contains("1000 ms"), "{p}");
}

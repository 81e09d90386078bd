//! /healthz always answers; /readyz reflects the dependencies.

use crate::support::TestApp;

#[tokio::test]
async fn healthz_is_200() {
    let app = TestApp::new().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
}

#[tokio::test]
async fn readyz_is_200_when_dependencies_are_up() {
    let app = TestApp::new().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["dependencies"][0]["name"], "db");
    assert_eq!(v["dependencies"][0]["ok"], true);
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_down() {
    let app = TestApp::new().await;
    app.backend.platform.db.close().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["dependencies"][0]["name"], "db");
    assert_eq!(v["dependencies"][0]["ok"], false);
    assert!(!v["dependencies"][0]["detail"].as_str().unwrap().is_empty());
    // Liveness is independent of dependencies.
    assert_eq!(app.get("/healthz").await.status, 200);
}

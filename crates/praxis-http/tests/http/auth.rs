//! Admin key, wrong key, no key.

use axum::body::Body;
use axum::http::Request;

use crate::support::{ADMIN_KEY, TestApp, options};

fn with_auth(method: &str, uri: &str, auth: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn callers_are_identified() {
    let app = TestApp::new().await;
    let key = format!("Bearer {ADMIN_KEY}");
    assert_eq!(
        app.send(with_auth("GET", "/api/v1/test/whoami", Some(&key)))
            .await
            .text(),
        "admin"
    );
    assert_eq!(
        app.send(with_auth("GET", "/api/v1/test/whoami", None))
            .await
            .text(),
        "anonymous"
    );
    let wrong = app
        .send(with_auth(
            "GET",
            "/api/v1/test/whoami",
            Some("Bearer not-it"),
        ))
        .await;
    wrong.assert_problem(401, "unauthorized");
    assert_eq!(wrong.header("www-authenticate"), "Bearer");
    let not_bearer = app
        .send(with_auth("GET", "/api/v1/test/whoami", Some("Basic abc")))
        .await;
    not_bearer.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn writes_need_the_key_unless_opened() {
    let app = TestApp::new().await;
    let key = format!("Bearer {ADMIN_KEY}");
    app.send(with_auth("POST", "/api/v1/test/admin", None))
        .await
        .assert_problem(401, "unauthorized");
    let ok = app
        .send(with_auth("POST", "/api/v1/test/admin", Some(&key)))
        .await;
    assert_eq!((ok.status.as_u16(), ok.text().as_str()), (200, "admin"));

    let mut opts = options();
    opts.auth.allow_anonymous_writes = true;
    let open = TestApp::with_options(opts).await;
    let r = open
        .send(with_auth("POST", "/api/v1/test/admin", None))
        .await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "anonymous"));
    // A wrong key stays wrong even when anonymous writes are open.
    open.send(with_auth("POST", "/api/v1/test/admin", Some("Bearer nope")))
        .await
        .assert_problem(401, "unauthorized");
}

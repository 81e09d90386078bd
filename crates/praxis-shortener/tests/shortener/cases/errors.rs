//! Authentication and bad input on every route: always a 4xx problem, never a 500.

use axum::http::Method;
use serde_json::json;

use crate::support::{Harness, code};

pub async fn auth_on_every_route(h: &Harness) {
    let c = code(&h.create(json!({"url": "https://example.com/auth"})).await);
    let routes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (
            Method::POST,
            "/api/v1/links".into(),
            Some(json!({"url": "https://e.com"})),
        ),
        (
            Method::POST,
            "/api/v1/links/bulk".into(),
            Some(json!({"links": [{"url": "https://e.com"}]})),
        ),
        (Method::GET, "/api/v1/links".into(), None),
        (Method::GET, format!("/api/v1/links/{c}"), None),
        (
            Method::PATCH,
            format!("/api/v1/links/{c}"),
            Some(json!({"redirect": 302})),
        ),
        (Method::DELETE, format!("/api/v1/links/{c}"), None),
        (Method::GET, format!("/api/v1/links/{c}/stats"), None),
        (Method::GET, format!("/api/v1/links/{c}/qr"), None),
    ];
    for (method, path, body) in routes {
        let none = h.call_with(method.clone(), &path, body.clone(), &[]).await;
        none.problem(401);
        let wrong = h
            .call_with(
                method.clone(),
                &path,
                body.clone(),
                &[("authorization", "Bearer wrong")],
            )
            .await;
        wrong.problem(401);
        let basic = h
            .call_with(
                method.clone(),
                &path,
                body,
                &[("authorization", "Basic YTpi")],
            )
            .await;
        basic.problem(401);
    }
    // The redirect is public, and the link survived every rejected write.
    assert_eq!(h.follow(&c).await.status.as_u16(), 301);
}

pub async fn bad_input_is_a_problem(h: &Harness) {
    let c = code(&h.create(json!({"url": "https://example.com/bad"})).await);
    let link = format!("/api/v1/links/{c}");
    let json_cases: [(Method, &str, &str); 12] = [
        (Method::POST, "/api/v1/links", "{"),
        (Method::POST, "/api/v1/links", ""),
        (Method::POST, "/api/v1/links", "[]"),
        (Method::POST, "/api/v1/links", "{\"url\": 1}"),
        (
            Method::POST,
            "/api/v1/links",
            "{\"url\": \"https://e.com\", \"max_visits\": \"ten\"}",
        ),
        (
            Method::POST,
            "/api/v1/links",
            "{\"url\": \"https://e.com\", \"ttl\": 5}",
        ),
        (
            Method::POST,
            "/api/v1/links",
            "{\"url\": \"https://e.com\", \"redirect\": 70000}",
        ),
        (
            Method::POST,
            "/api/v1/links",
            "{\"url\": \"https://e.com\", \"max_visits\": 0}",
        ),
        (
            Method::POST,
            "/api/v1/links",
            "{\"url\": \"https://e.com\", \"tags\": [\"\"]}",
        ),
        (
            Method::POST,
            "/api/v1/links",
            "{\"url\": \"https://e.com\", \"ttl_seconds\": -1}",
        ),
        (Method::POST, "/api/v1/links/bulk", "{\"links\": {}}"),
        (Method::POST, "/api/v1/links/bulk", "{\"items\": []}"),
    ];
    for (method, path, body) in json_cases {
        let r = h.raw(method, path, "application/json", body).await;
        assert!(r.status.is_client_error(), "{path} {body}: {}", r.status);
        r.problem(r.status.as_u16());
    }
    for body in [
        "{",
        "{\"url\": 5}",
        "{\"nope\": 1}",
        "{\"max_visits\": -3}",
        "{\"tags\": \"x\"}",
    ] {
        let r = h.raw(Method::PATCH, &link, "application/json", body).await;
        r.problem(400);
    }
    // Wrong content type.
    h.raw(
        Method::POST,
        "/api/v1/links",
        "text/plain",
        "{\"url\": \"https://e.com\"}",
    )
    .await
    .problem(415);
    // Unknown codes on every management route.
    for (method, path) in [
        (Method::GET, "/api/v1/links/missing1"),
        (Method::DELETE, "/api/v1/links/missing1"),
        (Method::GET, "/api/v1/links/missing1/stats"),
        (Method::GET, "/api/v1/links/missing1/qr"),
    ] {
        h.call(method, path, None).await.problem(404);
    }
    h.call(Method::PATCH, "/api/v1/links/missing1", Some(json!({})))
        .await
        .problem(404);
    // Unknown routes and methods.
    h.call(Method::GET, "/api/v1/links/a/b/c", None)
        .await
        .problem(404);
    let r = h.call(Method::PUT, &link, Some(json!({}))).await;
    r.problem(405);
    // The link is untouched.
    assert_eq!(h.follow(&c).await.status.as_u16(), 301);
}

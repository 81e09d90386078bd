//! Bad input is a 4xx problem+json that names what is wrong, never a 500; the OpenAPI
//! document lists every route.

use axum::http::Method;
use serde_json::json;

use crate::support::{Harness, KEY, PASSWORD};

/// A request with a raw JSON body, the status it must get, and the field the problem names.
type Case<'a> = (
    Method,
    &'a str,
    Option<&'a str>,
    &'a str,
    u16,
    Option<&'a str>,
);

pub async fn bad_input_is_a_problem(h: &Harness) {
    let user = h.account("input@example.com").await;
    let bearer = Some(user.access.as_str());
    // (method, path, bearer, body, status, field named)
    let cases: Vec<Case<'_>> = vec![
        (
            Method::POST,
            "/api/v1/identity/signup",
            None,
            "{",
            400,
            None,
        ),
        (Method::POST, "/api/v1/identity/signup", None, "", 400, None),
        (
            Method::POST,
            "/api/v1/identity/signup",
            None,
            "[]",
            400,
            Some("body"),
        ),
        (
            Method::POST,
            "/api/v1/identity/signup",
            None,
            r#"{"email":"a@b.co"}"#,
            400,
            Some("password"),
        ),
        (
            Method::POST,
            "/api/v1/identity/signup",
            None,
            r#"{"email":1,"password":"x"}"#,
            400,
            Some("email"),
        ),
        (
            Method::POST,
            "/api/v1/identity/signup",
            None,
            r#"{"email":"a@b.co","password":"correct horse battery","admin":true}"#,
            400,
            Some("admin"),
        ),
        (
            Method::POST,
            "/api/v1/identity/signup",
            None,
            r#"{"email":"nope","password":"correct horse battery"}"#,
            400,
            Some("email"),
        ),
        (
            Method::POST,
            "/api/v1/identity/signup",
            None,
            r#"{"email":"a@b.co","password":"short"}"#,
            400,
            Some("password"),
        ),
        (
            Method::POST,
            "/api/v1/identity/login",
            None,
            r#"{"email":"","password":"x"}"#,
            400,
            Some("email"),
        ),
        (
            Method::POST,
            "/api/v1/identity/login",
            None,
            r#"{"email":"a@b.co","password":""}"#,
            400,
            Some("password"),
        ),
        (
            Method::POST,
            "/api/v1/identity/refresh",
            None,
            r#"{}"#,
            400,
            Some("refresh_token"),
        ),
        (
            Method::POST,
            "/api/v1/identity/keys",
            bearer,
            r#"{"name":"x"}"#,
            400,
            Some("scopes"),
        ),
        (
            Method::POST,
            "/api/v1/identity/keys",
            bearer,
            r#"{"name":"x","scopes":"links:read"}"#,
            400,
            Some("scopes"),
        ),
        (
            Method::POST,
            "/api/v1/identity/keys",
            bearer,
            r#"{"name":"x","scopes":[1]}"#,
            400,
            Some("scopes[0]"),
        ),
        (
            Method::PUT,
            "/api/v1/identity/me/password",
            bearer,
            r#"{"current_password":"x"}"#,
            400,
            Some("new_password"),
        ),
        (
            Method::PATCH,
            "/api/v1/identity/accounts/x",
            Some(KEY),
            r#"{"role":"root"}"#,
            400,
            Some("role"),
        ),
        // An empty patch changes nothing: the account is the answer (404: there is no `x`).
        (
            Method::PATCH,
            "/api/v1/identity/accounts/x",
            Some(KEY),
            r#"{}"#,
            404,
            None,
        ),
        (
            Method::PATCH,
            "/api/v1/identity/accounts/x",
            Some(KEY),
            r#"{"plan":"Gold!"}"#,
            400,
            Some("plan"),
        ),
    ];
    for (method, path, bearer, body, status, field) in cases {
        let r = h.raw(method.clone(), path, bearer, body).await;
        r.problem(status);
        if let Some(field) = field {
            assert_eq!(r.fields(), [field], "{method} {path} {body}");
        }
    }
    for (path, field) in [
        ("/api/v1/identity/keys?limit=0", "limit"),
        ("/api/v1/identity/keys?limit=x", "limit"),
        // Above the documented maximum: a 400, never silently capped.
        ("/api/v1/identity/keys?limit=201", "limit"),
        ("/api/v1/identity/accounts?limit=201", "limit"),
        ("/api/v1/identity/keys?cursor=garbage", "cursor"),
        ("/api/v1/identity/keys?sort=asc", "sort"),
        ("/api/v1/identity/accounts?cursor=garbage", "cursor"),
    ] {
        let token = if path.contains("accounts") {
            KEY
        } else {
            user.access.as_str()
        };
        let r = h.call(Method::GET, path, Some(token), None).await;
        r.problem(400);
        assert_eq!(r.fields(), [field], "{path}");
    }
    // A wrong content type, an oversized password, a long key id: 4xx, never 500.
    let r = h
        .send(
            axum::http::Request::builder()
                .method(Method::POST)
                .uri("/api/v1/identity/login")
                .header("content-type", "text/plain")
                .body(axum::body::Body::from("{}"))
                .expect("request"),
        )
        .await;
    r.problem(415);
    let huge = "x".repeat(10_000);
    h.call(
        Method::POST,
        "/api/v1/identity/login",
        None,
        Some(json!({"email": "input@example.com", "password": huge})),
    )
    .await
    .problem(400);
    h.call(
        Method::POST,
        "/api/v1/identity/signup",
        None,
        Some(json!({"email": "input2@example.com", "password": huge})),
    )
    .await
    .problem(400);
    let long = format!("/api/v1/identity/keys/{}", "a".repeat(300));
    h.call(Method::DELETE, &long, bearer, None)
        .await
        .problem(404);
    // The authorization header must be a bearer token.
    let r = h
        .send(
            axum::http::Request::builder()
                .uri("/api/v1/identity/me")
                .header("authorization", "Basic YTpi")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    r.unauthorized();
    // Sanity: the account still logs in.
    h.call(
        Method::POST,
        "/api/v1/identity/login",
        None,
        Some(json!({"email": "input@example.com", "password": PASSWORD})),
    )
    .await
    .ok(200);
}

pub async fn openapi_lists_routes(h: &Harness) {
    let doc = h
        .call(Method::GET, "/api/openapi.json", None, None)
        .await
        .ok(200);
    for path in [
        "/api/v1/identity/signup",
        "/api/v1/identity/login",
        "/api/v1/identity/refresh",
        "/api/v1/identity/logout",
        "/api/v1/identity/me",
        "/api/v1/identity/me/password",
        "/api/v1/identity/keys",
        "/api/v1/identity/keys/{id}",
        "/api/v1/identity/accounts",
        "/api/v1/identity/accounts/{id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}

//! Sign-up, login, password change, enumeration resistance.

use axum::http::Method;
use serde_json::{Value, json};

use crate::support::{Harness, PASSWORD, Resp};

async fn login_with(h: &Harness, email: &str, password: &str) -> Resp {
    h.call(
        Method::POST,
        "/api/v1/identity/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

pub async fn sign_up_and_log_in(h: &Harness) {
    let r = h
        .call(
            Method::POST,
            "/api/v1/identity/signup",
            None,
            Some(json!({"email": "  Ada@Example.COM ", "password": PASSWORD})),
        )
        .await;
    let account = r.ok(201);
    assert_eq!(account["email"], "ada@example.com");
    assert_eq!(account["role"], "user");
    assert_eq!(account["plan"], "free");
    assert!(account.get("password_hash").is_none());
    // Same email in another case: taken.
    let dup = h
        .call(
            Method::POST,
            "/api/v1/identity/signup",
            None,
            Some(json!({"email": "ADA@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        dup.problem(409)["type"],
        "https://praxis.dev/problems/email-taken"
    );
    // The email is case-insensitive at login too.
    let body = login_with(h, "ada@EXAMPLE.com", PASSWORD).await.ok(200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(
        body["refresh_token"]
            .as_str()
            .expect("refresh")
            .starts_with("prt_")
    );
    assert_eq!(body["account"]["id"], account["id"]);
}

pub async fn sign_up_replays_with_an_idempotency_key(h: &Harness) {
    let send = || async {
        let req = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/identity/signup")
            .header("content-type", "application/json")
            .header("idempotency-key", "signup-1")
            .body(axum::body::Body::from(
                json!({"email": "idem@example.com", "password": PASSWORD}).to_string(),
            ))
            .expect("request");
        h.send(req).await
    };
    let first = send().await.ok(201);
    let again = send().await;
    assert_eq!(again.ok(201), first, "replayed, not 409");
}

/// A problem body without its request id (which differs per request).
fn comparable(r: &Resp) -> (u16, Value) {
    let mut body = r.json();
    body.as_object_mut().expect("object").remove("request_id");
    (r.status.as_u16(), body)
}

pub async fn unknown_account_and_wrong_password_answer_alike(h: &Harness) {
    h.sign_up("known@example.com").await;
    let wrong = login_with(h, "known@example.com", "not the right password").await;
    let unknown = login_with(h, "nobody@example.com", "not the right password").await;
    let malformed = login_with(h, "not-an-email", "not the right password").await;
    wrong.problem(401);
    assert_eq!(comparable(&wrong), comparable(&unknown));
    assert_eq!(comparable(&wrong), comparable(&malformed));
    assert_eq!(
        wrong.json()["type"],
        "https://praxis.dev/problems/invalid-credentials"
    );
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
}

pub async fn password_change_revokes_refresh_tokens(h: &Harness) {
    let login = h.account("pw@example.com").await;
    let second = h.login("pw@example.com").await;
    let change = |current: &str, new: &str, bearer: Option<String>| {
        let body = json!({"current_password": current, "new_password": new});
        async move {
            h.call(
                Method::PUT,
                "/api/v1/identity/me/password",
                bearer.as_deref(),
                Some(body),
            )
            .await
        }
    };
    let new_password = "a much longer new passphrase";
    let r = change(
        "wrong current password",
        new_password,
        Some(login.access.clone()),
    )
    .await;
    r.problem(400);
    assert_eq!(r.fields(), ["current_password"]);
    let r = change(PASSWORD, "short", Some(login.access.clone())).await;
    r.problem(400);
    assert_eq!(r.fields(), ["new_password"]);
    change(PASSWORD, new_password, None).await.problem(401);
    // An API key cannot change the password.
    let key = h
        .call(
            Method::POST,
            "/api/v1/identity/keys",
            Some(&login.access),
            Some(json!({"name": "k", "scopes": ["keys:read"]})),
        )
        .await
        .ok(201)["key"]
        .as_str()
        .expect("key")
        .to_owned();
    change(PASSWORD, new_password, Some(key)).await.problem(403);

    change(PASSWORD, new_password, Some(login.access.clone()))
        .await
        .ok(204);
    // Every refresh token of the account is revoked.
    for token in [&login.refresh, &second.refresh] {
        h.call(
            Method::POST,
            "/api/v1/identity/refresh",
            None,
            Some(json!({"refresh_token": token})),
        )
        .await
        .problem(401);
    }
    login_with(h, "pw@example.com", PASSWORD).await.problem(401);
    login_with(h, "pw@example.com", new_password).await.ok(200);
}

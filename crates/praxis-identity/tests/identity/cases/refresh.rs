//! Refresh-token rotation, reuse detection (family revocation), logout, expiry.

use axum::http::Method;
use serde_json::{Value, json};

use crate::support::{Harness, Resp};

async fn refresh(h: &Harness, token: &str) -> Resp {
    h.call(
        Method::POST,
        "/api/v1/identity/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

fn tokens(body: &Value) -> (String, String) {
    (
        body["access_token"].as_str().expect("access").to_owned(),
        body["refresh_token"].as_str().expect("refresh").to_owned(),
    )
}

pub async fn refresh_rotates_and_reuse_revokes_the_family(h: &Harness) {
    let first = h.account("rot@example.com").await;
    let other_login = h.login("rot@example.com").await;

    // Each refresh returns a new pair; the new access token works.
    let r = refresh(h, &first.refresh).await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let (access2, refresh2) = tokens(&r.ok(200));
    assert_ne!(refresh2, first.refresh);
    h.me(&access2).await.ok(200);
    let (_, refresh3) = tokens(&refresh(h, &refresh2).await.ok(200));

    // The rotated token shows up again (a thief replays it): 401, and the whole family dies,
    // including the newest token the legitimate client holds.
    let detail = refresh(h, &first.refresh).await.problem(401)["detail"]
        .as_str()
        .expect("detail")
        .to_owned();
    assert!(detail.contains("already used"), "{detail}");
    let r = refresh(h, &refresh3).await;
    let body = r.problem(401);
    assert!(
        body["detail"].as_str().expect("detail").contains("revoked"),
        "{body}"
    );
    assert_eq!(
        body["type"], "https://praxis.dev/problems/invalid-refresh-token",
        "{body}"
    );

    // Another login (another family) is untouched.
    let (_, other2) = tokens(&refresh(h, &other_login.refresh).await.ok(200));
    refresh(h, &other2).await.ok(200);

    // Unknown and malformed tokens.
    refresh(h, "prt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .problem(401);
    refresh(h, "garbage").await.problem(401);
}

pub async fn concurrent_refreshes_of_one_token_revoke_the_family(h: &Harness) {
    let login = h.account("race@example.com").await;
    let (a, b) = tokio::join!(refresh(h, &login.refresh), refresh(h, &login.refresh));
    let ok = [&a, &b].iter().filter(|r| r.status.as_u16() == 200).count();
    assert!(ok <= 1, "at most one concurrent use wins: {a:?} {b:?}");
    // Whichever won, its new token is dead too: one of the two uses was a reuse.
    for r in [a, b] {
        if r.status.as_u16() == 200 {
            let (_, next) = tokens(&r.json());
            refresh(h, &next).await.problem(401);
        } else {
            r.problem(401);
        }
    }
}

pub async fn logout_revokes_the_family(h: &Harness) {
    let login = h.account("out@example.com").await;
    let (_, refresh2) = tokens(&refresh(h, &login.refresh).await.ok(200));
    h.call(
        Method::POST,
        "/api/v1/identity/logout",
        None,
        Some(json!({"refresh_token": refresh2})),
    )
    .await
    .ok(204);
    refresh(h, &refresh2).await.problem(401);
    // Logging out an unknown token says nothing either way.
    h.call(
        Method::POST,
        "/api/v1/identity/logout",
        None,
        Some(json!({"refresh_token": "prt_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"})),
    )
    .await
    .ok(204);
    let r = h
        .call(
            Method::POST,
            "/api/v1/identity/logout",
            None,
            Some(json!({"refresh_token": "nope"})),
        )
        .await;
    r.problem(400);
    assert_eq!(r.fields(), ["refresh_token"]);
}

pub async fn expired_refresh_token_is_rejected(h: &Harness) {
    let login = h.account("old@example.com").await;
    h.sql(
        "UPDATE identity_refresh_tokens SET expires_at = 1 WHERE account_id = $1",
        &[&login.id],
    )
    .await;
    let body = refresh(h, &login.refresh).await.problem(401);
    assert!(
        body["detail"].as_str().expect("detail").contains("expired"),
        "{body}"
    );
}

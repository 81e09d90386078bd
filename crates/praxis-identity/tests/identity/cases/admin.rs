//! The admin role: the bootstrap admin key makes the first admin account; admins list
//! accounts and set roles and plans; others get 403.

use axum::http::Method;
use serde_json::json;

use crate::support::{Harness, KEY};

pub async fn admin_role_and_plans(h: &Harness) {
    let ada = h.account("ada@example.com").await;
    let bob = h.account("bob@example.com").await;
    h.call(
        Method::GET,
        "/api/v1/identity/accounts",
        Some(&ada.access),
        None,
    )
    .await
    .problem(403);
    h.call(Method::GET, "/api/v1/identity/accounts", None, None)
        .await
        .unauthorized();
    h.call(
        Method::PATCH,
        &format!("/api/v1/identity/accounts/{}", bob.id),
        Some(&ada.access),
        Some(json!({"role": "admin"})),
    )
    .await
    .problem(403);

    // The bootstrap admin key promotes the first admin.
    let promoted = h
        .call(
            Method::PATCH,
            &format!("/api/v1/identity/accounts/{}", ada.id),
            Some(KEY),
            Some(json!({"role": "admin"})),
        )
        .await
        .ok(200);
    assert_eq!(promoted["role"], "admin");
    let ada = h.login("ada@example.com").await;
    let me = h.me(&ada.access).await.ok(200);
    assert_eq!(me["admin"], true);

    // The new admin lists accounts (paged) and sets bob's plan.
    let page = h
        .call(
            Method::GET,
            "/api/v1/identity/accounts?limit=1",
            Some(&ada.access),
            None,
        )
        .await
        .ok(200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let cursor = page["next_cursor"].as_str().expect("more").to_owned();
    let page2 = h
        .call(
            Method::GET,
            &format!("/api/v1/identity/accounts?limit=1&cursor={cursor}"),
            Some(&ada.access),
            None,
        )
        .await
        .ok(200);
    assert_ne!(page2["items"][0]["id"], page["items"][0]["id"]);

    let key = h
        .call(
            Method::POST,
            "/api/v1/identity/keys",
            Some(&bob.access),
            Some(json!({"name": "bob", "scopes": ["keys:read"]})),
        )
        .await
        .ok(201)["key"]
        .as_str()
        .expect("key")
        .to_owned();
    assert_eq!(h.me(&key).await.ok(200)["plan"], "free");
    let changed = h
        .call(
            Method::PATCH,
            &format!("/api/v1/identity/accounts/{}", bob.id),
            Some(&ada.access),
            Some(json!({"plan": "pro"})),
        )
        .await
        .ok(200);
    assert_eq!(
        (changed["plan"].as_str(), changed["role"].as_str()),
        (Some("pro"), Some("user"))
    );
    // The key's cached principal was dropped: the new plan applies at once.
    assert_eq!(h.me(&key).await.ok(200)["plan"], "pro");
    // API keys never carry the admin role, even an admin's.
    let admin_key = h
        .call(
            Method::POST,
            "/api/v1/identity/keys",
            Some(&ada.access),
            Some(json!({"name": "ada", "scopes": ["keys:read"]})),
        )
        .await
        .ok(201)["key"]
        .as_str()
        .expect("key")
        .to_owned();
    h.call(
        Method::GET,
        "/api/v1/identity/accounts",
        Some(&admin_key),
        None,
    )
    .await
    .problem(403);

    h.call(
        Method::PATCH,
        "/api/v1/identity/accounts/no-such-account",
        Some(KEY),
        Some(json!({"plan": "pro"})),
    )
    .await
    .problem(404);
}

//! API keys: create (shown once), use, scopes, last-used time, list, revoke.

use std::time::Duration;

use axum::http::Method;
use serde_json::json;

use crate::support::{Harness, KEY};

pub async fn api_key_lifecycle(h: &Harness) {
    let owner = h.account("keys@example.com").await;
    let created = h
        .call(
            Method::POST,
            "/api/v1/identity/keys",
            Some(&owner.access),
            Some(json!({"name": "ci deploy", "scopes": ["keys:read", "links:read", "keys:read"]})),
        )
        .await;
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let created = created.ok(201);
    let key = created["key"].as_str().expect("key").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(key.starts_with(&format!("prx_{id}_")), "{key}");
    assert_eq!(
        created["scopes"],
        json!(["keys:read", "links:read"]),
        "deduplicated"
    );
    assert!(created["last_used_at"].is_null());

    // The key authenticates as the owner, with its scopes only.
    let me = h.me(&key).await.ok(200);
    assert_eq!(me["subject"], owner.id.as_str());
    assert_eq!(me["credential"], "api_key");
    assert_eq!(me["key_id"], id.as_str());
    assert_eq!(me["scopes"], json!(["keys:read", "links:read"]));
    let r = h
        .call(
            Method::POST,
            "/api/v1/identity/keys",
            Some(&key),
            Some(json!({"name": "escalate", "scopes": ["keys:write"]})),
        )
        .await;
    assert!(
        r.problem(403)["detail"]
            .as_str()
            .expect("detail")
            .contains("keys:write")
    );

    // Listed without the secret, with the last use recorded.
    let page = h
        .call(Method::GET, "/api/v1/identity/keys", Some(&key), None)
        .await
        .ok(200);
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert!(items[0].get("key").is_none(), "{page}");
    assert!(
        !page.to_string().contains(&key[4 + 32 + 1..]),
        "secret leaked: {page}"
    );
    assert!(items[0]["last_used_at"].is_string(), "{page}");
    assert!(items[0]["hint"].as_str().expect("hint").starts_with("prx_"));

    // A key of another account is invisible and cannot be revoked by this one.
    let other = h.account("other@example.com").await;
    let other_page = h
        .call(
            Method::GET,
            "/api/v1/identity/keys",
            Some(&other.access),
            None,
        )
        .await
        .ok(200);
    assert_eq!(other_page["items"], json!([]));
    h.call(
        Method::DELETE,
        &format!("/api/v1/identity/keys/{id}"),
        Some(&other.access),
        None,
    )
    .await
    .problem(404);
    h.me(&key).await.ok(200);

    // Revoked: refused at once (the cache entry is invalidated), listed as revoked.
    h.call(
        Method::DELETE,
        &format!("/api/v1/identity/keys/{id}"),
        Some(&owner.access),
        None,
    )
    .await
    .ok(204);
    let detail = h.me(&key).await.unauthorized();
    assert!(detail.contains("revoked"), "{detail}");
    h.call(
        Method::DELETE,
        &format!("/api/v1/identity/keys/{id}"),
        Some(&owner.access),
        None,
    )
    .await
    .ok(204);
    let page = h
        .call(
            Method::GET,
            "/api/v1/identity/keys",
            Some(&owner.access),
            None,
        )
        .await
        .ok(200);
    assert!(page["items"][0]["revoked_at"].is_string(), "{page}");

    // Wrong secret for a real id, unknown id, malformed keys.
    let wrong = format!("{}{}", &key[..key.len() - 3], "AAA");
    h.me(&wrong).await.unauthorized();
    h.me("prx_0123456789abcdef0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .unauthorized();
    h.me("prx_short").await.unauthorized();
}

pub async fn key_scopes_are_checked_at_creation(h: &Harness) {
    let owner = h.account("grant@example.com").await;
    let r = h
        .call(
            Method::POST,
            "/api/v1/identity/keys",
            Some(&owner.access),
            Some(json!({"name": "x", "scopes": ["admin:all", "Links:Read", "links:read"]})),
        )
        .await;
    r.problem(400);
    assert_eq!(r.fields(), ["scopes[0]", "scopes[1]"]);
    let r = h
        .call(
            Method::POST,
            "/api/v1/identity/keys",
            Some(&owner.access),
            Some(json!({"name": " ", "scopes": []})),
        )
        .await;
    r.problem(400);
    assert_eq!(r.fields(), ["name", "scopes"]);
    // The bootstrap admin key has no account to own keys.
    h.call(
        Method::POST,
        "/api/v1/identity/keys",
        Some(KEY),
        Some(json!({"name": "x", "scopes": ["links:read"]})),
    )
    .await
    .problem(403);
}

pub async fn last_use_is_written_at_most_once_per_interval(h: &Harness) {
    let owner = h.account("touch@example.com").await;
    let key = h
        .call(
            Method::POST,
            "/api/v1/identity/keys",
            Some(&owner.access),
            Some(json!({"name": "busy", "scopes": ["keys:read"]})),
        )
        .await
        .ok(201)["key"]
        .as_str()
        .expect("key")
        .to_owned();
    for _ in 0..5 {
        h.me(&key).await.ok(200);
    }
    let read = || async {
        h.call(
            Method::GET,
            "/api/v1/identity/keys",
            Some(&owner.access),
            None,
        )
        .await
        .ok(200)["items"][0]["last_used_at"]
            .clone()
    };
    let first = read().await;
    assert!(first.is_string());
    tokio::time::sleep(Duration::from_millis(20)).await;
    for _ in 0..5 {
        h.me(&key).await.ok(200);
    }
    assert_eq!(read().await, first, "no second write within the interval");
}

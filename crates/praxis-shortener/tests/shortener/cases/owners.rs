//! Real owners: a caller sees, lists, changes and deletes only its own links; the admin sees
//! all; API keys need `links:read` / `links:write`; the redirect stays public.

use axum::http::Method;
use serde_json::json;

use crate::support::{Harness, KEY, code};

pub async fn callers_only_reach_their_own_links(h: &Harness) {
    let alice = Some("alice-token");
    let bob = Some("bob-token");
    let link = h
        .call_as(
            alice,
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://example.com/alice", "tags": ["mine"]})),
        )
        .await
        .ok(201);
    assert_eq!(link["owner"], "alice-id");
    let c = code(&link);
    let path = format!("/api/v1/links/{c}");

    // Bob cannot read, change, delete, report on or draw the link: 404, as if it did not exist.
    for (method, p, body) in [
        (Method::GET, path.clone(), None),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"url": "https://evil.example/"})),
        ),
        (Method::DELETE, path.clone(), None),
        (Method::GET, format!("{path}/stats"), None),
        (Method::GET, format!("{path}/qr"), None),
    ] {
        h.call_as(bob, method, &p, body).await.problem(404);
    }
    // Bob's list is empty, also when filtered by Alice's tag; he may not ask for her links.
    for q in ["", "?tag=mine", "?owner=bob-id"] {
        let page = h
            .call_as(bob, Method::GET, &format!("/api/v1/links{q}"), None)
            .await
            .ok(200);
        assert_eq!(page["items"], json!([]), "{q}");
    }
    h.call_as(bob, Method::GET, "/api/v1/links?owner=alice-id", None)
        .await
        .problem(403);
    // Bob's find_if_exists does not find Alice's link: he gets his own.
    let his = h
        .call_as(
            bob,
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://example.com/alice", "find_if_exists": true})),
        )
        .await
        .ok(201);
    assert_ne!(code(&his), c);
    // The link is unchanged and still redirects (publicly).
    let r = h.follow(&c).await;
    assert_eq!(r.header("location"), Some("https://example.com/alice"));

    // Alice sees and changes her link.
    h.call_as(alice, Method::GET, &path, None).await.ok(200);
    let page = h
        .call_as(alice, Method::GET, "/api/v1/links", None)
        .await
        .ok(200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    h.call_as(
        alice,
        Method::PATCH,
        &path,
        Some(json!({"url": "https://example.com/alice2"})),
    )
    .await
    .ok(200);

    // The admin (bootstrap key or an admin account) sees and changes every link, and lists
    // any owner's links.
    for admin in [Some(KEY), Some("carol-admin-token")] {
        h.call_as(admin, Method::GET, &path, None).await.ok(200);
        let page = h
            .call_as(admin, Method::GET, "/api/v1/links?owner=alice-id", None)
            .await
            .ok(200);
        assert_eq!(page["items"][0]["code"], c.as_str());
        h.call_as(admin, Method::GET, &format!("{path}/stats"), None)
            .await
            .ok(200);
    }
    h.call_as(
        Some("carol-admin-token"),
        Method::PATCH,
        &path,
        Some(json!({"redirect": 302})),
    )
    .await
    .ok(200);
    h.call_as(Some(KEY), Method::DELETE, &path, None)
        .await
        .ok(204);
    h.follow(&c).await.problem(404);
}

pub async fn api_key_scopes_gate_reads_and_writes(h: &Harness) {
    let c = code(
        &h.call_as(
            Some("alice-token"),
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://example.com/scoped"})),
        )
        .await
        .ok(201),
    );
    let path = format!("/api/v1/links/{c}");
    let read = Some("alice-read-key");
    let write = Some("alice-write-key");
    // The read-only key reads but cannot write.
    h.call_as(read, Method::GET, &path, None).await.ok(200);
    h.call_as(read, Method::GET, "/api/v1/links", None)
        .await
        .ok(200);
    for (method, p, body) in [
        (
            Method::POST,
            "/api/v1/links".to_owned(),
            Some(json!({"url": "https://example.com/x"})),
        ),
        (
            Method::POST,
            "/api/v1/links/bulk".to_owned(),
            Some(json!({"links": [{"url": "https://example.com/x"}]})),
        ),
        (Method::PATCH, path.clone(), Some(json!({"redirect": 302}))),
        (Method::DELETE, path.clone(), None),
    ] {
        let r = h.call_as(read, method, &p, body).await;
        let body = r.problem(403);
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("links:write"),
            "{body}"
        );
    }
    // The write-only key writes but cannot read.
    let r = h.call_as(write, Method::GET, &path, None).await;
    assert!(
        r.problem(403)["detail"]
            .as_str()
            .unwrap_or("")
            .contains("links:read")
    );
    h.call_as(write, Method::PATCH, &path, Some(json!({"redirect": 307})))
        .await
        .ok(200);
    // An unknown token is 401, and the redirect needs no credentials at all.
    h.call_as(Some("nobody"), Method::GET, &path, None)
        .await
        .problem(401);
    assert_eq!(h.follow(&c).await.status.as_u16(), 307);
}

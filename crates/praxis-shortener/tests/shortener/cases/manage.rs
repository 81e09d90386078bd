//! PATCH, DELETE, listing.

use std::collections::HashSet;

use axum::http::Method;
use serde_json::{Value, json};

use crate::support::{Harness, code};

pub async fn patch_then_delete(h: &Harness) {
    let c = code(&h.create(json!({"url": "https://example.com/before"})).await);
    assert_eq!(
        h.follow(&c).await.header("location"),
        Some("https://example.com/before")
    );

    let patched = h
        .call(
            Method::PATCH,
            &format!("/api/v1/links/{c}"),
            Some(json!({"url": "https://example.com/after", "redirect": 302, "tags": ["x"]})),
        )
        .await
        .ok(200);
    assert_eq!(patched["url"], "https://example.com/after");
    assert_eq!(patched["tags"], json!(["x"]));
    let r = h.follow(&c).await;
    assert_eq!(
        r.status.as_u16(),
        302,
        "the cached redirect was invalidated"
    );
    assert_eq!(r.header("location"), Some("https://example.com/after"));

    h.call(
        Method::PATCH,
        &format!("/api/v1/links/{c}"),
        Some(json!({"expires_at": "2000-01-01T00:00:00Z"})),
    )
    .await
    .ok(200);
    h.follow(&c).await.problem(410);
    h.call(
        Method::PATCH,
        &format!("/api/v1/links/{c}"),
        Some(json!({"expires_at": null})),
    )
    .await
    .ok(200);
    assert_eq!(h.follow(&c).await.status.as_u16(), 302);

    let bad = h
        .call(
            Method::PATCH,
            &format!("/api/v1/links/{c}"),
            Some(json!({"url": "ftp://x", "redirect": 200})),
        )
        .await;
    bad.problem(400);
    assert_eq!(bad.fields(), ["url", "redirect"]);

    h.call(Method::DELETE, &format!("/api/v1/links/{c}"), None)
        .await
        .ok(204);
    h.follow(&c).await.problem(404);
    h.call(Method::GET, &format!("/api/v1/links/{c}"), None)
        .await
        .problem(404);
    h.call(Method::DELETE, &format!("/api/v1/links/{c}"), None)
        .await
        .problem(404);
    h.call(
        Method::PATCH,
        &format!("/api/v1/links/{c}"),
        Some(json!({"redirect": 301})),
    )
    .await
    .problem(404);
    h.call(Method::GET, &format!("/api/v1/links/{c}/stats"), None)
        .await
        .problem(404);

    // The alias of a deleted link can be used again, and the new link redirects at once
    // (the cached "no such code" is invalidated by the create).
    let alias = "reuse-me";
    h.create(json!({"url": "https://example.com/one", "alias": alias}))
        .await;
    h.call(Method::DELETE, &format!("/api/v1/links/{alias}"), None)
        .await
        .ok(204);
    h.follow(alias).await.problem(404);
    h.create(json!({"url": "https://example.com/two", "alias": alias}))
        .await;
    assert_eq!(
        h.follow(alias).await.header("location"),
        Some("https://example.com/two")
    );
}

async fn all_pages(h: &Harness, query: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/api/v1/links?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = h.call(Method::GET, &path, None).await.ok(200);
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= limit as usize);
        out.extend(items);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

pub async fn list_with_pagination_and_tags(h: &Harness) {
    let links: Vec<Value> = (0..23)
        .map(|i| {
            let tags = if i % 3 == 0 {
                json!(["third"])
            } else {
                json!(["other"])
            };
            json!({"url": format!("https://example.com/{i}"), "tags": tags})
        })
        .collect();
    let bulk = h
        .call(
            Method::POST,
            "/api/v1/links/bulk",
            Some(json!({ "links": links })),
        )
        .await
        .ok(200);
    assert_eq!(bulk["succeeded"], 23);
    // A few more, created one by one (different timestamps).
    for i in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        h.create(json!({"url": format!("https://example.com/single{i}"), "tags": ["third"]}))
            .await;
    }
    let listed = all_pages(h, "", 5).await;
    assert_eq!(listed.len(), 27);
    let codes: HashSet<&str> = listed.iter().filter_map(|l| l["code"].as_str()).collect();
    assert_eq!(codes.len(), 27, "no duplicates");
    // Newest first: the four links created last come first, newest at the top.
    let first: Vec<&str> = listed[..4]
        .iter()
        .filter_map(|l| l["url"].as_str())
        .collect();
    assert_eq!(
        first,
        [
            "https://example.com/single3",
            "https://example.com/single2",
            "https://example.com/single1",
            "https://example.com/single0"
        ]
    );

    let tagged = all_pages(h, "&tag=third", 2).await;
    assert_eq!(tagged.len(), 8 + 4);
    assert!(tagged.iter().all(|l| l["tags"] == json!(["third"])));
    let tagged_codes: HashSet<&str> = tagged.iter().filter_map(|l| l["code"].as_str()).collect();
    assert_eq!(tagged_codes.len(), 12);
    assert!(all_pages(h, "&tag=none", 10).await.is_empty());

    for bad in [
        "?cursor=garbage",
        "?limit=0",
        "?limit=abc",
        "?limit=-1",
        "?limit=501",
        "?sort=asc",
        "?tag=",
    ] {
        let r = h
            .call(Method::GET, &format!("/api/v1/links{bad}"), None)
            .await;
        r.problem(400);
    }
    // An over-large limit is a 400 naming it (the documented maximum is 500), never capped.
    let r = h
        .call(Method::GET, "/api/v1/links?limit=100000", None)
        .await;
    r.problem(400);
    assert_eq!(r.fields(), vec!["limit"]);
    // An empty cursor is the first page.
    let page = h
        .call(Method::GET, "/api/v1/links?cursor=&limit=500", None)
        .await
        .ok(200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(27));
}

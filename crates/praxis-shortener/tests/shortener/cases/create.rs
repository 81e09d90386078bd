//! Creating links and following them.

use axum::http::Method;
use serde_json::json;

use crate::support::{BASE, Harness, code, settings};

pub async fn create_and_redirect(h: &Harness) {
    let link = h
        .create(json!({"url": "https://example.com/page?x=1", "tags": ["b", "a"]}))
        .await;
    let c = code(&link);
    assert_eq!(c.len(), 7, "{link}");
    assert!(c.chars().all(|ch| ch.is_ascii_alphanumeric()), "{c}");
    assert_eq!(link["short_url"], format!("{BASE}{c}"));
    assert_eq!(link["url"], "https://example.com/page?x=1");
    assert_eq!(link["redirect"], 301);
    assert_eq!(link["tags"], json!(["a", "b"]));
    assert_eq!(link["status"], "active");
    assert_eq!(link["custom"], false);

    let r = h.follow(&c).await;
    assert_eq!(r.status.as_u16(), 301);
    assert_eq!(r.header("location"), Some("https://example.com/page?x=1"));
    assert_eq!(r.header("cache-control"), Some("private, max-age=90"));

    let head = h.call_with(Method::HEAD, &format!("/{c}"), None, &[]).await;
    assert_eq!(head.status.as_u16(), 301);
    assert_eq!(
        head.header("location"),
        Some("https://example.com/page?x=1")
    );
    assert!(head.body.is_empty());

    // Consecutive creates do not give consecutive codes.
    let second = code(&h.create(json!({"url": "https://example.com/2"})).await);
    let third = code(&h.create(json!({"url": "https://example.com/3"})).await);
    assert_ne!(second, third);
    assert_ne!(
        &second[..5],
        &third[..5],
        "codes look sequential: {second} {third}"
    );

    let got = h
        .call(Method::GET, &format!("/api/v1/links/{c}"), None)
        .await
        .ok(200);
    assert_eq!(got["code"], c.as_str());
}

pub async fn redirect_statuses(h: &Harness) {
    for status in [301u16, 302, 307] {
        let c = code(
            &h.create(json!({"url": "https://example.com/s", "redirect": status}))
                .await,
        );
        let r = h.follow(&c).await;
        assert_eq!(r.status.as_u16(), status);
        assert_eq!(r.header("location"), Some("https://example.com/s"));
    }
    let r = h
        .call(
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://e.com", "redirect": 308})),
        )
        .await;
    r.problem(400);
    assert_eq!(r.fields(), ["redirect"]);

    // A configured default applies to links that do not choose.
    let other = h
        .sibling(
            praxis_shortener::ShortenerSettings {
                default_redirect: 307,
                ..settings()
            },
            false,
        )
        .await;
    let link = other.create(json!({"url": "https://example.com/d"})).await;
    assert_eq!(link["redirect"], 307);
    assert_eq!(other.follow(&code(&link)).await.status.as_u16(), 307);
}

pub async fn custom_aliases(h: &Harness) {
    let link = h
        .create(json!({"url": "https://example.com/a", "alias": "my-Promo_1"}))
        .await;
    assert_eq!(link["code"], "my-Promo_1");
    assert_eq!(link["custom"], true);
    assert_eq!(h.follow("my-Promo_1").await.status.as_u16(), 301);
    assert_eq!(
        h.follow("my-promo_1").await.status.as_u16(),
        404,
        "codes are case-sensitive"
    );

    let taken = h
        .call(
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://example.com/b", "alias": "my-Promo_1"})),
        )
        .await;
    let p = taken.problem(409);
    assert!(
        p["type"].as_str().unwrap_or("").ends_with("alias-taken"),
        "{p}"
    );

    for (alias, why) in [
        ("API", "reserved"),
        ("healthz", "reserved"),
        ("a b", "only contain"),
        ("x/y", "only contain"),
        ("ab", "characters long"),
    ] {
        let r = h
            .call(
                Method::POST,
                "/api/v1/links",
                Some(json!({"url": "https://example.com/c", "alias": alias})),
            )
            .await;
        let p = r.problem(400);
        assert_eq!(r.fields(), ["alias"], "{alias}: {p}");
        assert!(
            p["errors"][0]["message"]
                .as_str()
                .unwrap_or("")
                .contains(why),
            "{alias}: {p}"
        );
    }
}

pub async fn idempotency_replays(h: &Harness) {
    let body = json!({"url": "https://example.com/idem"});
    let headers = [
        ("authorization", &*format!("Bearer {}", crate::support::KEY)),
        ("idempotency-key", "k-1"),
    ];
    let first = h
        .call_with(Method::POST, "/api/v1/links", Some(body.clone()), &headers)
        .await;
    let first_link = first.ok(201);
    let again = h
        .call_with(Method::POST, "/api/v1/links", Some(body), &headers)
        .await;
    let again_link = again.ok(201);
    assert_eq!(first_link["code"], again_link["code"]);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    let other = h
        .call_with(
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://example.com/other"})),
            &headers,
        )
        .await;
    other.problem(422);

    // Without a key, two creates are two links.
    let a = code(&h.create(json!({"url": "https://example.com/idem"})).await);
    assert_ne!(a, first_link["code"].as_str().unwrap_or(""));

    let bad_key = h
        .call_with(
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://example.com/x"})),
            &[
                ("authorization", &*format!("Bearer {}", crate::support::KEY)),
                ("idempotency-key", ""),
            ],
        )
        .await;
    bad_key.problem(400);
}

pub async fn find_if_exists(h: &Harness) {
    let first = h.create(json!({"url": "https://example.com/find"})).await;
    let found = h
        .call(
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://example.com/find", "find_if_exists": true})),
        )
        .await
        .ok(200);
    assert_eq!(found["code"], first["code"]);
    let fresh = h
        .call(
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://example.com/find-new", "find_if_exists": true})),
        )
        .await
        .ok(201);
    assert_ne!(fresh["code"], first["code"]);
    let again = h.create(json!({"url": "https://example.com/find"})).await;
    assert_ne!(
        again["code"], first["code"],
        "without the flag a new link is created"
    );

    // An expired link is not "existing".
    let old = h
        .create(json!({"url": "https://example.com/old", "expires_at": "2000-01-01T00:00:00Z"}))
        .await;
    let new = h
        .call(
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://example.com/old", "find_if_exists": true})),
        )
        .await
        .ok(201);
    assert_ne!(new["code"], old["code"]);
}

pub async fn url_rejections(h: &Harness) {
    let long = format!("https://example.com/{}", "a".repeat(2100));
    let cases: [(&str, &str); 9] = [
        ("", "empty"),
        ("not a url", "not a valid absolute url"),
        ("/relative", "not a valid absolute url"),
        ("ftp://example.com/f", "scheme `ftp`"),
        ("javascript:alert(1)", "scheme `javascript`"),
        ("https://user:pw@example.com/", "user name or password"),
        ("http://", "url"),
        ("https://sho.rt/abc", "own domain"),
        (&long, "limit is 2048"),
    ];
    for (url, why) in cases {
        let r = h
            .call(Method::POST, "/api/v1/links", Some(json!({ "url": url })))
            .await;
        let p = r.problem(400);
        assert_eq!(r.fields(), ["url"], "{url}: {p}");
        let msg = p["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_ascii_lowercase();
        assert!(msg.contains(why), "{url}: expected {why:?} in {msg:?}");
    }
}

pub async fn anonymous_creation(h: &Harness) {
    let r = h
        .call_with(
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://example.com"})),
            &[],
        )
        .await;
    r.problem(401);

    let open = h
        .sibling(
            praxis_shortener::ShortenerSettings {
                anonymous_create: true,
                ..settings()
            },
            false,
        )
        .await;
    let link = open
        .call_with(
            Method::POST,
            "/api/v1/links",
            Some(json!({"url": "https://example.com/anon"})),
            &[],
        )
        .await
        .ok(201);
    assert_eq!(link["owner"], "anonymous");
    assert_eq!(open.follow(&code(&link)).await.status.as_u16(), 301);
    // Managing still needs the key.
    open.call_with(
        Method::GET,
        &format!("/api/v1/links/{}", code(&link)),
        None,
        &[],
    )
    .await
    .problem(401);
    // The admin may manage every link.
    open.call(Method::GET, &format!("/api/v1/links/{}", code(&link)), None)
        .await
        .ok(200);
}

pub async fn concurrent_writes(h: &Harness) {
    let c = code(&h.create(json!({"url": "https://example.com/c0"})).await);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let app = h.app.clone();
            let c = c.clone();
            tokio::spawn(async move {
                use tower::ServiceExt;
                let (method, path, body) = match i % 3 {
                    0 => (
                        Method::POST,
                        "/api/v1/links".to_owned(),
                        json!({"url": "https://example.com/same", "find_if_exists": true}),
                    ),
                    1 => (
                        Method::POST,
                        "/api/v1/links".to_owned(),
                        json!({"url": format!("https://example.com/c{i}")}),
                    ),
                    _ => (
                        Method::PATCH,
                        format!("/api/v1/links/{c}"),
                        json!({"tags": [format!("t{i}")]}),
                    ),
                };
                let req = axum::http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("authorization", format!("Bearer {}", crate::support::KEY))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body.to_string()))
                    .expect("request");
                app.oneshot(req)
                    .await
                    .expect("infallible")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for t in tasks {
        let status = t.await.expect("task");
        assert!(
            matches!(status, 200 | 201),
            "concurrent write answered {status}"
        );
    }
}

pub async fn openapi_lists_routes(h: &Harness) {
    let doc = h
        .call_with(Method::GET, "/api/openapi.json", None, &[])
        .await
        .ok(200);
    for path in [
        "/api/v1/links",
        "/api/v1/links/bulk",
        "/api/v1/links/{code}",
        "/api/v1/links/{code}/stats",
        "/api/v1/links/{code}/qr",
        "/{code}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["paths"]["/api/v1/links/{code}"]["patch"].is_object());
    assert!(doc["components"]["schemas"]["CreateLink"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

pub async fn generated_code_skips_a_taken_alias(h: &Harness) {
    // On a fresh database the first generated code is the code of sequence number 0; take it
    // as an alias first, so the generator must skip to number 1.
    let format = praxis_shortener::domain::codes::CodeFormat::new(7).expect("width");
    let first = format.code(0).expect("code 0");
    let second = format.code(1).expect("code 1");
    h.create(json!({"url": "https://example.com/alias", "alias": first}))
        .await;
    let generated = h
        .create(json!({"url": "https://example.com/generated"}))
        .await;
    assert_eq!(generated["code"], second.as_str());
    assert_eq!(
        h.follow(&first).await.header("location"),
        Some("https://example.com/alias")
    );
    assert_eq!(
        h.follow(&second).await.header("location"),
        Some("https://example.com/generated")
    );
}

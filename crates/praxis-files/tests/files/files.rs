//! Files: downloads with ranges and validators, signed URLs, public links, dedupe, quotas,
//! simple and form uploads, listing, the lifecycle and the scan hook, on both backends.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Method;
use bytes::Bytes;
use praxis_files::FilesSettings;
use praxis_files::domain::signed::Grant;
use praxis_testkit::Kind;
use serde_json::json;

use crate::support::{ADMIN, Harness, pattern};

fn content(id: &str) -> String {
    format!("/api/v1/files/{id}/content")
}

pub async fn ranges_and_validators(kind: Kind) {
    let h = Harness::start(kind).await;
    let data = pattern(10_000, 20);
    let id = h.upload("ann", "r.bin", &data).await;
    let path = content(&id);
    let whole = h.get(Some("ann"), &path, &[]).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body.as_ref(), data.as_slice());
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let etag = whole.header("etag").unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", blake3::hash(&data).to_hex()));
    assert!(
        whole
            .header("content-disposition")
            .unwrap()
            .contains("filename=\"r.bin\"")
    );
    // One range, an open range, a suffix.
    for (range, want) in [
        ("bytes=0-99", 0..100),
        ("bytes=9990-", 9_990..10_000),
        ("bytes=-10", 9_990..10_000),
        ("bytes=9995-20000", 9_995..10_000),
    ] {
        let r = h.get(Some("ann"), &path, &[("range", range)]).await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body.as_ref(), &data[want.clone()], "{range}");
        let cr = format!("bytes {}-{}/10000", want.start, want.end - 1);
        assert_eq!(r.header("content-range"), Some(cr.as_str()));
    }
    // Several ranges: multipart/byteranges with each part's Content-Range.
    let r = h
        .get(Some("ann"), &path, &[("range", "bytes=0-9,100-109")])
        .await;
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap().to_owned();
    let boundary = ct.strip_prefix("multipart/byteranges; boundary=").unwrap();
    let text = r.body.to_vec();
    let parts: Vec<&[u8]> = split_multipart(&text, boundary);
    assert_eq!(parts.len(), 2);
    assert!(String::from_utf8_lossy(parts[0]).contains("Content-Range: bytes 0-9/10000"));
    assert!(parts[0].ends_with(&data[0..10]));
    assert!(parts[1].ends_with(&data[100..110]));
    assert_eq!(
        r.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        text.len()
    );
    // Unsatisfiable: 416 with the size.
    let r = h
        .get(Some("ann"), &path, &[("range", "bytes=10000-")])
        .await;
    r.problem(416);
    assert_eq!(r.header("content-range"), Some("bytes */10000"));
    // Malformed ranges are ignored (200, whole).
    assert_eq!(
        h.get(Some("ann"), &path, &[("range", "bytes=oops")])
            .await
            .status,
        200
    );
    // If-Range: a matching ETag honours the range, another one gets the whole file.
    let r = h
        .get(
            Some("ann"),
            &path,
            &[("range", "bytes=0-0"), ("if-range", &etag)],
        )
        .await;
    assert_eq!(r.status, 206);
    let r = h
        .get(
            Some("ann"),
            &path,
            &[("range", "bytes=0-0"), ("if-range", "\"other\"")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 10_000);
    // If-None-Match: 304 with the ETag and no body.
    let r = h.get(Some("ann"), &path, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    // HEAD: headers only.
    let r = h
        .raw(
            Method::HEAD,
            &path,
            &[("authorization", "Bearer u:ann")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10000"));
    assert!(r.body.is_empty());
    // Not the owner, not signed: 404; anonymous: 401.
    h.get(Some("bob"), &path, &[]).await.problem(404);
    h.get(None, &path, &[]).await.problem(401);
}

fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let marker = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, marker.as_bytes()) {
        let after = &rest[at + marker.len()..];
        if after.starts_with(b"--") {
            break;
        }
        let end = find(after, marker.as_bytes()).unwrap_or(after.len());
        let part = &after[..end];
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        parts.push(part);
        rest = &after[end..];
    }
    parts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub async fn signed_urls_expire_and_refuse_tampering(kind: Kind) {
    let h = Harness::start(kind).await;
    let data = pattern(5_000, 21);
    let id = h.upload("ann", "s.bin", &data).await;
    let r = h
        .call(
            Some("ann"),
            Method::POST,
            &format!("/api/v1/files/{id}/signed-url"),
            Some(json!({"expires_in": 600})),
        )
        .await
        .ok(200);
    let url = r["url"].as_str().unwrap().to_owned();
    let ok = h.get(None, &url, &[]).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.body.as_ref(), data.as_slice());
    // Ranges work through a signed URL too.
    assert_eq!(
        h.get(None, &url, &[("range", "bytes=0-1")]).await.status,
        206
    );
    // Tampered: another expiry, another file, a broken signature.
    let later = url.replace("expires=", "expires=9");
    h.get(None, &later, &[]).await.problem(403);
    let other = h.upload("ann", "t.bin", b"other").await;
    h.get(None, &url.replace(&id, &other), &[])
        .await
        .problem(403);
    let broken = format!("{}x", &url[..url.len() - 1]);
    h.get(None, &broken, &[]).await.problem(403);
    // Expired: a grant whose time has passed, correctly signed.
    let grant = Grant {
        file_id: id.clone(),
        expires: 1_000,
        method: None,
        ip: None,
    };
    let q = h.files.signer().query(&grant);
    let p = h
        .get(None, &format!("{}?{q}", content(&id)), &[])
        .await
        .problem(403);
    assert!(p["detail"].as_str().unwrap().contains("expired"), "{p}");
    // Bound to HEAD: GET is refused; bound to an address: another client is refused.
    let r = h
        .call(
            Some("ann"),
            Method::POST,
            &format!("/api/v1/files/{id}/signed-url"),
            Some(json!({"expires_in": 60, "method": "HEAD"})),
        )
        .await
        .ok(200);
    let head_only = r["url"].as_str().unwrap().to_owned();
    h.get(None, &head_only, &[]).await.problem(403);
    assert_eq!(
        h.raw(Method::HEAD, &head_only, &[], Body::empty())
            .await
            .status,
        200
    );
    let r = h
        .call(
            Some("ann"),
            Method::POST,
            &format!("/api/v1/files/{id}/signed-url"),
            Some(json!({"expires_in": 60, "ip": "192.0.2.9"})),
        )
        .await
        .ok(200);
    h.get(None, r["url"].as_str().unwrap(), &[])
        .await
        .problem(403);
    // Bad requests name the field; only the owner may sign.
    let r = h
        .call(
            Some("ann"),
            Method::POST,
            &format!("/api/v1/files/{id}/signed-url"),
            Some(json!({"expires_in": 999_999_999})),
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "expires_in");
    let r = h
        .call(
            Some("ann"),
            Method::POST,
            &format!("/api/v1/files/{id}/signed-url"),
            Some(json!({"expires_in": 5, "method": "DELETE"})),
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "method");
    h.call(
        Some("bob"),
        Method::POST,
        &format!("/api/v1/files/{id}/signed-url"),
        Some(json!({"expires_in": 5})),
    )
    .await
    .problem(404);
}

pub async fn public_links_work_until_revoked(kind: Kind) {
    let h = Harness::start(kind).await;
    let id = h.upload("ann", "p.txt", b"public bytes").await;
    let link = h
        .call(
            Some("ann"),
            Method::POST,
            &format!("/api/v1/files/{id}/links"),
            Some(json!({})),
        )
        .await
        .ok(201);
    let url = link["url"].as_str().unwrap().to_owned();
    let r = h.get(None, &url, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "public bytes");
    let token = link["token"].as_str().unwrap();
    h.call(
        Some("bob"),
        Method::DELETE,
        &format!("/api/v1/files/links/{token}"),
        None,
    )
    .await
    .problem(404);
    let r = h
        .call(
            Some("ann"),
            Method::DELETE,
            &format!("/api/v1/files/links/{token}"),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    h.get(None, &url, &[]).await.problem(410);
    h.get(None, "/api/v1/files/public/nope", &[])
        .await
        .problem(404);
}

pub async fn dedupe_counts_references_under_concurrent_uploads_and_deletes(kind: Kind) {
    let h = Arc::new(Harness::start(kind).await);
    let same = pattern(64_000, 22);
    // Eight accounts upload the same content at once.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let h = h.clone();
        let same = same.clone();
        tasks.push(tokio::spawn(async move {
            h.upload(&format!("u{i}"), "same.bin", &same).await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let hash = blake3::hash(&same).to_hex().to_string();
    assert_eq!(
        h.scalar(&format!(
            "SELECT COUNT(*) FROM files_blobs WHERE hash = '{hash}'"
        ))
        .await,
        1
    );
    assert_eq!(
        h.scalar(&format!(
            "SELECT refs FROM files_blobs WHERE hash = '{hash}'"
        ))
        .await,
        8
    );
    // Deletes and new uploads of the same content race.
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate().take(6) {
        let h = h.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let r = h
                .call(
                    Some(&format!("u{i}")),
                    Method::DELETE,
                    &format!("/api/v1/files/{id}"),
                    None,
                )
                .await;
            assert_eq!(r.status, 204, "{}", r.text());
            None
        }));
    }
    for i in 0..4 {
        let h = h.clone();
        let same = same.clone();
        tasks.push(tokio::spawn(async move {
            Some(h.upload(&format!("v{i}"), "again.bin", &same).await)
        }));
    }
    let mut alive: Vec<(String, String)> = ids[6..]
        .iter()
        .enumerate()
        .map(|(i, id)| (format!("u{}", i + 6), id.clone()))
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        if let Some(id) = t.await.unwrap() {
            alive.push((format!("v{}", i - 6), id));
        }
    }
    assert_eq!(alive.len(), 6);
    let files = h
        .scalar(&format!(
            "SELECT COUNT(*) FROM files_files WHERE blake3 = '{hash}'"
        ))
        .await;
    assert_eq!(files, 6);
    assert_eq!(
        h.scalar(&format!(
            "SELECT refs FROM files_blobs WHERE hash = '{hash}'"
        ))
        .await,
        6
    );
    for (user, id) in &alive {
        let r = h.get(Some(user), &content(id), &[]).await;
        assert_eq!(r.body.as_ref(), same.as_slice(), "{user} reads its copy");
    }
    // The last reference frees the blob and its object.
    let key: String = {
        use sqlx::Row;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT blob_key FROM files_blobs WHERE hash = '{hash}'"
        )))
        .fetch_one(h.backend.platform.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
    };
    assert!(h.backend.platform.blobs.size(&key).await.unwrap().is_some());
    for (user, id) in &alive {
        let r = h
            .call(
                Some(user),
                Method::DELETE,
                &format!("/api/v1/files/{id}"),
                None,
            )
            .await;
        assert_eq!(r.status, 204);
    }
    assert_eq!(
        h.scalar(&format!(
            "SELECT COUNT(*) FROM files_blobs WHERE hash = '{hash}'"
        ))
        .await,
        0
    );
    assert_eq!(
        h.backend.platform.blobs.size(&key).await.unwrap(),
        None,
        "the object is gone"
    );
    // Only one object was ever kept for the content: the duplicates' objects were deleted.
    assert_eq!(h.scalar("SELECT COUNT(*) FROM files_uploads").await, 0);
}

pub async fn quotas_are_checked_at_creation_and_while_uploading(kind: Kind) {
    let h = Harness::start(kind).await;
    let r = h
        .call(
            Some("ann"),
            Method::PUT,
            "/api/v1/files/quotas/ann",
            Some(json!({"max_bytes": 10_000, "max_files": 2})),
        )
        .await;
    r.problem(403);
    let admin = h
        .raw(
            Method::PUT,
            "/api/v1/files/quotas/ann",
            &[
                ("authorization", &format!("Bearer {ADMIN}")),
                ("content-type", "application/json"),
            ],
            Body::from(json!({"max_bytes": 10_000, "max_files": 2}).to_string()),
        )
        .await;
    assert_eq!(admin.status, 200, "{}", admin.text());
    let r = h.create("ann", &[("upload-length", "10001")]).await;
    let p = r.problem(413);
    assert_eq!(p["type"], "https://praxis.dev/problems/quota-exceeded");
    h.upload("ann", "a", &pattern(6_000, 23)).await;
    h.create("ann", &[("upload-length", "5000")])
        .await
        .problem(413);
    // A deferred upload is cut where the quota ends.
    let r = h.create("ann", &[("upload-defer-length", "1")]).await;
    assert_eq!(r.status, 201);
    let url = r.header("location").unwrap().to_owned();
    h.patch("ann", &url, 0, Bytes::from(pattern(4_001, 24)), &[])
        .await
        .problem(413);
    assert_eq!(h.head("ann", &url).await.header("upload-offset"), Some("0"));
    let r = h
        .patch("ann", &url, 0, Bytes::from(pattern(4_000, 24)), &[])
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Files count too.
    h.create("ann", &[("upload-length", "0")])
        .await
        .problem(413);
    let usage = h
        .call(Some("ann"), Method::GET, "/api/v1/files/usage", None)
        .await
        .ok(200);
    assert_eq!(
        usage,
        json!({"bytes": 10_000, "files": 2, "max_bytes": 10_000, "max_files": 2})
    );
}

pub async fn simple_and_form_uploads(kind: Kind) {
    let h = Harness::start(kind).await;
    let png = [b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".as_slice(), &[0u8; 32]].concat();
    let r = h
        .raw(
            Method::PUT,
            "/api/v1/files/upload?name=pic.png&tags=a,b&ttl=1h",
            &[
                ("authorization", "Bearer u:ann"),
                ("content-type", "image/png"),
            ],
            Body::from(png.clone()),
        )
        .await;
    let f = r.ok(201);
    assert_eq!(f["content_type"], "image/png");
    assert_eq!(f["sniffed_type"], "image/png");
    assert_eq!(f["type_mismatch"], false);
    assert_eq!(f["tags"], json!(["a", "b"]));
    assert!(f["expires_at"].is_string());
    // Declared as text, but a PNG: flagged, and served as an attachment of octet-stream.
    let r = h
        .raw(
            Method::PUT,
            "/api/v1/files/upload?name=fake.txt",
            &[
                ("authorization", "Bearer u:ann"),
                ("content-type", "text/plain"),
            ],
            Body::from(png.clone()),
        )
        .await;
    let f = r.ok(201);
    assert_eq!(f["type_mismatch"], true);
    let got = h
        .get(Some("ann"), f["content_url"].as_str().unwrap(), &[])
        .await;
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    assert!(
        got.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    // HTML declared as HTML: never rendered on this origin (an attachment, in a sandbox).
    let r = h
        .raw(
            Method::PUT,
            "/api/v1/files/upload?name=page.html",
            &[
                ("authorization", "Bearer u:ann"),
                ("content-type", "text/html"),
            ],
            Body::from("<html><script>alert(1)</script></html>"),
        )
        .await;
    let f = r.ok(201);
    let got = h
        .get(Some("ann"), f["content_url"].as_str().unwrap(), &[])
        .await;
    assert_eq!(got.header("content-type"), Some("text/html"));
    assert!(
        got.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    assert!(
        got.header("content-security-policy")
            .unwrap()
            .starts_with("sandbox")
    );
    // A declared type with a line break is not a media type.
    let r = h
        .raw(
            Method::PUT,
            "/api/v1/files/upload?name=x",
            &[
                ("authorization", "Bearer u:ann"),
                ("content-type", "text/plain; a=\"b\tc\""),
            ],
            Body::from("x"),
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "Content-Type");
    // A streamed body without Content-Length ends the file where it ends.
    let chunks = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(Bytes::from_static(b"hello ")),
        Ok(Bytes::from_static(b"world")),
    ]);
    let r = h
        .raw(
            Method::PUT,
            "/api/v1/files/upload?name=s.txt",
            &[
                ("authorization", "Bearer u:ann"),
                ("content-type", "text/plain"),
            ],
            Body::from_stream(chunks),
        )
        .await;
    let f = r.ok(201);
    assert_eq!(f["size"], 11);
    // The form upload.
    let boundary = "XyZ";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\nx,y\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\nsome notes\r\n--{boundary}--\r\n"
    );
    let r = h
        .raw(
            Method::POST,
            "/api/v1/files/upload",
            &[
                ("authorization", "Bearer u:ann"),
                (
                    "content-type",
                    &format!("multipart/form-data; boundary={boundary}"),
                ),
            ],
            Body::from(form),
        )
        .await;
    let f = r.ok(201);
    assert_eq!(f["name"], "notes.txt");
    assert_eq!(f["tags"], json!(["x", "y"]));
    assert_eq!(
        h.get(Some("ann"), f["content_url"].as_str().unwrap(), &[])
            .await
            .text(),
        "some notes"
    );
    // Bad input names the field.
    let r = h
        .raw(
            Method::PUT,
            "/api/v1/files/upload?name=x&ttl=soon",
            &[("authorization", "Bearer u:ann")],
            Body::from("x"),
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "ttl");
    let r = h
        .raw(
            Method::PUT,
            "/api/v1/files/upload",
            &[("authorization", "Bearer u:ann")],
            Body::from("x"),
        )
        .await;
    r.problem(400);
    let r = h
        .raw(
            Method::POST,
            "/api/v1/files/upload",
            &[
                ("authorization", "Bearer u:ann"),
                (
                    "content-type",
                    &format!("multipart/form-data; boundary={boundary}"),
                ),
            ],
            Body::from(format!("--{boundary}--\r\n")),
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "file");
}

pub async fn listing_pages_newest_first(kind: Kind) {
    let h = Harness::start(kind).await;
    let mut ids = Vec::new();
    for i in 0..5u8 {
        ids.push(h.upload("ann", &format!("f{i}"), &[i; 10]).await);
    }
    h.upload("bob", "theirs", b"x").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/files?limit=2&cursor={c}"),
            None => "/api/v1/files?limit=2".to_owned(),
        };
        let page = h.call(Some("ann"), Method::GET, &path, None).await.ok(200);
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
    let r = h
        .call(Some("ann"), Method::GET, "/api/v1/files?limit=0", None)
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "limit");
    h.call(
        Some("ann"),
        Method::GET,
        "/api/v1/files?cursor=garbage",
        None,
    )
    .await
    .problem(400);
}

pub async fn files_with_a_ttl_expire(kind: Kind) {
    let h = Harness::start(kind).await;
    let r = h
        .raw(
            Method::PUT,
            "/api/v1/files/upload?name=t&ttl=1h",
            &[("authorization", "Bearer u:ann")],
            Body::from("bye"),
        )
        .await;
    let id = r.ok(201)["id"].as_str().unwrap().to_owned();
    let keep = h.upload("ann", "k", b"stay").await;
    h.sql(&format!(
        "UPDATE files_files SET expires_at = 1000 WHERE id = '{id}'"
    ))
    .await;
    let swept = h.files.sweep().await.unwrap();
    assert_eq!(swept.expired_files, 1);
    h.call(
        Some("ann"),
        Method::GET,
        &format!("/api/v1/files/{id}"),
        None,
    )
    .await
    .problem(404);
    h.call(
        Some("ann"),
        Method::GET,
        &format!("/api/v1/files/{keep}"),
        None,
    )
    .await
    .ok(200);
}

pub async fn old_blobs_move_to_the_cold_store(kind: Kind) {
    let cold_dir = tempfile::tempdir().unwrap();
    let settings = FilesSettings {
        cold_url: Some(format!("file://{}", cold_dir.path().display())),
        cold_after: Duration::from_secs(1),
        ..FilesSettings::default()
    };
    let h = Harness::with(kind, settings).await;
    let data = pattern(20_000, 25);
    let id = h.upload("ann", "c.bin", &data).await;
    h.sql("UPDATE files_blobs SET created_at = 1000").await;
    let swept = h.files.sweep().await.unwrap();
    assert_eq!(swept.cooled, 1);
    assert_eq!(
        h.scalar("SELECT COUNT(*) FROM files_blobs WHERE tier = 'cold'")
            .await,
        1
    );
    let got = h
        .get(Some("ann"), &content(&id), &[("range", "bytes=100-199")])
        .await;
    assert_eq!(got.status, 206);
    assert_eq!(got.body.as_ref(), &data[100..200]);
    // Deleting the file frees the cold copy.
    let r = h
        .call(
            Some("ann"),
            Method::DELETE,
            &format!("/api/v1/files/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let left = std::fs::read_dir(cold_dir.path())
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten())
        .count();
    assert_eq!(left, 0, "the cold object is deleted");
}

pub async fn the_scanner_passes_or_quarantines(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("scan.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nif grep -q EICAR \"$1\"; then exit 1; fi\nexit 0\n",
    )
    .unwrap();
    let settings = FilesSettings {
        scan_command: Some(format!("sh {}", script.display())),
        ..FilesSettings::default()
    };
    let h = Harness::with(kind, settings).await;
    let clean = h.upload("ann", "clean.txt", b"just text").await;
    let bad = h
        .upload(
            "ann",
            "bad.txt",
            b"X5O!P%@AP EICAR-STANDARD-ANTIVIRUS-TEST-FILE",
        )
        .await;
    // The scan worker runs in the background; wait for both verdicts.
    praxis_testkit::eventually::eventually(
        Duration::from_secs(20),
        "both scan verdicts",
        || async {
            let a = h
                .call(
                    Some("ann"),
                    Method::GET,
                    &format!("/api/v1/files/{clean}"),
                    None,
                )
                .await
                .json();
            let b = h
                .call(
                    Some("ann"),
                    Method::GET,
                    &format!("/api/v1/files/{bad}"),
                    None,
                )
                .await
                .json();
            (a["status"] == "ready" && b["status"] == "quarantined").then_some(())
        },
    )
    .await;
    assert_eq!(
        h.get(Some("ann"), &content(&clean), &[]).await.text(),
        "just text"
    );
    h.get(Some("ann"), &content(&bad), &[]).await.problem(403);
}

pub async fn a_pending_file_is_not_served(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("slow.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 30\n").unwrap();
    let settings = FilesSettings {
        // A scanner that never answers in time: files stay pending.
        scan_command: Some(format!("sh {}", script.display())),
        scan_timeout: Duration::from_secs(1),
        ..FilesSettings::default()
    };
    let h = Harness::with(kind, settings).await;
    let id = h.upload("ann", "wait.txt", b"later").await;
    let f = h
        .call(
            Some("ann"),
            Method::GET,
            &format!("/api/v1/files/{id}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(f["status"], "pending");
    assert_eq!(
        h.get(Some("ann"), &content(&id), &[]).await.problem(409)["type"],
        "https://praxis.dev/problems/file-pending"
    );
}

//! tus 1.0.0 conformance: the core protocol and every extension, on both backends.

use axum::body::Body;
use axum::http::Method;
use base64::Engine;
use bytes::Bytes;
use praxis_testkit::Kind;
use sha2::Digest;

use crate::support::{Harness, TUS, metadata, pattern};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub async fn options_advertises_every_extension(kind: Kind) {
    let h = Harness::start(kind).await;
    let r = h.raw(Method::OPTIONS, TUS, &[], Body::empty()).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    let ext: Vec<&str> = r.header("tus-extension").unwrap().split(',').collect();
    for e in [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "expiration",
        "checksum",
        "termination",
        "concatenation",
    ] {
        assert!(ext.contains(&e), "{e} missing from {ext:?}");
    }
    assert_eq!(r.header("tus-checksum-algorithm"), Some("sha1,sha256,md5"));
    assert_eq!(
        r.header("tus-max-size"),
        Some((10u64 << 30).to_string().as_str())
    );
}

pub async fn starts_through_its_plugin(kind: Kind) {
    let (_backend, app) = Harness::through_plugin(kind).await;
    let r = praxis_testkit::http::send(
        &app,
        axum::http::Request::options(TUS)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
}

pub async fn upload_in_chunks_then_head_and_download(kind: Kind) {
    let h = Harness::start(kind).await;
    let data = pattern(300_000, 1);
    let url = h.new_upload("ann", data.len(), "report.bin").await;
    assert!(url.starts_with(TUS), "{url}");
    let head = h.head("ann", &url).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("upload-offset"), Some("0"));
    assert_eq!(head.header("upload-length"), Some("300000"));
    assert_eq!(head.header("cache-control"), Some("no-store"));
    assert!(
        head.header("upload-metadata")
            .unwrap()
            .contains("filename ")
    );
    let mut offset = 0usize;
    for chunk in data.chunks(100_000) {
        let r = h
            .patch(
                "ann",
                &url,
                offset as u64,
                Bytes::copy_from_slice(chunk),
                &[],
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        offset += chunk.len();
        assert_eq!(r.header("upload-offset"), Some(offset.to_string().as_str()));
        assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    }
    let got = h.get(Some("ann"), &url, &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body.as_ref(), data.as_slice());
    let id = url.rsplit('/').next().unwrap();
    let meta = h
        .call(
            Some("ann"),
            Method::GET,
            &format!("/api/v1/files/{id}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(meta["name"], "report.bin");
    assert_eq!(meta["size"], 300_000);
    assert_eq!(meta["blake3"], blake3::hash(&data).to_hex().to_string());
    // The SHA-256 follows in the background (D80).
    let want = crate::hex(&sha2::Sha256::digest(&data));
    let path = format!("/api/v1/files/{id}");
    let got = praxis_testkit::eventually::eventually(
        std::time::Duration::from_secs(20),
        "the file's SHA-256 is set",
        || async {
            let m = h.call(Some("ann"), Method::GET, &path, None).await.json();
            m["sha256"].as_str().map(str::to_owned)
        },
    )
    .await;
    assert_eq!(got, want);
    assert_eq!(meta["status"], "ready");
    // A complete upload takes no more bytes; an empty PATCH at its end is fine.
    h.patch("ann", &url, 300_000, Bytes::from_static(b"more"), &[])
        .await
        .problem(413);
    let r = h.patch("ann", &url, 300_000, Bytes::new(), &[]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("upload-offset"), Some("300000"));
    // Another account sees nothing.
    assert_eq!(h.head("bob", &url).await.status, 404);
    assert_eq!(h.get(Some("bob"), &url, &[]).await.status, 404);
}

pub async fn interrupted_patch_keeps_what_arrived_and_resumes(kind: Kind) {
    let h = Harness::start(kind).await;
    let data = pattern(200_000, 2);
    let url = h.new_upload("ann", data.len(), "resume.bin").await;
    // A body that sends 70,000 bytes and then fails, as a dropped connection does.
    let first = Bytes::copy_from_slice(&data[..70_000]);
    let broken = futures::stream::iter(vec![
        Ok::<Bytes, std::io::Error>(first),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ]);
    let auth = "Bearer u:ann";
    let r = h
        .raw(
            Method::PATCH,
            &url,
            &[
                ("tus-resumable", "1.0.0"),
                ("authorization", auth),
                ("content-type", "application/offset+octet-stream"),
                ("upload-offset", "0"),
            ],
            Body::from_stream(broken),
        )
        .await;
    assert!(r.status.is_client_error(), "{}: {}", r.status, r.text());
    let head = h.head("ann", &url).await;
    assert_eq!(
        head.header("upload-offset"),
        Some("70000"),
        "the bytes that arrived are kept"
    );
    // Resuming from an old offset is a conflict naming the current one.
    let stale = h
        .patch("ann", &url, 0, Bytes::copy_from_slice(&data), &[])
        .await;
    let p = stale.problem(409);
    assert!(p["detail"].as_str().unwrap().contains("70000"), "{p}");
    let r = h
        .patch(
            "ann",
            &url,
            70_000,
            Bytes::copy_from_slice(&data[70_000..]),
            &[],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let got = h.get(Some("ann"), &url, &[]).await;
    assert_eq!(got.body.as_ref(), data.as_slice());
}

pub async fn checksums_are_verified_and_a_mismatch_is_460(kind: Kind) {
    let h = Harness::start(kind).await;
    let data = pattern(30_000, 3);
    let url = h.new_upload("ann", data.len(), "sum.bin").await;
    let (a, b, c) = (&data[..10_000], &data[10_000..20_000], &data[20_000..]);
    let sha1 = format!("sha1 {}", b64(&sha1::Sha1::digest(a)));
    let r = h
        .patch(
            "ann",
            &url,
            0,
            Bytes::copy_from_slice(a),
            &[("upload-checksum", &sha1)],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // A wrong digest: 460, and nothing of the chunk is kept.
    let wrong = format!("sha256 {}", b64(&sha2::Sha256::digest(a)));
    let r = h
        .patch(
            "ann",
            &url,
            10_000,
            Bytes::copy_from_slice(b),
            &[("upload-checksum", &wrong)],
        )
        .await;
    let p = r.problem(460);
    assert_eq!(p["type"], "https://praxis.dev/problems/checksum-mismatch");
    assert_eq!(
        h.head("ann", &url).await.header("upload-offset"),
        Some("10000")
    );
    let right = format!("sha256 {}", b64(&sha2::Sha256::digest(b)));
    let r = h
        .patch(
            "ann",
            &url,
            10_000,
            Bytes::copy_from_slice(b),
            &[("upload-checksum", &right)],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let md5 = format!("md5 {}", b64(&md5::Md5::digest(c)));
    let r = h
        .patch(
            "ann",
            &url,
            20_000,
            Bytes::copy_from_slice(c),
            &[("upload-checksum", &md5)],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        h.get(Some("ann"), &url, &[]).await.body.as_ref(),
        data.as_slice()
    );
    // An unsupported algorithm is 400 naming the header.
    let url = h.new_upload("ann", 10, "x").await;
    let r = h
        .patch(
            "ann",
            &url,
            0,
            Bytes::from_static(b"0123456789"),
            &[("upload-checksum", "crc32 AAAAAA==")],
        )
        .await;
    let p = r.problem(400);
    assert_eq!(p["errors"][0]["field"], "Upload-Checksum");
}

pub async fn expired_uploads_are_410_then_swept(kind: Kind) {
    let h = Harness::start(kind).await;
    let url = h.new_upload("ann", 1_000, "old.bin").await;
    let r = h
        .patch("ann", &url, 0, Bytes::from(pattern(400, 4)), &[])
        .await;
    assert_eq!(r.status, 204);
    let expires = r.header("upload-expires").unwrap().to_owned();
    assert!(httpdate::parse_http_date(&expires).is_ok(), "{expires}");
    assert_eq!(h.files.usage("ann").await.unwrap().bytes, 1_000);
    let id = url.rsplit('/').next().unwrap();
    h.sql(&format!(
        "UPDATE files_uploads SET expires_at = 1000 WHERE id = '{id}'"
    ))
    .await;
    assert_eq!(h.head("ann", &url).await.status, 410);
    h.patch("ann", &url, 400, Bytes::from(pattern(600, 4)), &[])
        .await
        .problem(410);
    let swept = h.files.sweep().await.unwrap();
    assert_eq!(swept.expired_uploads, 1);
    assert_eq!(h.head("ann", &url).await.status, 404);
    assert_eq!(
        h.files.usage("ann").await.unwrap().bytes,
        0,
        "the reservation is released"
    );
}

pub async fn partial_uploads_concatenate_into_a_final_one(kind: Kind) {
    let h = Harness::start(kind).await;
    let (a, b) = (pattern(50_000, 5), pattern(30_000, 6));
    let mut urls = Vec::new();
    for part in [&a, &b] {
        let len = part.len().to_string();
        let r = h
            .create(
                "ann",
                &[("upload-length", &len), ("upload-concat", "partial")],
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let url = r.header("location").unwrap().to_owned();
        assert_eq!(
            h.head("ann", &url).await.header("upload-concat"),
            Some("partial")
        );
        let r = h
            .patch("ann", &url, 0, Bytes::copy_from_slice(part), &[])
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        // A partial upload is not a file.
        assert_eq!(h.get(Some("ann"), &url, &[]).await.status, 404);
        urls.push(url);
    }
    let concat = format!("final;{} {}", urls[0], urls[1]);
    let meta = metadata(&[("filename", "whole.bin")]);
    let r = h
        .create(
            "ann",
            &[("upload-concat", &concat), ("upload-metadata", &meta)],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let url = r.header("location").unwrap().to_owned();
    let head = h.head("ann", &url).await;
    assert_eq!(head.header("upload-concat"), Some(concat.as_str()));
    assert_eq!(head.header("upload-length"), Some("80000"));
    assert_eq!(head.header("upload-offset"), Some("80000"));
    let got = h.get(Some("ann"), &url, &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body.as_ref(),
        [a.as_slice(), b.as_slice()].concat().as_slice()
    );
    // A final upload takes no PATCH; the partials went with the concatenation.
    h.patch("ann", &url, 80_000, Bytes::new(), &[])
        .await
        .problem(403);
    assert_eq!(h.head("ann", &urls[0]).await.status, 404);
    assert_eq!(h.files.usage("ann").await.unwrap().bytes, 80_000);
    // A final upload of something that is not a complete partial upload is refused.
    let single = h.new_upload("ann", 10, "s").await;
    let r = h
        .create("ann", &[("upload-concat", &format!("final;{single}"))])
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "Upload-Concat");
    let r = h
        .create(
            "ann",
            &[("upload-concat", "final;"), ("upload-length", "5")],
        )
        .await;
    r.problem(400);
}

pub async fn deferred_length_is_set_by_a_later_patch(kind: Kind) {
    let h = Harness::start(kind).await;
    let data = pattern(25_000, 7);
    let r = h.create("ann", &[("upload-defer-length", "1")]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let url = r.header("location").unwrap().to_owned();
    let head = h.head("ann", &url).await;
    assert_eq!(head.header("upload-defer-length"), Some("1"));
    assert_eq!(head.header("upload-length"), None);
    let r = h
        .patch("ann", &url, 0, Bytes::copy_from_slice(&data[..10_000]), &[])
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(h.files.usage("ann").await.unwrap().bytes, 10_000);
    let r = h
        .patch(
            "ann",
            &url,
            10_000,
            Bytes::copy_from_slice(&data[10_000..]),
            &[("upload-length", "25000")],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("upload-length"), Some("25000"));
    assert_eq!(
        h.get(Some("ann"), &url, &[]).await.body.as_ref(),
        data.as_slice()
    );
    // A length below the offset is refused, naming the header.
    let r = h.create("ann", &[("upload-defer-length", "1")]).await;
    let url = r.header("location").unwrap().to_owned();
    h.patch("ann", &url, 0, Bytes::from_static(b"abcdef"), &[])
        .await;
    let p = h
        .patch("ann", &url, 6, Bytes::new(), &[("upload-length", "3")])
        .await
        .problem(400);
    assert_eq!(p["errors"][0]["field"], "Upload-Length");
}

pub async fn termination_deletes_the_upload(kind: Kind) {
    let h = Harness::start(kind).await;
    let url = h.new_upload("ann", 5_000, "gone.bin").await;
    h.patch("ann", &url, 0, Bytes::from(pattern(2_000, 8)), &[])
        .await;
    let auth = "Bearer u:ann";
    // Not someone else's to terminate.
    let r = h
        .raw(
            Method::DELETE,
            &url,
            &[
                ("tus-resumable", "1.0.0"),
                ("authorization", "Bearer u:bob"),
            ],
            Body::empty(),
        )
        .await;
    r.problem(404);
    let r = h
        .raw(
            Method::DELETE,
            &url,
            &[("tus-resumable", "1.0.0"), ("authorization", auth)],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    assert_eq!(h.head("ann", &url).await.status, 404);
    h.patch("ann", &url, 2_000, Bytes::from_static(b"x"), &[])
        .await
        .problem(404);
    assert_eq!(
        h.files.usage("ann").await.unwrap(),
        praxis_files::domain::model::FileUsage {
            bytes: 0,
            files: 0,
            max_bytes: 10 << 30,
            max_files: 10_000,
        }
    );
}

pub async fn creation_with_upload_takes_the_first_bytes(kind: Kind) {
    let h = Harness::start(kind).await;
    let data = pattern(40_000, 9);
    let auth = "Bearer u:ann";
    let r = h
        .raw(
            Method::POST,
            TUS,
            &[
                ("tus-resumable", "1.0.0"),
                ("authorization", auth),
                ("upload-length", "40000"),
                ("content-type", "application/offset+octet-stream"),
            ],
            Body::from(data[..15_000].to_vec()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("upload-offset"), Some("15000"));
    let url = r.header("location").unwrap().to_owned();
    let r = h
        .patch(
            "ann",
            &url,
            15_000,
            Bytes::copy_from_slice(&data[15_000..]),
            &[],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        h.get(Some("ann"), &url, &[]).await.body.as_ref(),
        data.as_slice()
    );
    // The whole file in the creation request.
    let r = h
        .raw(
            Method::POST,
            TUS,
            &[
                ("tus-resumable", "1.0.0"),
                ("authorization", auth),
                ("upload-length", "3"),
                ("content-type", "application/offset+octet-stream"),
            ],
            Body::from("abc"),
        )
        .await;
    assert_eq!(r.status, 201);
    let url = r.header("location").unwrap().to_owned();
    assert_eq!(h.get(Some("ann"), &url, &[]).await.text(), "abc");
}

pub async fn protocol_errors_are_named_problems(kind: Kind) {
    let h = Harness::start(kind).await;
    let auth = "Bearer u:ann";
    // No Tus-Resumable: 400 naming it; another version: 412 with the supported one.
    let r = h
        .raw(
            Method::POST,
            TUS,
            &[("authorization", auth), ("upload-length", "5")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "Tus-Resumable");
    let r = h
        .raw(
            Method::POST,
            TUS,
            &[
                ("authorization", auth),
                ("upload-length", "5"),
                ("tus-resumable", "0.2.2"),
            ],
            Body::empty(),
        )
        .await;
    r.problem(412);
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    let r = h.create("ann", &[("upload-length", "-5")]).await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "Upload-Length");
    let r = h.create("ann", &[]).await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "Upload-Length");
    let r = h
        .create(
            "ann",
            &[("upload-length", "5"), ("upload-defer-length", "1")],
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "Upload-Defer-Length");
    let r = h
        .create(
            "ann",
            &[("upload-length", "5"), ("upload-metadata", "filename ***")],
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "Upload-Metadata");
    let r = h
        .create("ann", &[("upload-length", &(11u64 << 30).to_string())])
        .await;
    assert_eq!(
        r.problem(413)["type"],
        "https://praxis.dev/problems/too-large"
    );
    // Anonymous: 401.
    let r = h
        .raw(
            Method::POST,
            TUS,
            &[("tus-resumable", "1.0.0"), ("upload-length", "5")],
            Body::empty(),
        )
        .await;
    r.problem(401);
    let url = h.new_upload("ann", 5, "e").await;
    // A PATCH must be application/offset+octet-stream.
    let r = h
        .raw(
            Method::PATCH,
            &url,
            &[
                ("tus-resumable", "1.0.0"),
                ("authorization", auth),
                ("upload-offset", "0"),
                ("content-type", "text/plain"),
            ],
            Body::from("hello"),
        )
        .await;
    r.problem(415);
    let r = h
        .raw(
            Method::PATCH,
            &url,
            &[
                ("tus-resumable", "1.0.0"),
                ("authorization", auth),
                ("content-type", "application/offset+octet-stream"),
            ],
            Body::from("hello"),
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "Upload-Offset");
    // More bytes than the upload's length: 413, nothing kept.
    h.patch("ann", &url, 0, Bytes::from_static(b"too long!"), &[])
        .await
        .problem(413);
    assert_eq!(h.head("ann", &url).await.header("upload-offset"), Some("0"));
    assert_eq!(
        h.head("ann", &format!("{TUS}no-such-upload")).await.status,
        404
    );
}

pub async fn two_patches_at_once_never_corrupt_an_upload(kind: Kind) {
    let h = Harness::start(kind).await;
    let data = pattern(400_000, 10);
    let url = h.new_upload("ann", data.len(), "race.bin").await;
    // Two clients race for the same offset with different bytes; exactly one wins, the other
    // gets 409 or 423, and the upload holds the winner's bytes.
    let other = pattern(200_000, 11);
    let (r1, r2) = tokio::join!(
        h.patch(
            "ann",
            &url,
            0,
            Bytes::copy_from_slice(&data[..200_000]),
            &[]
        ),
        h.patch("ann", &url, 0, Bytes::copy_from_slice(&other), &[])
    );
    let statuses = [r1.status.as_u16(), r2.status.as_u16()];
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [204, 409, 423].contains(s)),
        "{statuses:?}"
    );
    let winner: &[u8] = if r1.status == 204 {
        &data[..200_000]
    } else {
        &other
    };
    let r = h
        .patch(
            "ann",
            &url,
            200_000,
            Bytes::copy_from_slice(&data[200_000..]),
            &[],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let got = h.get(Some("ann"), &url, &[]).await;
    assert_eq!(&got.body[..200_000], winner);
    assert_eq!(&got.body[200_000..], &data[200_000..]);
    let id = url.rsplit('/').next().unwrap();
    let meta = h
        .call(
            Some("ann"),
            Method::GET,
            &format!("/api/v1/files/{id}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(
        meta["blake3"],
        blake3::hash(&got.body).to_hex().to_string(),
        "the digest is of the stored bytes"
    );
}

//! kill -9 in the middle of a tus upload, then a restart: the bytes acknowledged before the
//! kill are kept, the PATCH that was cut keeps nothing it had not recorded, and the client
//! resumes from the offset the new process reports and completes the file byte-identical
//! (embedded: SQLite and local blobs; scaled: PostgreSQL and S3).

use std::time::Duration;

use bytes::Bytes;

use crate::support::{ADMIN_KEY, Scaled, Server, client, env_refs, temp_dir};

/// The upload: 6 MB, sent as a 2 MB PATCH, a PATCH cut by the kill, and the rest.
const SIZE: usize = 6_000_000;
const FIRST: usize = 2_000_000;

fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761) as u8)
        .collect()
}

async fn head_offset(http: &reqwest::Client, url: &str) -> reqwest::Response {
    http.head(url)
        .bearer_auth(ADMIN_KEY)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .expect("HEAD answers")
}

async fn patch(
    http: &reqwest::Client,
    url: &str,
    offset: usize,
    body: reqwest::Body,
) -> reqwest::Result<reqwest::Response> {
    http.patch(url)
        .bearer_auth(ADMIN_KEY)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", offset.to_string())
        .body(body)
        .send()
        .await
}

async fn kill_mid_upload_then_resume(env: &[(&str, &str)]) {
    let dir = temp_dir();
    let data = pattern(SIZE);
    let mut server = Server::start(dir.path(), &[], env);
    let http = client();
    let created = http
        .post(server.url("/api/v1/files/tus/"))
        .bearer_auth(ADMIN_KEY)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", SIZE.to_string())
        .send()
        .await
        .expect("the server answers");
    assert_eq!(
        created.status(),
        201,
        "{}",
        created.text().await.unwrap_or_default()
    );
    let location = created.headers()["location"]
        .to_str()
        .expect("the server answers")
        .to_owned();
    let r = patch(
        &http,
        &server.url(&location),
        0,
        Bytes::copy_from_slice(&data[..FIRST]).into(),
    )
    .await
    .expect("the server answers");
    assert_eq!(r.status(), 204);
    // A PATCH whose body arrives slowly: 1 MB, then nothing until the process is killed.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let url = server.url(&location);
    let cut = tokio::spawn({
        let http = http.clone();
        async move { patch(&http, &url, FIRST, body).await }
    });
    tx.send(Ok(Bytes::copy_from_slice(&data[FIRST..FIRST + 1_000_000])))
        .await
        .expect("the server answers");
    // Let the server take the bytes in (it writes them as they come), then kill it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill9();
    let outcome = cut.await.expect("the server answers");
    assert!(
        outcome.is_err() || !outcome.expect("the server answers").status().is_success(),
        "the cut PATCH did not succeed"
    );
    drop(tx);

    let server = Server::start(dir.path(), &[], env);
    let url = server.url(&location);
    let r = head_offset(&http, &url).await;
    assert_eq!(r.status(), 200);
    let offset: usize = r.headers()["upload-offset"]
        .to_str()
        .expect("the server answers")
        .parse()
        .expect("the server answers");
    assert_eq!(
        offset, FIRST,
        "the acknowledged bytes are kept and the cut PATCH recorded nothing"
    );
    // The killed process held the PATCH's lease: the client retries on 423 until it lapses
    // (lock_lease is 3 s here), as tus clients do.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // A 423 is answered before the body is read, and the connection closes under the
        // rest of the body: the client sees the answer or a broken pipe; both mean retry.
        let sent = patch(
            &http,
            &url,
            offset,
            Bytes::copy_from_slice(&data[offset..]).into(),
        )
        .await;
        let Ok(r) = sent else {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the resume never got through"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        match r.status().as_u16() {
            204 => break,
            423 if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            s => panic!(
                "resume answered {s}: {}",
                r.text().await.unwrap_or_default()
            ),
        }
    }
    let got = http
        .get(&url)
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(got.status(), 200);
    let etag = got.headers()["etag"]
        .to_str()
        .expect("the server answers")
        .to_owned();
    let body = got.bytes().await.expect("the server answers");
    assert!(
        body.as_ref() == data.as_slice(),
        "the resumed file is byte-identical"
    );
    assert_eq!(
        etag,
        format!("\"{}\"", blake3::hash(&data).to_hex()),
        "its digest was computed from the stored bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_upload_resumes_after_kill_9() {
    kill_mid_upload_then_resume(&[
        ("PRAXIS_ADMIN_KEY", ADMIN_KEY),
        ("PRAXIS_FILES_LOCK_LEASE", "3s"),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_upload_resumes_after_kill_9() {
    let scaled = Scaled::new().await;
    praxis_testkit::services::s3_check().await;
    let mut env = scaled.env();
    env.push((
        "PRAXIS_BLOBS_URL",
        praxis_testkit::services::s3_test_url(&scaled.prefix, None),
    ));
    env.push(("PRAXIS_FILES_LOCK_LEASE", "3s".to_owned()));
    kill_mid_upload_then_resume(&env_refs(&env)).await;
}

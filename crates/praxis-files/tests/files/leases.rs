//! The upload lease: a deferred length is set only under it, a completion runs under it (an
//! abandoned one is finished by the sweeper once it expires, on the database's clock), a
//! concatenation needs no more quota than its bytes, and a file the scanner cannot decide
//! does not hold up the files behind it.

use std::time::Duration;

use bytes::Bytes;
use praxis_files::FilesSettings;
use praxis_testkit::Kind;

use crate::support::{Harness, metadata, pattern};

fn id_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

/// Marks upload `id` as leased by another request for the next hour.
async fn lease_elsewhere(h: &Harness, id: &str) {
    let until = praxis_infra::sql::now_ms() + 3_600_000;
    h.sql(&format!(
        "UPDATE files_uploads SET lock_owner = 'another-request', lock_until = {until} WHERE id = '{id}'"
    ))
    .await;
}

pub async fn a_deferred_length_is_set_only_under_the_lease(kind: Kind) {
    let h = Harness::start(kind).await;
    let r = h.create("ann", &[("upload-defer-length", "1")]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let url = r.header("location").unwrap().to_owned();
    lease_elsewhere(&h, id_of(&url)).await;
    // Another request holds the upload: this PATCH's length is not taken either.
    let r = h
        .patch(
            "ann",
            &url,
            0,
            Bytes::from_static(b"0123456789"),
            &[("upload-length", "100")],
        )
        .await;
    assert_eq!(
        r.problem(423)["type"],
        "https://praxis.dev/problems/upload-locked"
    );
    let head = h.head("ann", &url).await;
    assert_eq!(head.header("upload-defer-length"), Some("1"));
    assert_eq!(head.header("upload-length"), None);
    assert_eq!(
        h.files.usage("ann").await.unwrap().bytes,
        0,
        "nothing reserved"
    );
    // Once the lease is free, the same PATCH sets the length and appends.
    h.sql(&format!(
        "UPDATE files_uploads SET lock_owner = NULL, lock_until = 0 WHERE id = '{}'",
        id_of(&url)
    ))
    .await;
    let r = h
        .patch(
            "ann",
            &url,
            0,
            Bytes::from_static(b"0123456789"),
            &[("upload-length", "100")],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let head = h.head("ann", &url).await;
    assert_eq!(head.header("upload-length"), Some("100"));
    assert_eq!(head.header("upload-offset"), Some("10"));
    assert_eq!(h.files.usage("ann").await.unwrap().bytes, 100);
}

pub async fn an_abandoned_completion_is_finished_once_its_lease_expires(kind: Kind) {
    let h = Harness::start(kind).await;
    let data = pattern(30_000, 21);
    let url = h.partial_upload("ann", &data).await;
    let id = id_of(&url).to_owned();
    // As if the request that sent the last byte died while completing: full, not complete,
    // its lease still running.
    h.sql(&format!(
        "UPDATE files_uploads SET completed_at = NULL WHERE id = '{id}'"
    ))
    .await;
    lease_elsewhere(&h, &id).await;
    let swept = h.files.sweep().await.unwrap();
    assert_eq!(
        swept.completed, 0,
        "a completion under a live lease is its holder's"
    );
    // An empty PATCH or a HEAD leaves it to the holder too.
    let r = h.patch("ann", &url, 30_000, Bytes::new(), &[]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let pending = h
        .scalar(&format!(
            "SELECT COUNT(*) FROM files_uploads WHERE id = '{id}' AND completed_at IS NULL"
        ))
        .await;
    assert_eq!(pending, 1);
    // The holder is gone: its lease expires (on the database's clock) and the sweeper
    // finishes the completion.
    h.sql(&format!(
        "UPDATE files_uploads SET lock_until = 1 WHERE id = '{id}'"
    ))
    .await;
    let swept = h.files.sweep().await.unwrap();
    assert_eq!(swept.completed, 1);
    let done = h
        .scalar(&format!(
            "SELECT COUNT(*) FROM files_uploads WHERE id = '{id}' AND completed_at IS NOT NULL AND lock_owner IS NULL"
        ))
        .await;
    assert_eq!(done, 1);
    // The sealed partial concatenates into a file with the same bytes.
    let r = h
        .create("ann", &[("upload-concat", &format!("final;{url}"))])
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let whole = r.header("location").unwrap().to_owned();
    assert_eq!(
        h.get(Some("ann"), &whole, &[]).await.body.as_ref(),
        data.as_slice()
    );
}

pub async fn a_completion_needs_the_lease_token(kind: Kind) {
    let h = Harness::start(kind).await;
    let url = h.partial_upload("ann", b"sealed once").await;
    let id = id_of(&url).to_owned();
    let upload = h.files.store().upload(&id).await.unwrap().unwrap();
    h.sql(&format!(
        "UPDATE files_uploads SET completed_at = NULL WHERE id = '{id}'"
    ))
    .await;
    lease_elsewhere(&h, &id).await;
    let done = h
        .files
        .store()
        .complete(&upload, None, praxis_infra::sql::now_ms(), "a-stale-token")
        .await
        .unwrap();
    assert_eq!(done, praxis_files::store::Completion::AlreadyDone);
    let pending = h
        .scalar(&format!(
            "SELECT COUNT(*) FROM files_uploads WHERE id = '{id}' AND completed_at IS NULL \
             AND lock_owner = 'another-request'"
        ))
        .await;
    assert_eq!(
        pending, 1,
        "a stale token completes nothing and takes no lease"
    );
}

pub async fn a_concatenation_needs_no_more_quota_than_its_bytes(kind: Kind) {
    let settings = FilesSettings {
        quota_bytes: 100_000,
        ..FilesSettings::default()
    };
    let h = Harness::with(kind, settings).await;
    let (a, b) = (pattern(60_000, 22), pattern(30_000, 23));
    let pa = h.partial_upload("ann", &a).await;
    let pb = h.partial_upload("ann", &b).await;
    assert_eq!(h.files.usage("ann").await.unwrap().bytes, 90_000);
    // 90,000 bytes of partials fit a 100,000-byte quota; so does their concatenation.
    let meta = metadata(&[("filename", "joined.bin")]);
    let r = h
        .create(
            "ann",
            &[
                ("upload-concat", &format!("final;{pa} {pb}")),
                ("upload-metadata", &meta),
            ],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let url = r.header("location").unwrap().to_owned();
    let usage = h.files.usage("ann").await.unwrap();
    assert_eq!(
        (usage.bytes, usage.files),
        (90_000, 1),
        "the partials' bytes moved to the file"
    );
    assert_eq!(
        h.get(Some("ann"), &url, &[]).await.body.as_ref(),
        [a.as_slice(), b.as_slice()].concat().as_slice()
    );
    let r = h
        .call(
            Some("ann"),
            axum::http::Method::DELETE,
            &format!("/api/v1/files/{}", id_of(&url)),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let usage = h.files.usage("ann").await.unwrap();
    assert_eq!((usage.bytes, usage.files), (0, 0));
}

pub async fn a_file_the_scanner_cannot_decide_does_not_hold_up_the_queue(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("scan.sh");
    // Exit 2 (clamdscan's "error") for files marked UNREADABLE: no verdict.
    std::fs::write(
        &script,
        "#!/bin/sh\nif grep -q UNREADABLE \"$1\"; then exit 2; fi\nexit 0\n",
    )
    .unwrap();
    let settings = FilesSettings {
        scan_command: Some(format!("sh {}", script.display())),
        ..FilesSettings::default()
    };
    let h = Harness::with(kind, settings).await;
    // More undecidable files than one pass takes (16), uploaded first (oldest).
    for n in 0..17 {
        h.upload("ann", "stuck.txt", format!("UNREADABLE {n}").as_bytes())
            .await;
    }
    let clean = h.upload("ann", "clean.txt", b"fine").await;
    praxis_testkit::eventually::eventually(
        Duration::from_secs(30),
        "the file behind 17 undecidable ones is scanned",
        || async { (h.file_meta("ann", &clean).await["status"] == "ready").then_some(()) },
    )
    .await;
    let retried = h
        .scalar("SELECT COUNT(*) FROM files_files WHERE status = 'pending' AND scan_retry_at > 0")
        .await;
    assert!(retried >= 16, "the undecided files are put off: {retried}");
}

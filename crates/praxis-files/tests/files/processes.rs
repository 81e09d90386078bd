//! Two processes on one backend (one database and one blob store): an upload that clients
//! PATCH through both of them is never corrupted, and resumes in the other process.

use bytes::Bytes;
use praxis_files::FilesSettings;
use praxis_testkit::Kind;

use crate::support::{Harness, pattern};

pub async fn two_processes_serve_one_upload(kind: Kind) {
    let (a, b) = kind.services().pair().await;
    let a = Harness::on(a, FilesSettings::default()).await;
    let b = Harness::on(b, FilesSettings::default()).await;
    // 12 MB in 3 MB chunks: on S3 the parts (8 MiB) fill across requests and processes.
    let data = pattern(12_000_000, 40);
    let url = a.new_upload("ann", data.len(), "both.bin").await;
    let mut offset = 0usize;
    for (i, chunk) in data.chunks(3_000_000).enumerate() {
        let through = if i % 2 == 0 { &a } else { &b };
        // Both processes see the same offset.
        let other = if i % 2 == 0 { &b } else { &a };
        assert_eq!(
            other.head("ann", &url).await.header("upload-offset"),
            Some(offset.to_string().as_str())
        );
        let r = through
            .patch(
                "ann",
                &url,
                offset as u64,
                Bytes::copy_from_slice(chunk),
                &[],
            )
            .await;
        assert_eq!(r.status, 204, "chunk {i}: {}", r.text());
        offset += chunk.len();
    }
    for h in [&a, &b] {
        let got = h.get(Some("ann"), &url, &[]).await;
        assert_eq!(got.status, 200);
        assert!(
            got.body.as_ref() == data.as_slice(),
            "the bytes read through either process are the bytes sent"
        );
    }
    let id = url.rsplit('/').next().unwrap();
    assert_eq!(
        b.files.file_of("ann", id).await.unwrap().blake3,
        blake3::hash(&data).to_hex().to_string()
    );
    // Racing PATCHes through the two processes: one wins, the other is refused, nothing is
    // mixed.
    let url = a.new_upload("ann", 2_000_000, "race.bin").await;
    let (x, y) = (pattern(1_000_000, 41), pattern(1_000_000, 42));
    let (r1, r2) = tokio::join!(
        a.patch("ann", &url, 0, Bytes::copy_from_slice(&x), &[]),
        b.patch("ann", &url, 0, Bytes::copy_from_slice(&y), &[])
    );
    let statuses = [r1.status.as_u16(), r2.status.as_u16()];
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    let winner = if r1.status == 204 { &x } else { &y };
    let rest = pattern(1_000_000, 43);
    let r = b
        .patch("ann", &url, 1_000_000, Bytes::copy_from_slice(&rest), &[])
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let got = a.get(Some("ann"), &url, &[]).await;
    assert!(
        &got.body[..1_000_000] == winner.as_slice() && &got.body[1_000_000..] == rest.as_slice()
    );
}

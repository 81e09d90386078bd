//! Blob store port: the same cases on a local folder and on the S3 test bucket: whole objects
//! (put, size, ranged reads, copy, delete), resumable writes (appends of every size, across
//! parts, interrupted bodies, unrecorded appends, another process resuming from the
//! serialized state, seal, zero-length seal, discard), whole writes sealed by their append,
//! and keys that are refused.
//!
//! S3 cases never skip: without the bucket of `PRAXIS_TEST_S3_URL` (and the `AWS_*`
//! credentials) they fail and say how to start the local server. Each case works under a key
//! prefix of its own, with S3's smallest part size (5 MiB), so about 12 MiB cross two part
//! boundaries.

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use futures::StreamExt;
use praxis_infra::blobs::{Appending, BlobAppendError, Blobs, ByteStream};
use praxis_infra::tls::TrustPolicy;
use tempfile::TempDir;

use crate::services;

/// The part size of the S3 cases (S3's smallest); the local store has no parts.
pub const PART: usize = 5 * 1024 * 1024;

/// Runs the blob port's cases on stores made by `make` (a fresh one per case).
pub async fn suite(make: impl AsyncFn() -> BlobsUnderTest) -> anyhow::Result<()> {
    macro_rules! run {
        ($($case:ident),+ $(,)?) => {$(
            let t = make().await;
            eprintln!("conformance case {} on {}", stringify!($case), t.name);
            $case(&t)
                .await
                .with_context(|| format!("conformance case {} on {}", stringify!($case), t.name))?;
        )+};
    }
    run!(
        put_size_read_copy_delete,
        large_put_reads_back,
        appends_of_every_size_seal_into_one_object,
        an_interrupted_body_keeps_what_arrived,
        an_unrecorded_append_is_ignored,
        another_process_resumes_from_the_serialized_state,
        seal_is_idempotent,
        zero_length_objects,
        discard_drops_the_object_in_progress,
        a_whole_write_is_sealed_by_its_append,
        a_whole_write_that_falls_short_is_a_plain_append,
        bad_keys_are_refused,
    );
    if make().await.name == "s3" {
        // A local folder cannot hold both `a` and `a/b`; a bucket can.
        run!(nested_keys_keep_their_own_writes);
    }
    Ok(())
}

/// A blob store under test, and how to open it again as another process would.
pub struct BlobsUnderTest {
    /// `"local"` or `"s3"`.
    pub name: &'static str,
    /// The store.
    pub blobs: Blobs,
    url: String,
    dir: Option<TempDir>,
}

impl BlobsUnderTest {
    /// A local store in a fresh temporary folder.
    pub fn local() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("praxis-blobs-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let url = format!("file://{}", dir.path().display());
        let blobs = Blobs::local(dir.path()).unwrap_or_else(|e| panic!("local blobs: {e}"));
        Self {
            name: "local",
            blobs,
            url,
            dir: Some(dir),
        }
    }

    /// A store on the S3 test bucket under a prefix of its own, in 5 MiB parts.
    pub async fn s3() -> Self {
        services::s3_check().await;
        let url = services::s3_test_url(&services::unique_prefix(), Some(PART as u64));
        let blobs = Blobs::open(&url, &TrustPolicy::system())
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        Self {
            name: "s3",
            blobs,
            url,
            dir: None,
        }
    }

    /// The same store opened anew, as another process opens it from the same URL.
    pub async fn another_process(&self) -> anyhow::Result<Blobs> {
        Ok(Blobs::open(&self.url, &TrustPolicy::system()).await?)
    }
}

/// `len` bytes of a pattern that differs with `seed` and with the position.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// A body of `data` in chunks of `chunk` bytes.
pub fn body(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

/// A body of `data` (in 64 KiB chunks) that then fails with `kind`.
pub fn failing_body(data: &[u8], kind: std::io::ErrorKind) -> ByteStream {
    let err = std::io::Error::new(kind, "the client went away");
    body(data, 64 * 1024)
        .chain(futures::stream::iter([Err(err)]))
        .boxed()
}

/// Reads `range` of `key` whole.
pub async fn read_all(
    blobs: &Blobs,
    key: &str,
    range: std::ops::Range<u64>,
) -> anyhow::Result<Vec<u8>> {
    let mut stream = blobs.read(key, range).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Asserts equality of two byte strings without printing megabytes.
fn same(got: &[u8], want: &[u8], what: &str) -> anyhow::Result<()> {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        bail!(
            "{what}: got {} bytes, want {} (first difference at {at:?})",
            got.len(),
            want.len()
        );
    }
    Ok(())
}

/// Appends `data` from `state` and expects the whole body to be stored; returns the new state
/// after a JSON round trip, as a caller records it.
async fn append_ok(
    blobs: &Blobs,
    key: &str,
    state: &Appending,
    data: &[u8],
    chunk: usize,
) -> anyhow::Result<Appending> {
    let appended = blobs.append(key, state, body(data, chunk)).await;
    if let Some(e) = appended.error {
        bail!("append of {} bytes to {key} failed: {e}", data.len());
    }
    ensure!(
        appended.state.len == state.len + data.len() as u64,
        "state.len {} after appending {} bytes to {}",
        appended.state.len,
        data.len(),
        state.len
    );
    record(&appended.state)
}

/// The state as the caller's database gives it back.
fn record(state: &Appending) -> anyhow::Result<Appending> {
    let text = serde_json::to_string(state)?;
    Ok(serde_json::from_str(&text)?)
}

async fn put_size_read_copy_delete(t: &BlobsUnderTest) -> anyhow::Result<()> {
    let b = &t.blobs;
    let data = pattern(100_000, 1);
    ensure!(b.size("obj/a.bin").await?.is_none());
    ensure!(b.put("obj/a.bin", body(&data, 7_000)).await? == 100_000);
    ensure!(b.size("obj/a.bin").await? == Some(100_000));
    same(&read_all(b, "obj/a.bin", 0..100_000).await?, &data, "whole")?;
    same(
        &read_all(b, "obj/a.bin", 3..10).await?,
        &data[3..10],
        "3..10",
    )?;
    same(
        &read_all(b, "obj/a.bin", 99_999..100_000).await?,
        &data[99_999..],
        "last byte",
    )?;
    ensure!(read_all(b, "obj/a.bin", 500..500).await?.is_empty());
    ensure!(read_all(b, "obj/a.bin", 100_000..100_000).await?.is_empty());
    for past in [99_000..100_001, 100_000..100_001, 200_000..200_010] {
        let err = b
            .read("obj/a.bin", past.clone())
            .await
            .err()
            .with_context(|| format!("{past:?} was read"))?;
        ensure!(
            err.to_string().contains("100000 bytes"),
            "the error names the size: {err}"
        );
    }
    ensure!(b.read("obj/missing", 0..1).await.is_err());

    // Overwrite, copy, delete.
    let other = pattern(5_000, 2);
    b.put("obj/a.bin", body(&other, 1_000)).await?;
    same(
        &read_all(b, "obj/a.bin", 0..5_000).await?,
        &other,
        "overwritten",
    )?;
    b.copy("obj/a.bin", "copies/a.bin").await?;
    same(
        &read_all(b, "copies/a.bin", 0..5_000).await?,
        &other,
        "copy",
    )?;
    ensure!(b.copy("obj/missing", "copies/x").await.is_err());
    b.delete("obj/a.bin").await?;
    ensure!(b.size("obj/a.bin").await?.is_none());
    b.delete("obj/a.bin").await?;
    ensure!(
        b.size("copies/a.bin").await? == Some(5_000),
        "the copy stays"
    );

    // An empty object, and a body that fails stores nothing.
    ensure!(b.put("obj/empty", futures::stream::empty().boxed()).await? == 0);
    ensure!(b.size("obj/empty").await? == Some(0));
    let failed = b
        .put(
            "obj/failed",
            failing_body(&data, std::io::ErrorKind::ConnectionReset),
        )
        .await;
    ensure!(failed.is_err(), "a failing body is an error");
    ensure!(b.size("obj/failed").await?.is_none(), "nothing was stored");
    Ok(())
}

/// A put larger than two parts (S3: a multipart upload) reads back, also in ranges across
/// part boundaries.
async fn large_put_reads_back(t: &BlobsUnderTest) -> anyhow::Result<()> {
    let b = &t.blobs;
    let len = 2 * PART + 12_345;
    let data = pattern(len, 3);
    ensure!(b.put("big/one", body(&data, 256 * 1024)).await? == len as u64);
    ensure!(b.size("big/one").await? == Some(len as u64));
    same(
        &read_all(b, "big/one", 0..len as u64).await?,
        &data,
        "whole",
    )?;
    let (from, to) = (PART - 10, PART + 10);
    same(
        &read_all(b, "big/one", from as u64..to as u64).await?,
        &data[from..to],
        "across the first part boundary",
    )?;
    b.delete("big/one").await?;
    Ok(())
}

async fn appends_of_every_size_seal_into_one_object(t: &BlobsUnderTest) -> anyhow::Result<()> {
    let b = &t.blobs;
    let key = "uploads/every-size";
    let data = pattern(12 * 1024 * 1024 + 12, 4);
    // Sizes: part-crossing runs and tiny appends, in chunks of several sizes.
    let runs: [(usize, usize); 7] = [
        (3 * 1024 * 1024, 64 * 1024),
        (1, 1),
        (7 * 1024 * 1024, 1_000_003),
        (10, 3),
        (0, 1),
        (1, 1),
        (2 * 1024 * 1024, 100 * 1024),
    ];
    let mut state = Appending::default();
    let mut at = 0;
    for (len, chunk) in runs {
        let end = (at + len).min(data.len());
        state = append_ok(b, key, &state, &data[at..end], chunk).await?;
        at = end;
        ensure!(
            b.size(key).await?.is_none(),
            "an object in progress is not an object"
        );
    }
    state = append_ok(b, key, &state, &data[at..], 4096).await?;
    ensure!(state.len == data.len() as u64);
    b.seal(key, &state).await?;
    ensure!(b.size(key).await? == Some(data.len() as u64));
    same(
        &read_all(b, key, 0..data.len() as u64).await?,
        &data,
        "sealed",
    )?;
    b.delete(key).await?;
    Ok(())
}

async fn an_interrupted_body_keeps_what_arrived(t: &BlobsUnderTest) -> anyhow::Result<()> {
    let b = &t.blobs;
    let key = "uploads/interrupted";
    let data = pattern(PART + 1024 * 1024 + 7, 5);
    // 100 KiB arrive, then the client goes away.
    let first = 100 * 1024;
    let appended = b
        .append(
            key,
            &Appending::default(),
            failing_body(&data[..first], std::io::ErrorKind::ConnectionReset),
        )
        .await;
    match &appended.error {
        Some(BlobAppendError::Body(e)) => ensure!(
            e.kind() == std::io::ErrorKind::ConnectionReset && e.to_string().contains("went away"),
            "the body's error is kept: {e:?}"
        ),
        other => bail!("expected a body error, got {other:?}"),
    }
    ensure!(appended.state.len == first as u64, "{:?}", appended.state);
    let state = record(&appended.state)?;

    // A body cut past a part boundary keeps its parts and its tail.
    let second = PART + 512 * 1024;
    let appended = b
        .append(
            key,
            &state,
            failing_body(&data[first..first + second], std::io::ErrorKind::Other),
        )
        .await;
    ensure!(
        matches!(appended.error, Some(BlobAppendError::Body(_))),
        "{:?}",
        appended.error
    );
    ensure!(appended.state.len == (first + second) as u64);
    let state = record(&appended.state)?;

    let state = append_ok(b, key, &state, &data[first + second..], 8192).await?;
    b.seal(key, &state).await?;
    same(
        &read_all(b, key, 0..data.len() as u64).await?,
        &data,
        "sealed",
    )?;
    b.delete(key).await?;
    Ok(())
}

async fn an_unrecorded_append_is_ignored(t: &BlobsUnderTest) -> anyhow::Result<()> {
    let b = &t.blobs;
    // A small object: the unrecorded append crosses a part (S3: uploads a part of its own).
    let key = "uploads/unrecorded-small";
    let recorded = append_ok(b, key, &Appending::default(), b"hello ", 3).await?;
    let lost = b
        .append(key, &recorded, body(&pattern(PART + 10, 6), 256 * 1024))
        .await;
    ensure!(lost.error.is_none() && lost.state.len == (6 + PART + 10) as u64);
    let state = append_ok(b, key, &recorded, b"world", 2).await?;
    b.seal(key, &state).await?;
    same(
        &read_all(b, key, 0..11).await?,
        b"hello world",
        "small object",
    )?;
    ensure!(b.size(key).await? == Some(11));

    // A multipart object: the unrecorded append uploads the next part and a new tail, the
    // recorded state goes on with a different next part.
    let key = "uploads/unrecorded-large";
    let data = pattern(PART + 1024 * 1024, 7);
    let recorded = append_ok(b, key, &Appending::default(), &data, 512 * 1024).await?;
    let lost = b
        .append(key, &recorded, body(&pattern(PART, 8), 512 * 1024))
        .await;
    ensure!(lost.error.is_none());
    let tail = pattern(300_000, 9);
    let state = append_ok(b, key, &recorded, &tail, 10_000).await?;
    b.seal(key, &state).await?;
    let mut want = data.clone();
    want.extend_from_slice(&tail);
    same(
        &read_all(b, key, 0..want.len() as u64).await?,
        &want,
        "multipart object",
    )?;
    b.delete(key).await?;
    Ok(())
}

async fn another_process_resumes_from_the_serialized_state(
    t: &BlobsUnderTest,
) -> anyhow::Result<()> {
    let key = "uploads/two-processes";
    let data = pattern(PART + 2 * 1024 * 1024 + 3, 10);
    let split = PART + 1024 * 1024;
    let first = t
        .blobs
        .append(key, &Appending::default(), body(&data[..split], 128 * 1024))
        .await;
    ensure!(first.error.is_none(), "{:?}", first.error);
    let text = serde_json::to_string(&first.state)?;

    let other = t.another_process().await?;
    let state: Appending = serde_json::from_str(&text)?;
    let state = append_ok(&other, key, &state, &data[split..], 100_000).await?;
    other.seal(key, &state).await?;
    same(
        &read_all(&t.blobs, key, 0..data.len() as u64).await?,
        &data,
        "read by the first process",
    )?;
    t.blobs.delete(key).await?;
    Ok(())
}

async fn seal_is_idempotent(t: &BlobsUnderTest) -> anyhow::Result<()> {
    let b = &t.blobs;
    for (key, len) in [
        ("uploads/idem-small", 1000),
        ("uploads/idem-large", PART + 1),
    ] {
        let data = pattern(len, 11);
        let state = append_ok(b, key, &Appending::default(), &data, 65_536).await?;
        b.seal(key, &state).await?;
        // The caller crashed before recording the seal: it seals again.
        b.seal(key, &state)
            .await
            .with_context(|| format!("second seal of {key}"))?;
        let other = t.another_process().await?;
        other.seal(key, &record(&state)?).await?;
        same(&read_all(b, key, 0..len as u64).await?, &data, key)?;
        // A seal with another length is not a retry.
        let mut wrong = state.clone();
        wrong.len += 1;
        ensure!(
            b.seal(key, &wrong).await.is_err(),
            "a seal of {key} with a wrong length was accepted"
        );
        b.delete(key).await?;
    }
    Ok(())
}

async fn zero_length_objects(t: &BlobsUnderTest) -> anyhow::Result<()> {
    let b = &t.blobs;
    b.seal("uploads/zero", &Appending::default()).await?;
    ensure!(b.size("uploads/zero").await? == Some(0));
    ensure!(read_all(b, "uploads/zero", 0..0).await?.is_empty());
    b.seal("uploads/zero", &Appending::default()).await?;

    let state = append_ok(b, "uploads/zero-appended", &Appending::default(), b"", 1).await?;
    ensure!(state.len == 0);
    b.seal("uploads/zero-appended", &state).await?;
    ensure!(b.size("uploads/zero-appended").await? == Some(0));
    Ok(())
}

async fn discard_drops_the_object_in_progress(t: &BlobsUnderTest) -> anyhow::Result<()> {
    let b = &t.blobs;
    let key = "uploads/discarded";
    let state = append_ok(
        b,
        key,
        &Appending::default(),
        &pattern(PART + 100, 12),
        1 << 20,
    )
    .await?;
    b.discard(key, &state).await?;
    ensure!(b.size(key).await?.is_none());
    ensure!(
        b.seal(key, &state).await.is_err(),
        "a discarded write was sealed"
    );
    let after = b.append(key, &state, body(b"more", 2)).await;
    ensure!(
        matches!(after.error, Some(BlobAppendError::Store(_))),
        "an append after discard: {:?}",
        after.error
    );
    ensure!(after.state == state, "a failed append keeps the state");
    b.discard(key, &state).await?;
    b.discard("uploads/never-started", &Appending::default())
        .await?;

    // A key can be written again from the start after a discard.
    let state = append_ok(b, key, &Appending::default(), b"again", 5).await?;
    b.seal(key, &state).await?;
    same(&read_all(b, key, 0..5).await?, b"again", "rewritten")?;
    b.delete(key).await?;
    Ok(())
}

async fn a_whole_write_is_sealed_by_its_append(t: &BlobsUnderTest) -> anyhow::Result<()> {
    let b = &t.blobs;
    // A new write whose body is exactly the object: sealed by the append, readable at once.
    let key = "uploads/whole";
    let data = pattern(1024 * 1024 + 3, 20);
    let len = data.len() as u64;
    let appended = b
        .append_whole(key, &Appending::default(), body(&data, 64 * 1024), len)
        .await;
    ensure!(appended.error.is_none(), "{:?}", appended.error);
    ensure!(appended.sealed, "a whole write of {len} bytes is sealed");
    ensure!(appended.state.len == len, "{:?}", appended.state);
    ensure!(b.size(key).await? == Some(len));
    same(&read_all(b, key, 0..len).await?, &data, "whole write")?;

    // The caller never recorded it: the input state stays valid, and a new write from it,
    // sealed by its append or by a seal, replaces the object.
    let again = pattern(700_000, 21);
    let appended = b
        .append_whole(
            key,
            &Appending::default(),
            body(&again, 50_000),
            again.len() as u64,
        )
        .await;
    ensure!(appended.error.is_none(), "{:?}", appended.error);
    if !appended.sealed {
        b.seal(key, &record(&appended.state)?).await?;
    }
    ensure!(b.size(key).await? == Some(again.len() as u64));
    same(
        &read_all(b, key, 0..again.len() as u64).await?,
        &again,
        "the write that replaced an unrecorded one",
    )?;
    b.delete(key).await?;

    // Larger than a part: whole or not, the object reads back once sealed.
    let key = "uploads/whole-large";
    let data = pattern(PART + 4096, 22);
    let len = data.len() as u64;
    let appended = b
        .append_whole(key, &Appending::default(), body(&data, 256 * 1024), len)
        .await;
    ensure!(appended.error.is_none(), "{:?}", appended.error);
    ensure!(appended.state.len == len, "{:?}", appended.state);
    if !appended.sealed {
        b.seal(key, &record(&appended.state)?).await?;
    }
    same(&read_all(b, key, 0..len).await?, &data, "large whole write")?;
    b.delete(key).await?;
    Ok(())
}

async fn a_whole_write_that_falls_short_is_a_plain_append(
    t: &BlobsUnderTest,
) -> anyhow::Result<()> {
    let b = &t.blobs;
    let key = "uploads/whole-short";
    let data = pattern(300_000, 23);
    let len = data.len() as u64;
    // The body ends early: not sealed, what arrived is kept, and nothing is readable yet.
    let appended = b
        .append_whole(
            key,
            &Appending::default(),
            body(&data[..100_000], 10_000),
            len,
        )
        .await;
    ensure!(appended.error.is_none(), "{:?}", appended.error);
    ensure!(
        !appended.sealed,
        "a body shorter than its length seals nothing"
    );
    ensure!(appended.state.len == 100_000, "{:?}", appended.state);
    ensure!(
        b.size(key).await?.is_none(),
        "nothing is readable before the seal"
    );
    let state = record(&appended.state)?;

    // A resumed write is never sealed by its append, even when it completes the object.
    let appended = b
        .append_whole(key, &state, body(&data[100_000..], 10_000), len)
        .await;
    ensure!(appended.error.is_none(), "{:?}", appended.error);
    ensure!(
        !appended.sealed,
        "a resumed write is sealed by seal, not by its append"
    );
    ensure!(appended.state.len == len, "{:?}", appended.state);
    b.seal(key, &record(&appended.state)?).await?;
    same(
        &read_all(b, key, 0..len).await?,
        &data,
        "resumed whole write",
    )?;
    b.delete(key).await?;

    // A body that fails: not sealed, the bytes that arrived are kept.
    let key = "uploads/whole-failed";
    let appended = b
        .append_whole(
            key,
            &Appending::default(),
            failing_body(&data[..200_000], std::io::ErrorKind::ConnectionReset),
            len,
        )
        .await;
    ensure!(
        matches!(appended.error, Some(BlobAppendError::Body(_))),
        "{:?}",
        appended.error
    );
    ensure!(!appended.sealed);
    ensure!(appended.state.len == 200_000, "{:?}", appended.state);
    let state = append_ok(b, key, &record(&appended.state)?, &data[200_000..], 30_000).await?;
    b.seal(key, &state).await?;
    same(
        &read_all(b, key, 0..len).await?,
        &data,
        "whole write after a failed body",
    )?;
    b.delete(key).await?;
    Ok(())
}

async fn nested_keys_keep_their_own_writes(t: &BlobsUnderTest) -> anyhow::Result<()> {
    let b = &t.blobs;
    let outer = append_ok(b, "nest/a", &Appending::default(), b"outer-1 ", 3).await?;
    let inner = append_ok(b, "nest/a/b", &Appending::default(), b"inner-1 ", 3).await?;
    // Each append cleans up the tails of its own key, and of no other.
    let outer = append_ok(b, "nest/a", &outer, b"outer-2", 3).await?;
    let inner = append_ok(b, "nest/a/b", &inner, b"inner-2", 3).await?;
    b.seal("nest/a", &outer).await?;
    b.seal("nest/a/b", &inner).await?;
    same(
        &read_all(b, "nest/a", 0..15).await?,
        b"outer-1 outer-2",
        "nest/a",
    )?;
    same(
        &read_all(b, "nest/a/b", 0..15).await?,
        b"inner-1 inner-2",
        "nest/a/b",
    )?;
    Ok(())
}

async fn bad_keys_are_refused(t: &BlobsUnderTest) -> anyhow::Result<()> {
    let b = &t.blobs;
    let refused = |e: &dyn std::fmt::Display| e.to_string().contains("'/'-separated segments");
    for key in [
        "",
        "/etc/passwd",
        "../escape",
        "a/../../b",
        "a//b",
        "a/",
        ".partial/x",
        ".tail/x/1",
        "sp ace",
        "back\\slash",
    ] {
        let what = format!("key {key:?}");
        ensure!(
            b.size(key).await.is_err_and(|e| refused(&e)),
            "size of {what}"
        );
        ensure!(
            b.read(key, 0..1).await.err().is_some_and(|e| refused(&e)),
            "read of {what}"
        );
        ensure!(
            b.put(key, body(b"x", 1)).await.is_err_and(|e| refused(&e)),
            "put of {what}"
        );
        ensure!(
            b.delete(key).await.is_err_and(|e| refused(&e)),
            "delete of {what}"
        );
        ensure!(
            b.copy(key, "ok").await.is_err_and(|e| refused(&e)),
            "copy from {what}"
        );
        ensure!(
            b.copy("ok", key).await.is_err_and(|e| refused(&e)),
            "copy to {what}"
        );
        let appended = b.append(key, &Appending::default(), body(b"x", 1)).await;
        ensure!(
            matches!(&appended.error, Some(BlobAppendError::Store(e)) if refused(e)),
            "append to {what}: {:?}",
            appended.error
        );
        ensure!(
            b.seal(key, &Appending::default())
                .await
                .is_err_and(|e| refused(&e)),
            "seal of {what}"
        );
        ensure!(
            b.discard(key, &Appending::default())
                .await
                .is_err_and(|e| refused(&e)),
            "discard of {what}"
        );
    }
    if let Some(dir) = &t.dir
        && let Some(parent) = dir.path().parent()
    {
        ensure!(
            !parent.join("escape").exists(),
            "a key escaped the store's folder"
        );
    }
    Ok(())
}

//! The blob store: whole objects and resumable writes, on a local folder (embedded) or an
//! S3-compatible bucket (scaled). Systems see one type, [`Blobs`], and never branch on which.
//!
//! **Keys** are relative names of `/`-separated segments of ASCII letters, digits, `.`, `_`
//! and `-`; a segment may not be empty or start with `.` (so no `.`, `..` or hidden names: the
//! store keeps its own working data under names that start with `.`). Anything else is
//! refused before any I/O, so a key can never escape the store's folder or prefix. On a local
//! folder a key cannot also be a "folder" of other keys (`a` and `a/b`), as on a file system.
//!
//! **Whole objects**: [`Blobs::put`] streams a body into a new object (local: a temporary file,
//! fsync, rename; S3: one PUT, or a multipart upload in parts of `part_size` when it is larger),
//! [`Blobs::read`] streams a byte range back (S3: a ranged GET), [`Blobs::copy`] copies inside
//! the store (S3: server-side), [`Blobs::delete`] and [`Blobs::size`].
//!
//! **Resumable writes** ([`Blobs::append`], [`Blobs::seal`], [`Blobs::discard`]): an object is
//! written in several appends, across requests and processes, and becomes readable when it is
//! sealed. The caller keeps the durable state of the write, an [`Appending`], in its own
//! database, and hands the recorded one back to the next call. Nothing an append writes
//! matters until the caller records the state it returned: an append from the recorded state
//! writes over whatever an earlier, unrecorded append left behind.
//!
//! - Local: the object-in-progress is a file under `.partial/`. An append opens it, truncates
//!   it to the recorded length, writes after it through a buffered writer, and fsyncs before
//!   it returns; seal truncates to the recorded length, fsyncs and renames it into place.
//! - S3: an append reads the recorded *tail* (the fewer than `part_size` bytes that are not in
//!   a part yet, an object `.tail/<key>/<generation>`), fills parts of `part_size` with it and
//!   the body and uploads them as parts of a multipart upload (created by the first append that
//!   fills a part; part `i` of the state is part number `i + 1`), and writes what is left as a
//!   tail of a new, random generation. Seal uploads the tail as the last part and completes
//!   the upload (an object smaller than one part is a server-side copy of its tail). The state
//!   names the upload id, the parts' ETags and the tail. Each append first deletes the tails
//!   that the recorded state does not name (older generations, and those of unrecorded
//!   appends); seal and discard delete them all. So at most two tails exist per object, and
//!   appends to one key must not run concurrently: the caller serializes them (a tus server
//!   locks an upload while it is patched). A multipart upload created by an append whose state
//!   was never recorded is left incomplete; give the bucket a lifecycle rule that aborts
//!   incomplete multipart uploads after a day.
//!
//! [`Blobs::append_whole`] is the append of an object written in one go (a small upload in one
//! request): a new write that brings exactly the object's length is sealed by the same call
//! (local: renamed into place; S3: one conditional PUT when it fits in one part), and the
//! recorded state it started from stays valid if the caller never records it.
//!
//! Memory is bounded: a local write goes through a fixed buffer; an S3 write holds at most two
//! parts (one uploading while the body fills the next, so the body never waits for S3 between
//! parts) plus the chunk being received.
//!
//! **S3 configuration**: `s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION&part_size=BYTES`.
//! Credentials come only from the standard `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...), never
//! from the URL. HTTPS is checked against the process's [trust policy](crate::tls); an `http://`
//! endpoint is allowed because it was asked for. object_store retries transient failures
//! (connection errors, 5xx, throttling) before a call fails.

mod key;
mod local;
mod s3;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::InfraError;
use crate::tls::TrustPolicy;

pub use key::check_key;

/// A stream of bytes: a body to store, or the bytes read back. An `Err` item ends the stream.
pub type ByteStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, std::io::Error>>;

/// The setting that names the blob store, as error messages name it.
pub const URL_KEY: &str = "blobs_url";

/// The blob store: a local folder (embedded) or an S3-compatible bucket (scaled). Cheap to
/// clone. See the [module docs](self) for keys, layout and the resumable-write protocol.
#[derive(Clone)]
pub struct Blobs {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Local(Arc<local::Local>),
    S3(Arc<s3::S3>),
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `describe` never holds credentials: they come from the environment alone.
        f.debug_struct("Blobs")
            .field("kind", &self.kind())
            .field("url", &self.describe())
            .finish()
    }
}

/// The durable state of an object being written in several appends (see the
/// [module docs](self)). The caller stores it (serde, e.g. JSON text in its own database row)
/// and passes the recorded one back; `Appending::default()` starts a new object. Its fields
/// other than `len` belong to the store; a state is only valid for the store kind and key it
/// was made for.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Appending {
    /// Bytes durably written so far.
    pub len: u64,
    /// S3: the multipart upload, once an append filled a part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upload: Option<String>,
    /// S3: the ETags (object_store `PartId` content ids) of the parts uploaded, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parts: Vec<String>,
    /// S3: the generation of the tail object, when there is a tail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tail: Option<String>,
    /// S3: the tail's length (the bytes after the parts).
    #[serde(default, skip_serializing_if = "is_zero")]
    tail_len: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Appending {
    /// Whether the state holds anything only an S3 store makes.
    fn has_s3_fields(&self) -> bool {
        self.upload.is_some() || !self.parts.is_empty() || self.tail.is_some() || self.tail_len > 0
    }
}

/// What an append did.
#[derive(Debug)]
pub struct Appended {
    /// The state after the bytes that are durably stored: record it to keep them. When `error`
    /// is set it may still be longer than the input state: the bytes received before the body
    /// failed are kept (tus asks servers to keep what arrived of an interrupted PATCH). It is
    /// never shorter than the input state.
    pub state: Appending,
    /// Why the append stopped early, if it did.
    pub error: Option<BlobAppendError>,
    /// Whether the append also sealed the object ([`Blobs::append_whole`]): it is readable at
    /// its key with exactly `state.len` bytes, and needs no [`Blobs::seal`].
    pub sealed: bool,
}

/// Why an append stopped before the end of its body.
#[derive(Debug, thiserror::Error)]
pub enum BlobAppendError {
    /// The body failed: the client went away, or the caller's own stream wrapper refused more
    /// bytes (e.g. over a size limit). Its kind and message are preserved.
    #[error("the body failed: {0}")]
    Body(#[source] std::io::Error),
    /// The store failed; only the bytes in [`Appended::state`] are stored.
    #[error(transparent)]
    Store(InfraError),
}

/// Checks a blobs URL without opening it: `file:///ABS/DIR` or a plain path, or
/// `s3://BUCKET[/PREFIX]?endpoint=..&region=..&part_size=..`. The message says what is wrong.
pub fn check_url(url: &str) -> Result<(), InfraError> {
    Location::parse(url).map(drop)
}

/// Where a blobs URL points.
enum Location {
    Local(std::path::PathBuf),
    S3(s3::S3Url),
}

impl Location {
    fn parse(text: &str) -> Result<Location, InfraError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(blob_err(format!(
                "{URL_KEY} is empty; use file:///ABS/DIR, a folder path, or s3://BUCKET[/PREFIX]"
            )));
        }
        if let Some(rest) = text.strip_prefix("file://") {
            let url = url::Url::parse(text)
                .map_err(|e| blob_err(format!("{URL_KEY} {text:?} is not a URL: {e}")))?;
            if !rest.starts_with('/') || url.host_str().is_some_and(|h| !h.is_empty()) {
                return Err(blob_err(format!(
                    "{URL_KEY} {text:?} names no absolute folder; use file:///ABS/DIR"
                )));
            }
            let path = url.to_file_path().map_err(|()| {
                blob_err(format!(
                    "{URL_KEY} {text:?} is not a folder path; use file:///ABS/DIR"
                ))
            })?;
            return Ok(Location::Local(path));
        }
        if text.starts_with("s3://") {
            return s3::S3Url::parse(text).map(Location::S3);
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(blob_err(format!(
                "{URL_KEY} has the scheme {scheme:?}; use file:///ABS/DIR, a folder path, or s3://BUCKET[/PREFIX]?endpoint=..&region=..&part_size=.."
            )));
        }
        Ok(Location::Local(std::path::PathBuf::from(text)))
    }
}

impl Blobs {
    /// Opens the store of `url`: `file:///abs/dir` (or a plain path) for a local folder, or
    /// `s3://bucket[/prefix]?endpoint=http://host:port&region=..&part_size=..` for an
    /// S3-compatible bucket. S3 credentials come from the standard `AWS_*` environment
    /// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL` ...), never from the URL; the URL's `endpoint` and `region` win over
    /// the environment's. An `http://` endpoint is allowed; HTTPS follows `tls`. `part_size` is
    /// in bytes (default 8 MiB, at least 5 MiB). Nothing is contacted yet: see
    /// [`Blobs::check`].
    pub async fn open(url: &str, tls: &TrustPolicy) -> Result<Blobs, InfraError> {
        match Location::parse(url)? {
            Location::Local(dir) => Blobs::local(&dir),
            Location::S3(s3url) => Ok(Blobs {
                backend: Backend::S3(Arc::new(s3::S3::open(s3url, tls)?)),
            }),
        }
    }

    /// A local store rooted at `dir` (created if missing).
    pub fn local(dir: &Path) -> Result<Blobs, InfraError> {
        Ok(Blobs {
            backend: Backend::Local(Arc::new(local::Local::new(dir)?)),
        })
    }

    /// `"local"` or `"s3"`.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Local(_) => "local",
            Backend::S3(_) => "s3",
        }
    }

    /// The URL it was opened with, credentials-free (for logs and `praxis config`).
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Local(l) => l.describe(),
            Backend::S3(s) => s.describe(),
        }
    }

    /// Readiness: the store answers (local: its folder exists; S3: the bucket can be listed).
    pub async fn check(&self) -> Result<(), InfraError> {
        match &self.backend {
            Backend::Local(l) => l.check().await,
            Backend::S3(s) => s.check().await,
        }
    }

    /// Size of object `key`, `None` when absent.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, InfraError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(l) => l.size(key).await,
            Backend::S3(s) => s.size(key).await,
        }
    }

    /// Streams bytes `range` (`start..end`, end exclusive, within the object) of `key`. Memory
    /// is bounded (no whole-object buffering); on S3 it is one ranged GET. A range past the end
    /// of the object is an error naming its size; an absent object is an error.
    pub async fn read(&self, key: &str, range: Range<u64>) -> Result<ByteStream, InfraError> {
        check_key(key)?;
        if range.start > range.end {
            return Err(blob_err(format!(
                "read of {key}: the range {}..{} ends before it starts",
                range.start, range.end
            )));
        }
        match &self.backend {
            Backend::Local(l) => l.read(key, range).await,
            Backend::S3(s) => s.read(key, range).await,
        }
    }

    /// Writes a whole object from a stream and returns its size (local: a temporary file,
    /// fsync, rename; S3: one PUT, or a multipart upload in `part_size` parts). Memory is
    /// bounded by one part. If the body fails nothing is stored, and the error says so.
    pub async fn put(&self, key: &str, body: ByteStream) -> Result<u64, InfraError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(l) => l.put(key, body).await,
            Backend::S3(s) => s.put(key, body).await,
        }
    }

    /// Deletes `key`; absent is fine.
    pub async fn delete(&self, key: &str) -> Result<(), InfraError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(l) => l.delete(key).await,
            Backend::S3(s) => s.delete(key).await,
        }
    }

    /// Copies object `from` to `to` within this store (server-side on S3, where one copy is
    /// limited to 5 GiB).
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), InfraError> {
        check_key(from)?;
        check_key(to)?;
        match &self.backend {
            Backend::Local(l) => l.copy(from, to).await,
            Backend::S3(s) => s.copy(from, to).await,
        }
    }

    /// Resumable writes: appends `body` after `state.len` bytes of the object-in-progress
    /// `key`, ignoring whatever an unrecorded append wrote past them. Returns the new state
    /// (record it to keep the bytes) and, when it stopped early, why. Appends to one key must
    /// not run concurrently.
    pub async fn append(&self, key: &str, state: &Appending, body: ByteStream) -> Appended {
        self.append_to(key, state, body, None).await
    }

    /// An append that writes a whole object at once: like [`Blobs::append`], and when the
    /// write is new (`state` is `Appending::default()`) and the body brings exactly `len`
    /// bytes, the same call also seals the object (`Appended::sealed`), sparing a seal and its
    /// round trips. Local: the file the append wrote and fsynced is renamed into place and its
    /// folder fsynced (the folder of the object-in-progress is not fsynced: the file never
    /// stays there). S3, when `len` fits in one part: one PUT of the object, conditional on
    /// no object being at the key yet (`If-None-Match: *`), instead of a tail, a copy and the
    /// tails' listings; an object already there (an earlier whole write that was never
    /// recorded, or a writer that lost its lease to one that completed) makes it a plain
    /// append. Otherwise (a resumed write, a body that ends early or fails, a larger object)
    /// it is a plain append, sealed later by [`Blobs::seal`].
    ///
    /// Either way the input `state` stays valid: a caller that does not record the new state
    /// (a failed record, a lost lease) may append from it again, and the next seal replaces
    /// the object. Until the caller records it, nothing refers to the sealed object; if the
    /// write is then abandoned, [`Blobs::delete`] of the key after [`Blobs::discard`] removes
    /// it.
    pub async fn append_whole(
        &self,
        key: &str,
        state: &Appending,
        body: ByteStream,
        len: u64,
    ) -> Appended {
        self.append_to(key, state, body, Some(len)).await
    }

    async fn append_to(
        &self,
        key: &str,
        state: &Appending,
        body: ByteStream,
        whole: Option<u64>,
    ) -> Appended {
        if let Err(e) = check_key(key) {
            return Appended {
                state: state.clone(),
                error: Some(BlobAppendError::Store(e)),
                sealed: false,
            };
        }
        // Only a new write is sealed by its append: a resumed one has its bytes in parts or
        // a partial file that the seal must put together.
        let whole = whole.filter(|_| *state == Appending::default());
        let appended = match &self.backend {
            Backend::Local(l) => l.append(key, state, body, whole).await,
            Backend::S3(s) => s.append(key, state, body, whole).await,
        };
        // Never hand back less than the caller had: what the recorded state names is still
        // stored, whatever failed.
        if appended.state.len < state.len {
            return Appended {
                state: state.clone(),
                error: appended.error,
                sealed: false,
            };
        }
        appended
    }

    /// Makes the object-in-progress readable as object `key` with exactly `state.len` bytes
    /// (S3: completes the multipart upload, the tail becoming the last part; zero bytes: an
    /// empty object). A retry after a crash between the seal and the caller recording it
    /// succeeds: sealing a key that is already sealed with `state.len` bytes is `Ok`.
    pub async fn seal(&self, key: &str, state: &Appending) -> Result<(), InfraError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(l) => l.seal(key, state).await,
            Backend::S3(s) => s.seal(key, state).await,
        }
    }

    /// Drops an object-in-progress: aborts its multipart upload and deletes its tails (S3), or
    /// its partial file (local). Absent is fine. An object already sealed under `key` stays.
    pub async fn discard(&self, key: &str, state: &Appending) -> Result<(), InfraError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(l) => l.discard(key).await,
            Backend::S3(s) => s.discard(key, state).await,
        }
    }
}

/// An [`InfraError::Blob`] with `message`.
fn blob_err(message: impl Into<String>) -> InfraError {
    InfraError::Blob(message.into())
}

/// The error of a range that does not fit in an object of `size` bytes.
fn range_err(key: &str, range: &Range<u64>, size: u64) -> InfraError {
    blob_err(format!(
        "read of {key}: the range {}..{} is past the end of the object ({size} bytes); ask for a range within 0..{size}",
        range.start, range.end
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(check_url("file:///var/lib/praxis/blobs").is_ok());
        assert!(check_url("./data/blobs").is_ok());
        assert!(check_url("s3://bucket").is_ok());
        assert!(check_url("s3://bucket/some/prefix?endpoint=http://127.0.0.1:8333&region=eu-west-1&part_size=5242880").is_ok());
        let bad = |url: &str| check_url(url).expect_err(url).to_string();
        assert!(bad("").contains("is empty"));
        assert!(bad("file://relative/dir").contains("absolute"));
        assert!(bad("gs://bucket").contains("scheme"));
        assert!(bad("s3://user:secret@bucket").contains("AWS_ACCESS_KEY_ID"));
        assert!(bad("s3://bucket?part_size=1024").contains("at least 5 MiB"));
        assert!(bad("s3://bucket?part_size=lots").contains("part_size"));
        assert!(bad("s3://bucket?colour=blue").contains("colour"));
        assert!(bad("s3://bucket/.hidden/x").contains("prefix"));
        assert!(bad("s3://bucket/a//b").contains("prefix"));
        assert!(bad("s3://bucket?endpoint=ftp://x").contains("endpoint"));
        assert!(bad("s3://").contains("bucket"));
    }

    #[test]
    fn states_serialize_compactly() {
        let fresh = serde_json::to_string(&Appending::default()).expect("json");
        assert_eq!(fresh, r#"{"len":0}"#);
        let s3 = Appending {
            len: 7,
            upload: Some("u".into()),
            parts: vec!["\"e1\"".into()],
            tail: Some("g".into()),
            tail_len: 2,
        };
        let text = serde_json::to_string(&s3).expect("json");
        assert_eq!(
            serde_json::from_str::<Appending>(&text).expect("back"),
            s3,
            "{text}"
        );
    }
}

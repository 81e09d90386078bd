//! Blobs in an S3-compatible bucket through object_store's `AmazonS3`: whole objects with the
//! `ObjectStore` calls, resumable writes with the `MultipartStore` calls (create_multipart,
//! put_part, complete_multipart, abort_multipart) and a tail object (see the
//! [module docs](super)).
//!
//! Layout under the URL's prefix: objects at `<key>`, tails at `.tail/<key>/<generation>`
//! (keys never start a segment with `.`, so no key names a tail).

use std::ops::Range;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{ClientConfigKey, ClientOptions, HttpClient, HttpConnector};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};

use super::key::check_name;
use super::{Appended, Appending, BlobAppendError, ByteStream, URL_KEY, blob_err, range_err};
use crate::InfraError;
use crate::tls::TrustPolicy;

/// Default part size: 8 MiB.
pub(super) const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// S3's smallest part (every part but the last).
pub(super) const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's largest part.
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// S3's most parts in one upload.
const MAX_PARTS: usize = 10_000;

/// A parsed `s3://` URL.
#[derive(Debug, Clone)]
pub(super) struct S3Url {
    bucket: String,
    prefix: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    part_size: u64,
}

impl S3Url {
    /// Parses `s3://BUCKET[/PREFIX]?endpoint=..&region=..&part_size=..`.
    pub(super) fn parse(text: &str) -> Result<S3Url, InfraError> {
        let bad = |why: String| blob_err(format!("{URL_KEY} {text:?}: {why}"));
        let url = url::Url::parse(text).map_err(|e| bad(format!("not a URL ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(blob_err(format!(
                "{URL_KEY} holds credentials; remove them from the URL and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
            )));
        }
        let bucket = url.host_str().unwrap_or_default().to_owned();
        if bucket.is_empty() {
            return Err(bad(
                "names no bucket; use s3://BUCKET[/PREFIX]?endpoint=..".to_owned()
            ));
        }
        if url.port().is_some() || url.fragment().is_some() {
            return Err(bad(
                "has a port or a fragment; the server goes in ?endpoint=http://HOST:PORT"
                    .to_owned(),
            ));
        }
        let path = url.path().trim_matches('/');
        let prefix = if path.is_empty() {
            None
        } else {
            check_name("prefix", path).map_err(|e| bad(e.to_string()))?;
            Some(path.to_owned())
        };
        let mut parsed = S3Url {
            bucket,
            prefix,
            endpoint: None,
            region: None,
            part_size: DEFAULT_PART_SIZE,
        };
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "endpoint" => {
                    let endpoint = url::Url::parse(&value).ok().filter(|e| {
                        matches!(e.scheme(), "http" | "https") && e.host_str().is_some()
                    });
                    if endpoint.is_none() {
                        return Err(bad(format!(
                            "endpoint {value:?} is not an http(s) URL (e.g. http://127.0.0.1:8333)"
                        )));
                    }
                    parsed.endpoint = Some(value.trim_end_matches('/').to_owned());
                }
                "region" => parsed.region = Some(value.into_owned()),
                "part_size" => {
                    let size: u64 = value.parse().map_err(|_| {
                        bad(format!(
                            "part_size {value:?} is not a number of bytes (e.g. 8388608)"
                        ))
                    })?;
                    if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size) {
                        return Err(bad(format!(
                            "part_size {size} is out of range: S3 parts are at least 5 MiB ({MIN_PART_SIZE}) and at most 5 GiB"
                        )));
                    }
                    parsed.part_size = size;
                }
                other => {
                    return Err(bad(format!(
                        "unknown parameter {other:?}; known: endpoint, region, part_size (credentials come from AWS_* variables)"
                    )));
                }
            }
        }
        Ok(parsed)
    }
}

/// An S3 blob store.
pub(super) struct S3 {
    store: AmazonS3,
    url: S3Url,
    /// The endpoint and region in effect (the URL's, else the environment's).
    endpoint: Option<String>,
    region: Option<String>,
    part_size: usize,
}

/// Builds object_store's HTTP clients: reqwest over rustls with the process's provider (ring)
/// and trust policy, plain HTTP only where the store allows it. Timeouts: 5 s to connect, 60 s
/// without a byte read; no limit on a whole request, so a long download is not cut.
#[derive(Debug)]
struct Connector {
    trust: TrustPolicy,
}

impl HttpConnector for Connector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let allow_http = options
            .get_config_value(&ClientConfigKey::AllowHttp)
            .is_some_and(|v| v == "true");
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(self.trust.client_config())
            .user_agent(concat!("praxis/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(60))
            .https_only(!allow_http)
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(client))
    }
}

impl S3 {
    pub(super) fn open(url: S3Url, trust: &TrustPolicy) -> Result<S3, InfraError> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&url.bucket);
        if let Some(endpoint) = &url.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_config(AmazonS3ConfigKey::S3Endpoint, endpoint);
        }
        if let Some(region) = &url.region {
            builder = builder.with_region(region);
        }
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
        let region = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::DefaultRegion));
        let allow_http = endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let retry = object_store::RetryConfig {
            max_retries: 4,
            retry_timeout: Duration::from_secs(30),
            ..Default::default()
        };
        let store = builder
            .with_allow_http(allow_http)
            .with_retry(retry)
            .with_http_connector(Connector {
                trust: trust.clone(),
            })
            .build()
            .map_err(|e| {
                blob_err(format!(
                    "{URL_KEY} {}: cannot build the S3 client: {e}; check the URL and the AWS_* variables",
                    describe(&url, endpoint.as_deref(), region.as_deref())
                ))
            })?;
        let part_size = usize::try_from(url.part_size).map_err(|_| {
            blob_err(format!(
                "{URL_KEY}: part_size is too large for this machine"
            ))
        })?;
        Ok(S3 {
            store,
            url,
            endpoint,
            region,
            part_size,
        })
    }

    pub(super) fn describe(&self) -> String {
        describe(&self.url, self.endpoint.as_deref(), self.region.as_deref())
    }

    /// The object path of `name` (a checked key, or a name the store makes) under the prefix.
    fn path(&self, name: &str) -> Path {
        match &self.url.prefix {
            Some(prefix) => Path::from(format!("{prefix}/{name}")),
            None => Path::from(name),
        }
    }

    fn tail_dir(&self, key: &str) -> Path {
        self.path(&format!(".tail/{key}"))
    }

    fn tail_path(&self, key: &str, generation: &str) -> Path {
        self.path(&format!(".tail/{key}/{generation}"))
    }

    /// A store error of `op` on `key`, with what to check.
    fn err(&self, op: &str, key: &str, e: &object_store::Error) -> InfraError {
        blob_err(format!(
            "{op} {key} on {}: {e}; check that the endpoint answers, the bucket exists and the AWS_* credentials may use it",
            self.describe()
        ))
    }

    pub(super) async fn check(&self) -> Result<(), InfraError> {
        let probe = self.path(".check");
        match self.store.list(Some(&probe)).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(self.err("listing", ".check", &e)),
        }
    }

    pub(super) async fn size(&self, key: &str) -> Result<Option<u64>, InfraError> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("size of", key, &e)),
        }
    }

    pub(super) async fn read(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<ByteStream, InfraError> {
        if range.is_empty() {
            // S3 has no empty ranges: check the size, send nothing.
            return match self.size(key).await? {
                Some(size) if range.end <= size => Ok(futures::stream::empty().boxed()),
                Some(size) => Err(range_err(key, &range, size)),
                None => Err(blob_err(format!("read of {key}: no such object"))),
            };
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            ..Default::default()
        };
        match self.store.get_opts(&self.path(key), options).await {
            Ok(got) if got.meta.size < range.end => Err(range_err(key, &range, got.meta.size)),
            Ok(got) => Ok(got.into_stream().map_err(std::io::Error::other).boxed()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(blob_err(format!("read of {key}: no such object")))
            }
            // A range starting past the end is refused by the server: name the size.
            Err(e) => match self.size(key).await {
                Ok(Some(size)) if range.end > size => Err(range_err(key, &range, size)),
                _ => Err(self.err("read of", key, &e)),
            },
        }
    }

    pub(super) async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64, InfraError> {
        let path = self.path(key);
        let mut buf = BytesMut::with_capacity(self.part_size);
        let mut upload: Option<String> = None;
        let mut parts: Vec<PartId> = Vec::new();
        let mut size = 0u64;
        let written: Result<(), InfraError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    blob_err(format!(
                        "put of {key}: the body failed after {size} bytes ({e}); nothing was stored"
                    ))
                })?;
                size += chunk.len() as u64;
                buf.extend_from_slice(&chunk);
                while buf.len() >= self.part_size {
                    let part = buf.split_to(self.part_size).freeze();
                    let id = match &upload {
                        Some(id) => id.clone(),
                        None => {
                            let id = self
                                .store
                                .create_multipart(&path)
                                .await
                                .map_err(|e| self.err("put of", key, &e))?;
                            upload = Some(id.clone());
                            id
                        }
                    };
                    if parts.len() >= MAX_PARTS {
                        return Err(too_many_parts(key, self.url.part_size));
                    }
                    let part = self
                        .store
                        .put_part(&path, &id, parts.len(), PutPayload::from(part))
                        .await
                        .map_err(|e| self.err("put of", key, &e))?;
                    parts.push(part);
                }
            }
            match &upload {
                None => {
                    self.store
                        .put(&path, PutPayload::from(buf.split().freeze()))
                        .await
                        .map_err(|e| self.err("put of", key, &e))?;
                }
                Some(id) => {
                    if !buf.is_empty() {
                        let last = buf.split().freeze();
                        let part = self
                            .store
                            .put_part(&path, id, parts.len(), PutPayload::from(last))
                            .await
                            .map_err(|e| self.err("put of", key, &e))?;
                        parts.push(part);
                    }
                    self.store
                        .complete_multipart(&path, id, std::mem::take(&mut parts))
                        .await
                        .map_err(|e| self.err("put of", key, &e))?;
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = written {
            if let Some(id) = &upload
                && let Err(abort) = self.store.abort_multipart(&path, id).await
            {
                tracing::debug!(key, error = %abort, "blobs: cannot abort a failed put's multipart upload");
            }
            return Err(e);
        }
        Ok(size)
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), InfraError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete of", key, &e)),
        }
    }

    pub(super) async fn copy(&self, from: &str, to: &str) -> Result<(), InfraError> {
        match self.store.copy(&self.path(from), &self.path(to)).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(blob_err(format!("copy of {from}: no such object")))
            }
            Err(e) => Err(self.err("copy of", from, &e)),
        }
    }

    /// Checks that `state` can be an S3 write state: its length is its parts plus its tail.
    fn check_state(&self, key: &str, state: &Appending) -> Result<(), InfraError> {
        let consistent = state.len >= state.tail_len
            && (state.tail.is_some() == (state.tail_len > 0))
            && (!state.parts.is_empty() || state.len == state.tail_len)
            && (state.upload.is_some() || state.parts.is_empty());
        if consistent {
            Ok(())
        } else {
            Err(blob_err(format!(
                "the write state of {key} does not belong to an S3 blob store (was blobs_url changed while the upload was in progress?); discard the write and start again"
            )))
        }
    }

    /// The bytes of the recorded tail (empty without one).
    async fn read_tail(&self, key: &str, state: &Appending) -> Result<Bytes, InfraError> {
        let Some(generation) = &state.tail else {
            return Ok(Bytes::new());
        };
        let got = match self.store.get(&self.tail_path(key, generation)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(blob_err(format!(
                    "the in-progress tail of {key} is gone (the recorded state has {} bytes): it was discarded, sealed or deleted by a concurrent append; discard the write and start again",
                    state.len
                )));
            }
            Err(e) => return Err(self.err("append to", key, &e)),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.err("append to", key, &e))?;
        if bytes.len() as u64 != state.tail_len {
            return Err(blob_err(format!(
                "the in-progress tail of {key} holds {} bytes but the recorded state has {}: it was damaged; discard the write and start again",
                bytes.len(),
                state.tail_len
            )));
        }
        Ok(bytes)
    }

    /// Deletes the tails of `key` other than `keep` (best effort: a failure is logged).
    async fn drop_tails(&self, key: &str, keep: Option<&str>) {
        // One level only: `.tail/a/` also holds the folder of key `a/b`'s tails.
        let listed = self
            .store
            .list_with_delimiter(Some(&self.tail_dir(key)))
            .await;
        let metas = match listed {
            Ok(listed) => listed.objects,
            Err(e) => {
                tracing::warn!(key, error = %e, "blobs: cannot list the old tails of an upload; they stay until its seal or discard");
                return;
            }
        };
        for meta in metas {
            if meta.location.filename().is_some_and(|g| Some(g) == keep) {
                continue;
            }
            if let Err(e) = self.store.delete(&meta.location).await {
                tracing::warn!(key, tail = %meta.location, error = %e, "blobs: cannot delete an old tail");
            }
        }
    }

    /// Starts uploading `part` as the next part of `key`'s multipart upload (created first
    /// when `state` has none): the future resolves to the part's length and id, which
    /// [`record_part`] then adds to `state`.
    async fn start_part(
        &self,
        key: &str,
        state: &mut Appending,
        part: Bytes,
    ) -> Result<PartUpload<'_>, InfraError> {
        if state.parts.len() >= MAX_PARTS {
            return Err(too_many_parts(key, self.url.part_size));
        }
        let path = self.path(key);
        let upload = match &state.upload {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .store
                    .create_multipart(&path)
                    .await
                    .map_err(|e| self.err("append to", key, &e))?;
                state.upload = Some(id.clone());
                id
            }
        };
        let len = part.len() as u64;
        // Part index i is S3 part number i + 1 (object_store's mapping).
        let index = state.parts.len();
        let key = key.to_owned();
        Ok(Box::pin(async move {
            self.store
                .put_part(&path, &upload, index, PutPayload::from(part))
                .await
                .map(|id| (len, id))
                .map_err(|e| self.err("append to", &key, &e))
        }))
    }

    pub(super) async fn append(
        &self,
        key: &str,
        state: &Appending,
        mut body: ByteStream,
        whole: Option<u64>,
    ) -> Appended {
        let fail = |state: Appending, e: InfraError| Appended {
            state,
            error: Some(BlobAppendError::Store(e)),
            sealed: false,
        };
        if let Err(e) = self.check_state(key, state) {
            return fail(state.clone(), e);
        }
        let tail = match self.read_tail(key, state).await {
            Ok(tail) => tail,
            Err(e) => return fail(state.clone(), e),
        };
        let mut st = state.clone();
        // At most two parts in memory: one uploading while the body fills the next. A full
        // part waits for the one in flight, so parts complete (and are recorded) in order.
        let mut buf = BytesMut::with_capacity(tail.len().max(self.part_size));
        buf.extend_from_slice(&tail);
        drop(tail);
        let mut in_flight: Option<PartUpload<'_>> = None;
        let mut received = false;
        let mut body_error = None;
        let mut body_done = false;
        let small = whole.filter(|len| *len <= self.part_size as u64);
        if let Some(len) = small {
            // A whole object of one part: its body is gathered while the tails of unrecorded
            // appends are listed and deleted, then it is one conditional PUT.
            let gather = async {
                while buf.len() as u64 <= len {
                    match body.next().await {
                        None => {
                            body_done = true;
                            break;
                        }
                        Some(Ok(chunk)) => {
                            received |= !chunk.is_empty();
                            buf.extend_from_slice(&chunk);
                        }
                        Some(Err(e)) => {
                            body_error = Some(e);
                            body_done = true;
                            break;
                        }
                    }
                }
            };
            tokio::join!(self.drop_tails(key, None), gather);
            if body_done && body_error.is_none() && buf.len() as u64 == len {
                let put = self
                    .store
                    .put_opts(
                        &self.path(key),
                        PutPayload::from(buf.clone().freeze()),
                        PutOptions::from(PutMode::Create),
                    )
                    .await;
                match put {
                    Ok(_) => {
                        return Appended {
                            state: Appending {
                                len,
                                ..Appending::default()
                            },
                            error: None,
                            sealed: true,
                        };
                    }
                    // An object is at the key already: a whole write that was never recorded,
                    // or one by a writer that lost its lease to one that completed. This one
                    // becomes a tail; its seal will replace the object.
                    Err(object_store::Error::AlreadyExists { .. }) => {}
                    Err(e) => return fail(st, self.err("append to", key, &e)),
                }
            }
        } else {
            // Tails the recorded state does not name are older generations or unrecorded
            // appends'.
            self.drop_tails(key, state.tail.as_deref()).await;
        }
        // The body ended in the gathering of a whole object: nothing more to read.
        if !body_done {
            loop {
                if buf.len() >= self.part_size {
                    if let Some(upload) = in_flight.take() {
                        match upload.await {
                            Ok((len, id)) => record_part(&mut st, len, id),
                            Err(e) => return fail(st, e),
                        }
                    }
                    let part = buf.split_to(self.part_size).freeze();
                    match self.start_part(key, &mut st, part).await {
                        Ok(upload) => in_flight = Some(upload),
                        Err(e) => return fail(st, e),
                    }
                    continue;
                }
                let next = match in_flight.as_mut() {
                    None => body.next().await,
                    Some(upload) => {
                        let finished = tokio::select! {
                            done = upload => Err(done),
                            next = body.next() => Ok(next),
                        };
                        match finished {
                            Ok(next) => next,
                            Err(done) => {
                                in_flight = None;
                                match done {
                                    Ok((len, id)) => record_part(&mut st, len, id),
                                    Err(e) => return fail(st, e),
                                }
                                continue;
                            }
                        }
                    }
                };
                match next {
                    None => break,
                    Some(Ok(chunk)) => {
                        received |= !chunk.is_empty();
                        buf.extend_from_slice(&chunk);
                    }
                    Some(Err(e)) => {
                        body_error = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(upload) = in_flight.take() {
            match upload.await {
                Ok((len, id)) => record_part(&mut st, len, id),
                Err(e) => return fail(st, e),
            }
        }
        if received && !buf.is_empty() {
            // The rest becomes a tail of a new generation; the recorded one stays until the
            // next append (from whichever state the caller records) deletes it.
            let generation = uuid::Uuid::new_v4().simple().to_string();
            let rest = buf.split().freeze();
            let len = rest.len() as u64;
            if let Err(e) = self
                .store
                .put(&self.tail_path(key, &generation), PutPayload::from(rest))
                .await
            {
                return fail(st, self.err("append to", key, &e));
            }
            st.len = st.len - st.tail_len + len;
            st.tail = Some(generation);
            st.tail_len = len;
        }
        Appended {
            state: st,
            error: body_error.map(BlobAppendError::Body),
            sealed: false,
        }
    }

    pub(super) async fn seal(&self, key: &str, state: &Appending) -> Result<(), InfraError> {
        if state.len > 0 && state.upload.is_none() && state.tail.is_none() {
            // The state of an object one PUT wrote whole (`append_whole`): sealed already.
            return match self.size(key).await? {
                Some(size) if size == state.len => Ok(()),
                _ => Err(blob_err(format!(
                    "the object {key} that one write of {} bytes sealed is gone or changed; discard the write and start again",
                    state.len
                ))),
            };
        }
        self.check_state(key, state)?;
        let sealed = self.seal_inner(key, state).await;
        if let Err(e) = sealed {
            // A retry of a seal that completed before its caller recorded it.
            match self.size(key).await {
                Ok(Some(size)) if size == state.len => {}
                _ => return Err(e),
            }
        }
        self.drop_tails(key, None).await;
        Ok(())
    }

    async fn seal_inner(&self, key: &str, state: &Appending) -> Result<(), InfraError> {
        let path = self.path(key);
        let op = |e: object_store::Error| self.err("seal of", key, &e);
        match (&state.upload, &state.tail) {
            (None, None) => {
                self.store
                    .put(&path, PutPayload::default())
                    .await
                    .map_err(op)?;
            }
            (None, Some(generation)) => {
                self.store
                    .copy(&self.tail_path(key, generation), &path)
                    .await
                    .map_err(op)?;
            }
            (Some(upload), _) => {
                let mut parts: Vec<PartId> = state
                    .parts
                    .iter()
                    .map(|content_id| PartId {
                        content_id: content_id.clone(),
                    })
                    .collect();
                if state.tail.is_some() {
                    let tail = self.read_tail(key, state).await?;
                    let last = self
                        .store
                        .put_part(&path, upload, parts.len(), PutPayload::from(tail))
                        .await
                        .map_err(op)?;
                    parts.push(last);
                }
                self.store
                    .complete_multipart(&path, upload, parts)
                    .await
                    .map_err(op)?;
            }
        }
        Ok(())
    }

    pub(super) async fn discard(&self, key: &str, state: &Appending) -> Result<(), InfraError> {
        if let Some(upload) = &state.upload {
            match self.store.abort_multipart(&self.path(key), upload).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err("discard of", key, &e)),
            }
        }
        self.drop_tails(key, None).await;
        Ok(())
    }
}

/// A part on its way to S3: its length and id once uploaded.
type PartUpload<'a> = futures::future::BoxFuture<'a, Result<(u64, PartId), InfraError>>;

/// Adds an uploaded part (which consumed the recorded tail, if any) to `state`.
fn record_part(state: &mut Appending, len: u64, id: PartId) {
    let in_parts = state.len - state.tail_len;
    state.parts.push(id.content_id);
    state.len = in_parts + len;
    state.tail = None;
    state.tail_len = 0;
}

fn too_many_parts(key: &str, part_size: u64) -> InfraError {
    blob_err(format!(
        "{key} would need more than {MAX_PARTS} parts of {part_size} bytes; raise part_size in {URL_KEY}"
    ))
}

/// `s3://bucket/prefix?endpoint=..&region=..&part_size=..`, with the endpoint and region in
/// effect. Never credentials: the URL holds none.
fn describe(url: &S3Url, endpoint: Option<&str>, region: Option<&str>) -> String {
    let mut out = format!("s3://{}", url.bucket);
    if let Some(prefix) = &url.prefix {
        out.push('/');
        out.push_str(prefix);
    }
    let mut query = Vec::new();
    if let Some(endpoint) = endpoint {
        query.push(format!("endpoint={endpoint}"));
    }
    if let Some(region) = region {
        query.push(format!("region={region}"));
    }
    query.push(format!("part_size={}", url.part_size));
    out.push('?');
    out.push_str(&query.join("&"));
    out
}

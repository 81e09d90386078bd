//! Uploads: create (tus creation, deferred length, concatenation), append (PATCH, with its
//! lease, checksum and limits), complete (seal, digest, deduplicate, file), terminate.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use praxis_infra::blobs::{Appending, ByteStream};
use praxis_infra::sql::now_ms;

use super::Files;
use super::tap::{self, Seen, Tap};
use crate::domain::digest::{ChunkDigest, FileDigests};
use crate::domain::model::{Content, FileMeta, FileStatus, Upload, UploadKind};
use crate::domain::sniff::{SNIFF_BYTES, sniff};
use crate::domain::tus::{self, Checksum, ChecksumAlgorithm, Concat};
use crate::error::FilesError;
use crate::store::{Amount, Completion, Lease, Recorded};

/// A new upload, as the creation request describes it.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// The caller.
    pub owner: String,
    /// `Upload-Length`; `None` with `Upload-Defer-Length: 1`.
    pub length: Option<u64>,
    /// `Upload-Metadata`, checked by the route.
    pub metadata: String,
    /// `Upload-Concat`.
    pub concat: Option<Concat>,
}

/// One append (a PATCH, or the body of a creation-with-upload or a simple upload); the body
/// goes beside it.
#[derive(Debug, Clone)]
pub struct Append {
    /// The caller.
    pub owner: String,
    /// The upload.
    pub id: String,
    /// `Upload-Offset`.
    pub offset: u64,
    /// `Upload-Checksum`.
    pub checksum: Option<Checksum>,
    /// `Upload-Length` sent with the PATCH of a deferred upload.
    pub length: Option<u64>,
    /// Whether the body's end is the upload's end (a simple upload of unknown length: the
    /// length becomes the offset reached).
    pub ends_upload: bool,
}

fn algorithm_name(a: ChecksumAlgorithm) -> &'static str {
    match a {
        ChecksumAlgorithm::Sha1 => "sha1",
        ChecksumAlgorithm::Sha256 => "sha256",
        ChecksumAlgorithm::Md5 => "md5",
    }
}

fn state_of(upload: &Upload) -> Result<Appending, FilesError> {
    serde_json::from_str(&upload.append_state).map_err(|e| {
        FilesError::Infra(praxis_infra::InfraError::Config(format!(
            "upload {} has an unreadable blob state: {e}",
            upload.id
        )))
    })
}

fn state_text(state: &Appending) -> String {
    serde_json::to_string(state).unwrap_or_else(|_| "{}".to_owned())
}

impl Files {
    /// The upload `id` of `owner`: 404 when it is not theirs (or does not exist), 410 when it
    /// expired before completing.
    pub async fn upload_of(&self, owner: &str, id: &str) -> Result<Upload, FilesError> {
        let upload = self
            .store
            .upload(id)
            .await?
            .filter(|u| u.owner == owner)
            .ok_or_else(|| FilesError::NotFound(format!("no upload {id} among yours")))?;
        if upload.completed_at.is_none() && upload.expires_at < now_ms() && !upload.is_full() {
            return Err(FilesError::Gone(format!(
                "upload {id} expired at {}; start a new upload",
                tus::http_date(upload.expires_at)
            )));
        }
        Ok(upload)
    }

    /// Creates an upload (and, for a final one, concatenates its partial uploads).
    pub async fn create(&self, new: NewUpload) -> Result<Upload, FilesError> {
        let max = self.settings.max_size as u64;
        let now = now_ms();
        let id = uuid::Uuid::now_v7().to_string();
        let (kind, length, parts) = match &new.concat {
            None => (UploadKind::Single, new.length, Vec::new()),
            Some(Concat::Partial) => (UploadKind::Partial, new.length, Vec::new()),
            Some(Concat::Final(ids)) => {
                let mut total = 0u64;
                for part in ids {
                    let p = self
                        .store
                        .upload(part)
                        .await?
                        .filter(|u| u.owner == new.owner);
                    let Some(p) = p else {
                        return Err(FilesError::field(
                            "Upload-Concat",
                            format!("no partial upload {part} among yours"),
                        ));
                    };
                    if p.kind != UploadKind::Partial || p.completed_at.is_none() {
                        return Err(FilesError::field(
                            "Upload-Concat",
                            format!(
                                "upload {part} is not a complete partial upload (Upload-Concat: partial, every byte sent)"
                            ),
                        ));
                    }
                    total = total.saturating_add(p.offset);
                }
                (UploadKind::Final, Some(total), ids.clone())
            }
        };
        if let Some(len) = length
            && len > max
        {
            return Err(FilesError::TooLarge(
                "too-large",
                format!("the upload's {len} bytes pass max_size ({max} bytes, Tus-Max-Size)"),
            ));
        }
        let upload = Upload {
            id: id.clone(),
            owner: new.owner.clone(),
            kind,
            length,
            offset: 0,
            append_state: state_text(&Appending::default()),
            metadata: new.metadata,
            parts,
            blob_key: format!("uploads/{id}"),
            created_at: now,
            expires_at: now + self.expiry_ms(),
            completed_at: None,
        };
        let quota = self.quota_of(&new.owner).await?;
        let amount = Amount {
            bytes: length.unwrap_or(0),
            files: upload.reserved_files(),
        };
        if !self.store.create_upload(&upload, amount, quota).await? {
            return Err(self.over_quota(&new.owner, amount.bytes).await);
        }
        if kind == UploadKind::Final {
            return self.concatenate(upload).await;
        }
        if length == Some(0) {
            self.complete(&upload, Some(FileDigests::default())).await?;
            return self.reload(&upload.id).await;
        }
        Ok(upload)
    }

    async fn reload(&self, id: &str) -> Result<Upload, FilesError> {
        self.store
            .upload(id)
            .await?
            .ok_or_else(|| FilesError::NotFound(format!("upload {id} was deleted meanwhile")))
    }

    /// The error for a reservation the quota refused.
    async fn over_quota(&self, owner: &str, wanted: u64) -> FilesError {
        let detail = match self.usage(owner).await {
            Ok(u) => format!(
                "your quota is {} bytes in {} files and you hold {} bytes in {} files; {wanted} more bytes do not fit: delete files or ask an admin for more",
                u.max_bytes, u.max_files, u.bytes, u.files
            ),
            Err(_) => "your quota does not fit this upload".to_owned(),
        };
        FilesError::TooLarge("quota-exceeded", detail)
    }

    /// Appends a body to an upload under its lease; completes the upload when its last byte
    /// arrives. Returns the upload as recorded.
    pub async fn append(&self, req: Append, body: ByteStream) -> Result<Upload, FilesError> {
        let mut upload = self.upload_of(&req.owner, &req.id).await?;
        if upload.kind == UploadKind::Final {
            return Err(FilesError::Forbidden(
                "a final upload is made of its partial uploads and takes no PATCH".to_owned(),
            ));
        }
        if upload.completed_at.is_some() || upload.is_full() {
            if req.offset != upload.offset {
                return Err(FilesError::OffsetMismatch {
                    sent: req.offset,
                    current: upload.offset,
                });
            }
            // Nothing more fits: a body with any byte is refused; an empty PATCH of a full
            // upload finishes a completion that a crash interrupted.
            if has_bytes(body, self.settings.idle_timeout).await {
                return Err(FilesError::TooLarge(
                    "too-large",
                    format!(
                        "upload {} already has all its {} bytes",
                        upload.id, upload.offset
                    ),
                ));
            }
            self.finish_if_full(&upload).await?;
            return self.reload(&upload.id).await;
        }
        if req.offset != upload.offset {
            return Err(FilesError::OffsetMismatch {
                sent: req.offset,
                current: upload.offset,
            });
        }
        let quota = self.quota_of(&req.owner).await?;
        if let Some(len) = req.length {
            match upload.length {
                Some(known) if known != len => {
                    return Err(FilesError::field(
                        "Upload-Length",
                        format!("the upload's length is already {known}; it cannot change"),
                    ));
                }
                Some(_) => {}
                None => {
                    if len < upload.offset || len > self.settings.max_size as u64 {
                        return Err(FilesError::field(
                            "Upload-Length",
                            format!(
                                "must be from the offset {} to max_size {}",
                                upload.offset, self.settings.max_size
                            ),
                        ));
                    }
                    if !self.store.set_length(&upload, len, quota).await? {
                        return Err(self.over_quota(&req.owner, len - upload.offset).await);
                    }
                    upload = self.reload(&upload.id).await?;
                }
            }
        }
        let limit = match upload.length {
            Some(len) => len - upload.offset,
            None => {
                let usage = self.store.usage(&req.owner, quota).await?;
                (self.settings.max_size as u64 - upload.offset)
                    .min(usage.max_bytes.saturating_sub(usage.bytes))
            }
        };
        let token = uuid::Uuid::new_v4().to_string();
        let lease_ms = i64::try_from(self.settings.lock_lease.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        match self
            .store
            .take_lease(&upload.id, upload.offset, &token, now, now + lease_ms)
            .await?
        {
            Lease::Taken => {}
            Lease::OffsetMoved(current) => {
                return Err(FilesError::OffsetMismatch {
                    sent: req.offset,
                    current,
                });
            }
            Lease::Busy => {
                return Err(FilesError::Locked(format!(
                    "another request is appending to upload {}; retry when it ends",
                    upload.id
                )));
            }
            Lease::Completed => {
                return Err(FilesError::OffsetMismatch {
                    sent: req.offset,
                    current: upload.length.unwrap_or(upload.offset),
                });
            }
            Lease::Missing => {
                return Err(FilesError::NotFound(format!(
                    "upload {} was terminated",
                    upload.id
                )));
            }
        }
        let result = self
            .append_leased(&upload, &req, body, &token, limit, quota)
            .await;
        if result.is_err() {
            let _ = self.store.release_lease(&upload.id, &token).await;
        }
        let upload = result?;
        self.finish_if_full(&upload).await?;
        self.reload(&upload.id).await
    }

    /// The append itself, with the lease taken: streams the body into the blob store while
    /// renewing the lease, then records the new offset (or nothing, on a checksum mismatch
    /// or an over-long body).
    async fn append_leased(
        &self,
        upload: &Upload,
        req: &Append,
        body: ByteStream,
        token: &str,
        limit: u64,
        quota: crate::store::Quota,
    ) -> Result<Upload, FilesError> {
        let state = state_of(upload)?;
        let seen: Tap = Arc::new(parking_lot::Mutex::new(Seen {
            chunk: req.checksum.as_ref().map(ChunkDigest::for_checksum),
            file: self.digests.take(&upload.id, upload.offset),
            ..Seen::default()
        }));
        let stream = tap::tap(body, limit, self.settings.idle_timeout, seen.clone());
        let appended = self.append_renewing(upload, token, &state, stream).await?;
        let seen = std::mem::take(&mut *seen.lock());
        let new_offset = appended.state.len;
        let stored = new_offset - upload.offset;
        if seen.over_limit {
            self.digests.forget(&upload.id);
            return Err(match upload.length {
                Some(len) => FilesError::TooLarge(
                    "too-large",
                    format!("the body passes the upload's length ({len} bytes); nothing was kept"),
                ),
                None => self.over_quota(&req.owner, seen.bytes).await,
            });
        }
        if let (Some(checksum), Some(digest)) = (&req.checksum, seen.chunk) {
            let complete_body = appended.error.is_none();
            if !complete_body || !digest.matches(&checksum.digest) {
                self.digests.forget(&upload.id);
                if !complete_body {
                    return Err(body_error(appended.error));
                }
                return Err(FilesError::ChecksumMismatch(algorithm_name(
                    checksum.algorithm,
                )));
            }
        }
        if let Some(praxis_infra::blobs::BlobAppendError::Store(e)) = &appended.error
            && stored == 0
        {
            self.digests.forget(&upload.id);
            return Err(FilesError::Infra(praxis_infra::InfraError::Blob(
                e.to_string(),
            )));
        }
        let expires_at = now_ms() + self.expiry_ms();
        match self
            .store
            .record_append(
                upload,
                token,
                new_offset,
                &state_text(&appended.state),
                expires_at,
                quota,
            )
            .await?
        {
            Recorded::Done => {}
            Recorded::LostLease => {
                self.digests.forget(&upload.id);
                return Err(FilesError::Locked(format!(
                    "upload {} was taken over by another request while this one ran; send HEAD and resume",
                    upload.id
                )));
            }
            Recorded::OverQuota => {
                self.digests.forget(&upload.id);
                return Err(self.over_quota(&req.owner, stored).await);
            }
        }
        match seen.file {
            Some(d) if seen.bytes == stored => self.digests.put(&upload.id, new_offset, d),
            _ => self.digests.forget(&upload.id),
        }
        let mut recorded = upload.clone();
        recorded.offset = new_offset;
        recorded.append_state = state_text(&appended.state);
        if req.ends_upload && recorded.length.is_none() && appended.error.is_none() {
            let quota = self.quota_of(&req.owner).await?;
            self.store.set_length(&recorded, new_offset, quota).await?;
            recorded.length = Some(new_offset);
        }
        if appended.error.is_some() {
            // What arrived is kept (the client resumes from the new offset); the request
            // itself failed.
            return Err(body_error(appended.error));
        }
        Ok(recorded)
    }
}

impl Files {
    /// Runs the append while renewing the lease every third of it; a lease that cannot be
    /// renewed (taken over after this process stalled) stops the append: what it wrote is
    /// never recorded.
    async fn append_renewing(
        &self,
        upload: &Upload,
        token: &str,
        state: &Appending,
        stream: ByteStream,
    ) -> Result<praxis_infra::blobs::Appended, FilesError> {
        let lease = self.settings.lock_lease;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let append = self.blobs.append(&upload.blob_key, state, stream);
        tokio::pin!(append);
        let mut tick = tokio::time::interval(lease / 3);
        tick.tick().await;
        loop {
            tokio::select! {
                out = &mut append => return Ok(out),
                _ = tick.tick() => {
                    let renewed = self
                        .store
                        .renew_lease(&upload.id, token, now_ms() + lease_ms)
                        .await
                        .unwrap_or(false);
                    if !renewed {
                        self.digests.forget(&upload.id);
                        return Err(FilesError::Locked(format!(
                            "upload {} was taken over by another request while this one ran; send HEAD and resume",
                            upload.id
                        )));
                    }
                }
            }
        }
    }

    /// Completes `upload` if every byte has arrived and it is not complete yet.
    pub async fn finish_if_full(&self, upload: &Upload) -> Result<(), FilesError> {
        if upload.completed_at.is_none() && upload.is_full() {
            let digests = self.digests.take(&upload.id, upload.offset);
            self.complete(upload, digests).await?;
        }
        Ok(())
    }

    /// Seals a full upload's object and, for a single or final upload, files it: its BLAKE3
    /// (from `digests` when they cover every byte, else by reading the object back), sniffs
    /// its type, and points it at its content's blob (deleting the upload's object when the
    /// content was already stored). Safe to run again after a crash at any step.
    pub async fn complete(
        &self,
        upload: &Upload,
        digests: Option<FileDigests>,
    ) -> Result<(), FilesError> {
        let state = state_of(upload)?;
        self.blobs.seal(&upload.blob_key, &state).await?;
        self.digests.forget(&upload.id);
        let now = now_ms();
        if upload.kind == UploadKind::Partial {
            self.store.complete(upload, None, now).await?;
            return Ok(());
        }
        let size = upload.offset;
        let blake3 = match digests {
            Some(d) => d.finish(),
            None => self.digest_object(&upload.blob_key, size).await?,
        };
        let head_len = size.min(SNIFF_BYTES as u64);
        let head: Vec<u8> = if head_len == 0 {
            Vec::new()
        } else {
            self.blobs
                .read(&upload.blob_key, 0..head_len)
                .await?
                .try_fold(Vec::new(), |mut acc, chunk| async move {
                    acc.extend_from_slice(&chunk);
                    Ok(acc)
                })
                .await
                .map_err(|e| praxis_infra::InfraError::Blob(e.to_string()))?
        };
        let content = Content {
            size,
            blake3,
            sniffed_type: sniff(&head),
        };
        let described = crate::domain::describe::describe(&upload.metadata, now);
        let file = FileMeta {
            id: upload.id.clone(),
            owner: upload.owner.clone(),
            name: described.name,
            content_type: described.content_type,
            sniffed_type: content.sniffed_type.clone(),
            size,
            blake3: content.blake3.clone(),
            sha256: None,
            status: if self.settings.scan_command.is_some() {
                FileStatus::Pending
            } else {
                FileStatus::Ready
            },
            tags: described.tags,
            created_at: now,
            expires_at: described.expires_at,
        };
        match self
            .store
            .complete(upload, Some((&file, &content)), now)
            .await?
        {
            Completion::Filed {
                duplicate: true, ..
            } => {
                if let Err(e) = self.blobs.delete(&upload.blob_key).await {
                    tracing::warn!(upload = %upload.id, error = %e, "the duplicate object of a deduplicated upload was not deleted");
                }
            }
            Completion::Filed { .. } | Completion::Sealed | Completion::AlreadyDone => {}
        }
        if upload.kind == UploadKind::Final {
            for part in &upload.parts {
                if let Some(p) = self.store.delete_upload(part).await? {
                    let _ = self.blobs.delete(&p.blob_key).await;
                }
            }
        }
        if self.settings.scan_command.is_some() {
            self.scan_wakeup.notify_one();
        }
        self.checksum_wakeup.notify_one();
        Ok(())
    }

    /// BLAKE3 of the first `size` bytes of object `key`, read back.
    async fn digest_object(&self, key: &str, size: u64) -> Result<String, FilesError> {
        let mut d = FileDigests::default();
        if size > 0 {
            let mut stream = self.blobs.read(key, 0..size).await?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| praxis_infra::InfraError::Blob(e.to_string()))?;
                d.update(&chunk);
            }
        }
        Ok(d.finish())
    }

    /// Writes a final upload's object from its partial uploads, in order, then completes it.
    async fn concatenate(&self, upload: Upload) -> Result<Upload, FilesError> {
        let mut sources = Vec::with_capacity(upload.parts.len());
        for part in &upload.parts {
            let p = self.reload(part).await?;
            sources.push((p.blob_key.clone(), p.offset));
        }
        let blobs = self.blobs.clone();
        let seen: Tap = Arc::new(parking_lot::Mutex::new(Seen {
            file: Some(FileDigests::default()),
            ..Seen::default()
        }));
        let body = futures::stream::iter(sources)
            .then(move |(key, len)| {
                let blobs = blobs.clone();
                async move {
                    if len == 0 {
                        return Ok(futures::stream::empty().boxed());
                    }
                    blobs
                        .read(&key, 0..len)
                        .await
                        .map_err(|e| std::io::Error::other(e.to_string()))
                }
            })
            .try_flatten()
            .boxed();
        let total = upload.length.unwrap_or(0);
        let stream = tap::tap(body, total, self.settings.idle_timeout, seen.clone());
        let appended = self
            .blobs
            .append(&upload.blob_key, &Appending::default(), stream)
            .await;
        if let Some(e) = appended.error {
            let _ = self.blobs.discard(&upload.blob_key, &appended.state).await;
            let _ = self.store.delete_upload(&upload.id).await;
            return Err(body_error(Some(e)));
        }
        let mut full = upload.clone();
        full.offset = appended.state.len;
        full.append_state = state_text(&appended.state);
        let file = seen.lock().file.take();
        self.store.record_concatenated(&full).await?;
        self.complete(&full, file).await?;
        self.reload(&full.id).await
    }

    /// Terminates an incomplete upload (tus termination): its bytes and reservation go.
    pub async fn terminate(&self, owner: &str, id: &str) -> Result<(), FilesError> {
        let upload = self
            .store
            .upload(id)
            .await?
            .filter(|u| u.owner == owner)
            .ok_or_else(|| FilesError::NotFound(format!("no upload {id} among yours")))?;
        if upload.completed_at.is_some() && upload.kind != UploadKind::Partial {
            // A completed upload is a file: terminating it deletes the file.
            self.delete_file(owner, id).await?;
            return Ok(());
        }
        let Some(gone) = self.store.delete_upload(id).await? else {
            // Completed meanwhile: terminating a completed upload deletes its file.
            if upload.kind != UploadKind::Partial {
                return self.delete_file(owner, id).await;
            }
            return Ok(());
        };
        {
            self.digests.forget(id);
            let state = state_of(&gone)?;
            if gone.completed_at.is_some() {
                self.blobs.delete(&gone.blob_key).await?;
            } else {
                self.blobs.discard(&gone.blob_key, &state).await?;
            }
        }
        Ok(())
    }
}

/// Whether `body` holds at least one byte (read until one arrives, it ends, or it stays silent
/// for `idle`).
async fn has_bytes(mut body: ByteStream, idle: std::time::Duration) -> bool {
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(chunk))) if chunk.is_empty() => continue,
            Ok(Some(Ok(_))) => return true,
            _ => return false,
        }
    }
}

fn body_error(e: Option<praxis_infra::blobs::BlobAppendError>) -> FilesError {
    match e {
        Some(praxis_infra::blobs::BlobAppendError::Body(e)) => {
            FilesError::BodyFailed(e.to_string())
        }
        Some(praxis_infra::blobs::BlobAppendError::Store(e)) => FilesError::Infra(e),
        None => FilesError::BodyFailed("the body ended early".to_owned()),
    }
}

#[cfg(test)]
mod send_check {
    fn is_send<T: Send>(_: &T) {}

    #[allow(dead_code)]
    fn futures_are_send(f: &super::Files, a: super::Append, b: super::ByteStream) {
        is_send(&f.append(a, b));
        is_send(&f.create(super::NewUpload {
            owner: String::new(),
            length: None,
            metadata: String::new(),
            concat: None,
        }));
    }
}

//! Uploads: create (tus creation, deferred length, concatenation), append (PATCH, with its
//! lease, checksum and limits), complete (seal, digest, deduplicate, file), terminate.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use praxis_infra::blobs::{Appending, BlobAppendError, ByteStream};
use praxis_infra::sql::now_ms;

use super::Files;
use super::lease::{self, Held};
use super::tap::{self, Seen, Tap};
use crate::domain::digest::{ChunkDigest, FileDigests};
use crate::domain::model::{Content, FileMeta, FileStatus, Upload, UploadKind};
use crate::domain::sniff::{SNIFF_BYTES, sniff};
use crate::domain::tus::{self, Checksum, ChecksumAlgorithm, Concat};
use crate::error::FilesError;
use crate::store::{Amount, AppendRecord, Completion, Recorded};

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
            bytes: upload.reserved_bytes(),
            files: upload.reserved_files(),
        };
        if !self.store.create_upload(&upload, amount, quota).await? {
            return Err(self.over_quota(&new.owner, amount.bytes).await);
        }
        if kind == UploadKind::Final {
            return self.concatenate(upload).await;
        }
        if length == Some(0) {
            let held = self.take_lease(&upload, 0).await?;
            if let Err(e) = self
                .complete(&upload, Some(FileDigests::default()), &held)
                .await
            {
                self.release(&held).await;
                return Err(e);
            }
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
    /// arrives (still under the lease). Returns the upload as recorded.
    pub async fn append(&self, req: Append, body: ByteStream) -> Result<Upload, FilesError> {
        let upload = self.upload_of(&req.owner, &req.id).await?;
        if upload.kind == UploadKind::Final {
            return Err(FilesError::Forbidden(
                "a final upload is made of its partial uploads and takes no PATCH".to_owned(),
            ));
        }
        if req.offset != upload.offset {
            return Err(FilesError::OffsetMismatch {
                sent: req.offset,
                current: upload.offset,
            });
        }
        if upload.completed_at.is_some() || upload.is_full() {
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
        if let Some(len) = req.length {
            match upload.length {
                Some(known) if known != len => {
                    return Err(FilesError::field(
                        "Upload-Length",
                        format!("the upload's length is already {known}; it cannot change"),
                    ));
                }
                Some(_) => {}
                None if len < upload.offset || len > self.settings.max_size as u64 => {
                    return Err(FilesError::field(
                        "Upload-Length",
                        format!(
                            "must be from the offset {} to max_size {}",
                            upload.offset, self.settings.max_size
                        ),
                    ));
                }
                None => {}
            }
        }
        // The quota bounds only a deferred upload's bytes here: a known length was reserved
        // at creation.
        let quota = if upload.length.is_none() {
            Some(self.quota_of(&req.owner).await?)
        } else {
            None
        };
        let held = self.take_lease(&upload, req.offset).await?;
        let (mut recorded, failure) =
            match self.append_leased(upload, &req, body, &held, quota).await {
                Ok(done) => done,
                Err(e) => {
                    self.release(&held).await;
                    return Err(e);
                }
            };
        if recorded.is_full() && recorded.completed_at.is_none() {
            let digests = self.digests.take(&recorded.id, recorded.offset);
            if let Err(e) = self.complete(&recorded, digests, &held).await {
                self.release(&held).await;
                return Err(e);
            }
            recorded.completed_at = Some(now_ms());
        }
        if let Some(e) = failure {
            // What arrived is kept (the client resumes from the new offset); the request
            // itself failed.
            return Err(e);
        }
        // As recorded: the row holds nothing this request does not know.
        Ok(recorded)
    }

    /// The append itself, with the lease taken: sets a deferred length sent with it, streams
    /// the body into the blob store while renewing the lease, then records the new offset (or
    /// nothing, on a checksum mismatch or an over-long body). Returns the upload as recorded
    /// and, when the body failed after some bytes were kept, the request's error. A full
    /// upload's lease is kept for its completion.
    async fn append_leased(
        &self,
        mut upload: Upload,
        req: &Append,
        body: ByteStream,
        held: &Held,
        quota: Option<crate::store::Quota>,
    ) -> Result<(Upload, Option<FilesError>), FilesError> {
        // Only a deferred upload needs its quota (`append` fetched it then).
        let quota = quota.unwrap_or_else(|| self.default_quota());
        if let (Some(len), None) = (req.length, upload.length) {
            if !self
                .store
                .set_length(&upload, len, quota, &held.token)
                .await?
            {
                return Err(self.over_quota(&req.owner, len - upload.offset).await);
            }
            upload.length = Some(len);
        }
        let limit = match upload.length {
            Some(len) => len - upload.offset,
            None => {
                let usage = self.store.usage(&req.owner, quota).await?;
                (self.settings.max_size as u64 - upload.offset)
                    .min(usage.max_bytes.saturating_sub(usage.bytes))
            }
        };
        let state = state_of(&upload)?;
        // A body that is the whole file (the usual small upload: one PATCH, or the body of
        // the creation) is written and sealed by one call to the blob store, and recorded
        // and completed by one transaction. Not with Upload-Checksum: its bytes are judged
        // after they are written, and a refused body must not leave a sealed object behind.
        let whole = match upload.length {
            Some(len)
                if upload.offset == 0
                    && upload.kind != UploadKind::Final
                    && req.checksum.is_none()
                    && state == Appending::default() =>
            {
                Some(len)
            }
            _ => None,
        };
        let seen: Tap = Arc::new(parking_lot::Mutex::new(Seen {
            chunk: req.checksum.as_ref().map(ChunkDigest::for_checksum),
            file: self.digests.take(&upload.id, upload.offset),
            head: whole.map(|_| Vec::new()),
            ..Seen::default()
        }));
        held.check()?;
        let stream = held.fence(tap::tap(
            body,
            limit,
            self.settings.idle_timeout,
            seen.clone(),
        ));
        let write = async {
            match whole {
                Some(len) => {
                    self.blobs
                        .append_whole(&upload.blob_key, &state, stream, len)
                        .await
                }
                None => self.blobs.append(&upload.blob_key, &state, stream).await,
            }
        };
        let appended = self
            .renewing(held, write)
            .await
            .inspect_err(|_| self.digests.forget(&upload.id))?;
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
        let failure = match appended.error {
            Some(BlobAppendError::Store(e)) if stored == 0 => {
                self.digests.forget(&upload.id);
                return Err(FilesError::Infra(e));
            }
            Some(e) => Some(body_error(Some(e))),
            None => None,
        };
        let sets_length = req.ends_upload && upload.length.is_none() && failure.is_none();
        let length = if sets_length {
            Some(new_offset)
        } else {
            upload.length
        };
        let full = length == Some(new_offset);
        let state_json = state_text(&appended.state);
        let record = AppendRecord {
            offset: new_offset,
            state: &state_json,
            expires_at: now_ms() + self.expiry_ms(),
            sets_length,
            hold_lease_ms: full.then(|| self.lease_ms()),
        };
        if appended.sealed {
            // Written whole (every byte of the upload, no error) and sealed: the record and
            // the completion are one transaction.
            self.digests.forget(&upload.id);
            let mut done = upload.clone();
            done.offset = new_offset;
            done.append_state = state_json.clone();
            done.length = length;
            done.expires_at = record.expires_at;
            let whole_seen = seen.bytes == stored;
            let blake3 = match seen.file {
                Some(d) if whole_seen => d.finish(),
                _ => self.digest_object(&upload.blob_key, new_offset).await?,
            };
            let head = match seen.head {
                Some(head) if whole_seen => head,
                _ => self.head_of(&upload.blob_key, new_offset).await?,
            };
            self.file_sealed(&done, &record, quota, blake3, &head, &held.token)
                .await?;
            done.completed_at = Some(now_ms());
            return Ok((done, None));
        }
        let asked = std::time::Instant::now();
        match self
            .store
            .record_append(&upload, &held.token, &record, quota)
            .await?
        {
            Recorded::Done => {}
            Recorded::LostLease => {
                self.digests.forget(&upload.id);
                return Err(lease::lost(&upload.id));
            }
            Recorded::OverQuota => {
                self.digests.forget(&upload.id);
                return Err(self.over_quota(&req.owner, stored).await);
            }
        }
        if full {
            self.extended(held, asked);
        }
        match seen.file {
            Some(d) if seen.bytes == stored => self.digests.put(&upload.id, new_offset, d),
            _ => self.digests.forget(&upload.id),
        }
        upload.offset = new_offset;
        upload.expires_at = record.expires_at;
        upload.append_state = state_json;
        upload.length = length;
        Ok((upload, failure))
    }

    /// Records the append that wrote `upload` whole (its object sealed already) and completes
    /// it, in one transaction; `upload` is as it is to be recorded, completed at return.
    #[allow(clippy::too_many_arguments)]
    async fn file_sealed(
        &self,
        upload: &Upload,
        record: &AppendRecord<'_>,
        quota: crate::store::Quota,
        blake3: String,
        head: &[u8],
        token: &str,
    ) -> Result<(), FilesError> {
        let now = now_ms();
        let prior = Upload {
            offset: 0,
            length: upload.length.filter(|_| !record.sets_length),
            ..upload.clone()
        };
        let (file, content) = self.file_of_upload(upload, blake3, head, now);
        let filed = (upload.kind != UploadKind::Partial).then_some((&file, &content));
        let (recorded, completion) = self
            .store
            .record_and_complete(&prior, token, record, quota, filed, now)
            .await?;
        match recorded {
            Recorded::Done => {}
            // The sealed object stays unreferenced: a resumed write replaces it, a termination
            // deletes it.
            Recorded::LostLease => return Err(lease::lost(&upload.id)),
            Recorded::OverQuota => {
                return Err(self.over_quota(&upload.owner, record.offset).await);
            }
        }
        if let Some(completion) = completion {
            self.filed(upload, completion).await;
        }
        Ok(())
    }

    /// The file and content records of a completed upload of `size` bytes.
    fn file_of_upload(
        &self,
        upload: &Upload,
        blake3: String,
        head: &[u8],
        now: i64,
    ) -> (FileMeta, Content) {
        let size = upload.offset;
        let content = Content {
            size,
            blake3,
            sniffed_type: sniff(head),
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
        (file, content)
    }

    /// After a completion's transaction: deletes the objects it made redundant (a duplicate
    /// content's, consumed partial uploads') and wakes the scanner and the checksum worker.
    async fn filed(&self, upload: &Upload, completion: Completion) {
        let Completion::Filed {
            duplicate,
            consumed,
            ..
        } = completion
        else {
            return;
        };
        if duplicate && let Err(e) = self.blobs.delete(&upload.blob_key).await {
            tracing::warn!(upload = %upload.id, error = %e, "the duplicate object of a deduplicated upload was not deleted");
        }
        for part in consumed {
            if let Err(e) = self.blobs.delete(&part.blob_key).await {
                tracing::warn!(upload = %part.id, error = %e, "a concatenated partial upload's object was not deleted");
            }
        }
        if self.settings.scan_command.is_some() {
            self.scan_wakeup.notify_one();
        }
        self.checksum_wakeup.notify_one();
    }
}

impl Files {
    /// Completes `upload` if every byte has arrived and it is not complete yet (an
    /// interrupted completion: the sweeper, or an empty PATCH). Takes the lease first; while
    /// another request holds it, that request is completing it, and this does nothing.
    /// Whether this call completed it.
    pub async fn finish_if_full(&self, upload: &Upload) -> Result<bool, FilesError> {
        if upload.completed_at.is_some() || !upload.is_full() {
            return Ok(false);
        }
        let held = match self.take_lease(upload, upload.offset).await {
            Ok(held) => held,
            Err(FilesError::Locked(_) | FilesError::OffsetMismatch { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let digests = self.digests.take(&upload.id, upload.offset);
        if let Err(e) = self.complete(upload, digests, &held).await {
            self.release(&held).await;
            return Err(e);
        }
        Ok(true)
    }

    /// Completes a full upload under `held`, renewing it while the completion runs (reading
    /// a large object back for its digest takes a while).
    async fn complete(
        &self,
        upload: &Upload,
        digests: Option<FileDigests>,
        held: &Held,
    ) -> Result<(), FilesError> {
        self.renewing(held, self.complete_leased(upload, digests, &held.token))
            .await?
    }

    /// Seals a full upload's object and, for a single or final upload, files it: its BLAKE3
    /// (from `digests` when they cover every byte, else by reading the object back), sniffs
    /// its type, and points it at its content's blob (deleting the upload's object when the
    /// content was already stored). Safe to run again after a crash at any step.
    async fn complete_leased(
        &self,
        upload: &Upload,
        digests: Option<FileDigests>,
        token: &str,
    ) -> Result<(), FilesError> {
        let state = state_of(upload)?;
        self.blobs.seal(&upload.blob_key, &state).await?;
        self.digests.forget(&upload.id);
        let now = now_ms();
        if upload.kind == UploadKind::Partial {
            self.store.complete(upload, None, now, token).await?;
            return Ok(());
        }
        let size = upload.offset;
        let blake3 = match digests {
            Some(d) => d.finish(),
            None => self.digest_object(&upload.blob_key, size).await?,
        };
        let head = self.head_of(&upload.blob_key, size).await?;
        let (file, content) = self.file_of_upload(upload, blake3, &head, now);
        let completion = self
            .store
            .complete(upload, Some((&file, &content)), now, token)
            .await?;
        self.filed(upload, completion).await;
        Ok(())
    }

    /// The first bytes of object `key` of `size` bytes, to sniff its type.
    async fn head_of(&self, key: &str, size: u64) -> Result<Vec<u8>, FilesError> {
        let head_len = size.min(SNIFF_BYTES as u64);
        if head_len == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .blobs
            .read(key, 0..head_len)
            .await?
            .try_fold(Vec::new(), |mut acc, chunk| async move {
                acc.extend_from_slice(&chunk);
                Ok(acc)
            })
            .await
            .map_err(|e| praxis_infra::InfraError::Blob(e.to_string()))?)
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

    /// Writes a final upload's object from its partial uploads, in order, then completes it,
    /// all under the final upload's lease.
    async fn concatenate(&self, upload: Upload) -> Result<Upload, FilesError> {
        let held = self.take_lease(&upload, 0).await?;
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
        let stream = held.fence(tap::tap(
            body,
            total,
            self.settings.idle_timeout,
            seen.clone(),
        ));
        let appended = self
            .renewing(
                &held,
                self.blobs
                    .append(&upload.blob_key, &Appending::default(), stream),
            )
            .await;
        let failed = match appended {
            Ok(a) if a.error.is_none() => Ok(a),
            Ok(a) => Err((Some(a.state), body_error(a.error))),
            Err(e) => Err((None, e)),
        };
        let appended = match failed {
            Ok(a) => a,
            Err((state, e)) => {
                let state = state.unwrap_or_default();
                let _ = self.blobs.discard(&upload.blob_key, &state).await;
                let _ = self.store.delete_upload(&upload.id).await;
                return Err(e);
            }
        };
        let mut full = upload.clone();
        full.offset = appended.state.len;
        full.append_state = state_text(&appended.state);
        let file = seen.lock().file.take();
        if !self.store.record_concatenated(&full, &held.token).await? {
            return Err(lease::lost(&full.id));
        }
        if let Err(e) = self.complete(&full, file, &held).await {
            self.release(&held).await;
            return Err(e);
        }
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
                // A whole write that was sealed but never recorded left its object; nothing
                // refers to an incomplete upload's key.
                self.blobs.delete(&gone.blob_key).await?;
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

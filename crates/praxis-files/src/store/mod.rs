//! All SQL of the file storage, one code path for SQLite and PostgreSQL (sqlx `Any`).
//!
//! Every change that moves bytes between "held" and "free" (creating an upload, recording
//! deferred bytes, completing, terminating, deleting) updates the owner's `files_usage` row in
//! the same transaction, with a conditional update that refuses to pass the quota: two
//! uploads racing for the last bytes of a quota cannot both win.
//!
//! Blob references: completion upserts the content's `files_blobs` row (`refs + 1`) and
//! deletion decrements it, deleting the row only where `refs = 0`; the object is deleted by
//! the caller only after that transaction commits. A completion racing a deletion either
//! increments before the delete (the row stays) or finds no row and inserts its own.

pub mod migrations;

use praxis_infra::{Db, InfraError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::domain::model::{Content, FileMeta, FileStatus, FileUsage, Upload, UploadKind};

const UPLOAD_COLUMNS: &str = "id, owner, kind, length, upload_offset, append_state, metadata, parts, \
     blob_key, created_at, expires_at, completed_at";
const FILE_COLUMNS: &str = "id, owner, name, content_type, sniffed_type, size, blake3, sha256, status, \
     tags, created_at, expires_at";

/// The default quotas, for accounts without their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Bytes.
    pub max_bytes: u64,
    /// Files.
    pub max_files: u64,
}

/// Bytes and files moved against an account's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Amount {
    /// Bytes.
    pub bytes: u64,
    /// Files.
    pub files: u64,
}

/// What taking an upload's lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// Taken: this PATCH may append.
    Taken,
    /// The offset is not the one the client sent: it is this one.
    OffsetMoved(u64),
    /// Another PATCH holds the lease.
    Busy,
    /// The upload completed meanwhile.
    Completed,
    /// No such upload (terminated or expired meanwhile).
    Missing,
}

/// What recording an append found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The new offset is durable.
    Done,
    /// The lease was lost (expired and taken by another PATCH, or the upload terminated):
    /// nothing was recorded.
    LostLease,
    /// Recording the deferred bytes would pass the quota: nothing was recorded.
    OverQuota,
}

/// What an append recorded: see [`Store::record_append`].
#[derive(Debug, Clone, Copy)]
pub struct AppendRecord<'a> {
    /// The new offset.
    pub offset: u64,
    /// The blob store's state after the append (JSON).
    pub state: &'a str,
    /// The upload's new expiry (unix ms).
    pub expires_at: i64,
    /// Whether the new offset becomes the length (a body of unknown length ended).
    pub sets_length: bool,
    /// Keep the lease this much longer (the upload is full: its completion runs under it).
    pub hold_lease_ms: Option<i64>,
}

/// What completing an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The file exists now; its content is stored under `blob_key` (the upload's own object,
    /// or an identical content's, in which case `duplicate` is true and the upload's object
    /// can be deleted).
    Filed {
        /// The object holding the content.
        blob_key: String,
        /// Whether the content was already stored (the upload's object is redundant).
        duplicate: bool,
        /// The partial uploads a final upload consumed: delete their objects.
        consumed: Vec<Upload>,
    },
    /// A partial upload: sealed, not a file.
    Sealed,
    /// Another request completed it first.
    AlreadyDone,
}

/// A file deleted: its record, and the object to delete when it was the content's last
/// reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The deleted file.
    pub file: FileMeta,
    /// The object and its tier (`hot`, `cold`) to delete, when no file refers to it anymore.
    pub orphan: Option<(String, String)>,
}

/// A public link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its token (the URL's last segment).
    pub token: String,
    /// The file.
    pub file_id: String,
    /// The file's owner.
    pub owner: String,
    /// Created (unix ms).
    pub created_at: i64,
    /// When it stops working (unix ms).
    pub expires_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// A stored content: where its object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRow {
    /// BLAKE3 (hex).
    pub hash: String,
    /// The object's key.
    pub blob_key: String,
    /// Bytes.
    pub size: u64,
    /// `hot` or `cold`.
    pub tier: String,
}

/// The file storage's tables.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn upload_of(row: &AnyRow) -> Result<Upload, InfraError> {
    let kind: String = row.try_get("kind")?;
    let parts: Option<String> = row.try_get("parts")?;
    Ok(Upload {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        kind: UploadKind::parse(&kind)
            .ok_or_else(|| InfraError::Config(format!("files_uploads.kind {kind:?} is unknown")))?,
        length: row.try_get::<Option<i64>, _>("length")?.map(u),
        offset: u(row.try_get("upload_offset")?),
        append_state: row.try_get("append_state")?,
        metadata: row.try_get("metadata")?,
        parts: parts
            .map(|p| serde_json::from_str(&p).unwrap_or_default())
            .unwrap_or_default(),
        blob_key: row.try_get("blob_key")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}

fn file_of(row: &AnyRow) -> Result<FileMeta, InfraError> {
    let status: String = row.try_get("status")?;
    let tags: String = row.try_get("tags")?;
    Ok(FileMeta {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        content_type: row.try_get("content_type")?,
        sniffed_type: row.try_get("sniffed_type")?,
        size: u(row.try_get("size")?),
        blake3: row.try_get("blake3")?,
        sha256: row.try_get("sha256")?,
        status: FileStatus::parse(&status).unwrap_or(FileStatus::Quarantined),
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// Adds `amount` to `owner`'s usage unless that passes `quota`; `false` when it would.
async fn reserve(
    conn: &mut AnyConnection,
    owner: &str,
    amount: Amount,
    quota: Quota,
) -> Result<bool, InfraError> {
    // One statement: the account's first reservation inserts its row, the next ones add to
    // it; neither may pass the quota.
    let done = sqlx::query(
        "INSERT INTO files_usage (owner, bytes, files) SELECT $1, $2, $3 WHERE $2 <= $4 AND $3 <= $5 \
         ON CONFLICT (owner) DO UPDATE SET bytes = files_usage.bytes + excluded.bytes, \
         files = files_usage.files + excluded.files \
         WHERE files_usage.bytes + excluded.bytes <= $4 AND files_usage.files + excluded.files <= $5",
    )
    .bind(owner)
    .bind(i(amount.bytes))
    .bind(i(amount.files))
    .bind(i(quota.max_bytes))
    .bind(i(quota.max_files))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Gives `amount` of `owner`'s usage back (never below zero).
async fn release(conn: &mut AnyConnection, owner: &str, amount: Amount) -> Result<(), InfraError> {
    sqlx::query(
        "UPDATE files_usage SET bytes = CASE WHEN bytes > $2 THEN bytes - $2 ELSE 0 END, \
         files = CASE WHEN files > $3 THEN files - $3 ELSE 0 END WHERE owner = $1",
    )
    .bind(owner)
    .bind(i(amount.bytes))
    .bind(i(amount.files))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// The store on `db` (the file storage's migrations applied).
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The quota of `owner`: its own when an admin set one, `default` otherwise.
    pub async fn quota(&self, owner: &str, default: Quota) -> Result<Quota, InfraError> {
        let row = sqlx::query("SELECT max_bytes, max_files FROM files_quotas WHERE owner = $1")
            .bind(owner)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(match row {
            Some(row) => Quota {
                max_bytes: u(row.try_get("max_bytes")?),
                max_files: u(row.try_get("max_files")?),
            },
            None => default,
        })
    }

    /// Sets `owner`'s own quota.
    pub async fn set_quota(&self, owner: &str, quota: Quota) -> Result<(), InfraError> {
        sqlx::query(
            "INSERT INTO files_quotas (owner, max_bytes, max_files) VALUES ($1, $2, $3) \
             ON CONFLICT (owner) DO UPDATE SET max_bytes = $2, max_files = $3",
        )
        .bind(owner)
        .bind(i(quota.max_bytes))
        .bind(i(quota.max_files))
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// What `owner` holds, against `quota`.
    pub async fn usage(&self, owner: &str, quota: Quota) -> Result<FileUsage, InfraError> {
        let row = sqlx::query("SELECT bytes, files FROM files_usage WHERE owner = $1")
            .bind(owner)
            .fetch_optional(self.db.pool())
            .await?;
        let (bytes, files) = match row {
            Some(row) => (u(row.try_get("bytes")?), u(row.try_get("files")?)),
            None => (0, 0),
        };
        Ok(FileUsage {
            bytes,
            files,
            max_bytes: quota.max_bytes,
            max_files: quota.max_files,
        })
    }

    /// Creates `upload`, reserving `amount` of its owner's quota; `false` (and nothing
    /// created) when that would pass `quota`.
    pub async fn create_upload(
        &self,
        upload: &Upload,
        amount: Amount,
        quota: Quota,
    ) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        if !reserve(&mut tx, &upload.owner, amount, quota).await? {
            return Ok(false);
        }
        let parts = (upload.kind == UploadKind::Final)
            .then(|| serde_json::to_string(&upload.parts).unwrap_or_default());
        sqlx::query(
            "INSERT INTO files_uploads (id, owner, kind, length, upload_offset, append_state, \
             metadata, parts, blob_key, created_at, expires_at, completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL)",
        )
        .bind(&upload.id)
        .bind(&upload.owner)
        .bind(upload.kind.as_str())
        .bind(upload.length.map(i))
        .bind(i(upload.offset))
        .bind(&upload.append_state)
        .bind(&upload.metadata)
        .bind(parts)
        .bind(&upload.blob_key)
        .bind(upload.created_at)
        .bind(upload.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The upload `id`.
    pub async fn upload(&self, id: &str) -> Result<Option<Upload>, InfraError> {
        let sql = format!("SELECT {UPLOAD_COLUMNS} FROM files_uploads WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(upload_of).transpose()
    }

    /// Sets the length of a deferred upload under `token`'s lease (reserving the bytes still
    /// to come). `Ok(false)` when that passes the quota; [`InfraError::Busy`] when the lease
    /// was lost or the length is set already (nothing changed).
    pub async fn set_length(
        &self,
        upload: &Upload,
        length: u64,
        quota: Quota,
        token: &str,
    ) -> Result<bool, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let set = sqlx::query(
            "UPDATE files_uploads SET length = $2 WHERE id = $1 AND length IS NULL \
             AND upload_offset = $3 AND lock_owner = $4",
        )
        .bind(&upload.id)
        .bind(i(length))
        .bind(i(upload.offset))
        .bind(token)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if set != 1 {
            return Err(InfraError::Busy(format!(
                "upload {} changed while this request held it (its lease expired); send HEAD and resume",
                upload.id
            )));
        }
        let amount = Amount {
            bytes: length.saturating_sub(upload.offset),
            files: 0,
        };
        if !reserve(&mut tx, &upload.owner, amount, quota).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Takes the lease of upload `id` at `offset` for `token`, for `lease_ms` on the
    /// database's clock (the one clock every process agrees on): only an incomplete upload at
    /// that offset whose lease is free or expired can be taken.
    pub async fn take_lease(
        &self,
        id: &str,
        offset: u64,
        token: &str,
        lease_ms: i64,
    ) -> Result<Lease, InfraError> {
        let now = self.db.backend().now_ms_sql();
        let sql = format!(
            "UPDATE files_uploads SET lock_owner = $3, lock_until = {now} + $4 \
             WHERE id = $1 AND upload_offset = $2 AND completed_at IS NULL \
             AND (lock_owner IS NULL OR lock_until < {now})"
        );
        let taken = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(i(offset))
            .bind(token)
            .bind(lease_ms)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        if taken == 1 {
            return Ok(Lease::Taken);
        }
        Ok(match self.upload(id).await? {
            None => Lease::Missing,
            Some(u) if u.completed_at.is_some() => Lease::Completed,
            Some(u) if u.offset != offset => Lease::OffsetMoved(u.offset),
            Some(_) => Lease::Busy,
        })
    }

    /// Extends `token`'s lease by `lease_ms` from now on the database's clock; `false` when it
    /// no longer holds it.
    pub async fn renew_lease(
        &self,
        id: &str,
        token: &str,
        lease_ms: i64,
    ) -> Result<bool, InfraError> {
        let now = self.db.backend().now_ms_sql();
        let sql = format!(
            "UPDATE files_uploads SET lock_until = {now} + $3 WHERE id = $1 AND lock_owner = $2"
        );
        let renewed = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(token)
            .bind(lease_ms)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        Ok(renewed == 1)
    }

    /// Gives `token`'s lease back without recording anything.
    pub async fn release_lease(&self, id: &str, token: &str) -> Result<(), InfraError> {
        sqlx::query(
            "UPDATE files_uploads SET lock_owner = NULL, lock_until = 0 WHERE id = $1 AND lock_owner = $2",
        )
        .bind(id)
        .bind(token)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Records an append made under `token`'s lease: the new offset and blob state, a new
    /// expiry, (for a deferred upload) the new bytes against the quota, and (when the body's
    /// end is the upload's end) the length. The lease is released, or kept for
    /// `record.hold_lease_ms` more when the caller goes on to complete the upload under it.
    pub async fn record_append(
        &self,
        upload: &Upload,
        token: &str,
        record: &AppendRecord<'_>,
        quota: Quota,
    ) -> Result<Recorded, InfraError> {
        let mut tx = self.db.begin_write().await?;
        if upload.length.is_none() {
            let amount = Amount {
                bytes: record.offset.saturating_sub(upload.offset),
                files: 0,
            };
            if !reserve(&mut tx, &upload.owner, amount, quota).await? {
                return Ok(Recorded::OverQuota);
            }
        }
        // $7: the lease's extension in ms, 0 to release it; $8: 1 when the offset becomes the
        // length.
        let now = self.db.backend().now_ms_sql();
        let sql = format!(
            "UPDATE files_uploads SET upload_offset = $3, append_state = $4, expires_at = $5, \
             length = CASE WHEN $8 = 1 THEN $3 ELSE length END, \
             lock_owner = CASE WHEN $7 > 0 THEN lock_owner ELSE NULL END, \
             lock_until = CASE WHEN $7 > 0 THEN {now} + $7 ELSE 0 END \
             WHERE id = $1 AND lock_owner = $2 AND upload_offset = $6"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(&upload.id)
            .bind(token)
            .bind(i(record.offset))
            .bind(record.state)
            .bind(record.expires_at)
            .bind(i(upload.offset))
            .bind(record.hold_lease_ms.unwrap_or(0).max(0))
            .bind(i64::from(record.sets_length))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if done != 1 {
            return Ok(Recorded::LostLease);
        }
        tx.commit().await?;
        Ok(Recorded::Done)
    }

    /// Records the object a final upload was concatenated into (its offset and blob state),
    /// under `token`'s lease; `false` when the lease was lost.
    pub async fn record_concatenated(
        &self,
        upload: &Upload,
        token: &str,
    ) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "UPDATE files_uploads SET upload_offset = $2, append_state = $3 \
             WHERE id = $1 AND lock_owner = $4",
        )
        .bind(&upload.id)
        .bind(i(upload.offset))
        .bind(&upload.append_state)
        .bind(token)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Completes a full upload under `token`'s lease: a partial one is marked sealed; a single
    /// or final one becomes `file`, referencing its content's blob (the upload's own object
    /// when the content is new). A final upload consumes its partial uploads in the same
    /// transaction: their rows go and the bytes they held move to the file (bytes of a
    /// partial another final consumed first are added); the consumed uploads are returned
    /// for their objects to be deleted.
    pub async fn complete(
        &self,
        upload: &Upload,
        file: Option<(&FileMeta, &Content)>,
        now: i64,
        token: &str,
    ) -> Result<Completion, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let marked = sqlx::query(
            "UPDATE files_uploads SET completed_at = $2, lock_owner = NULL, lock_until = 0 \
             WHERE id = $1 AND completed_at IS NULL AND lock_owner = $3",
        )
        .bind(&upload.id)
        .bind(now)
        .bind(token)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked != 1 {
            return Ok(Completion::AlreadyDone);
        }
        let done = file_it(&mut tx, self.db.backend(), upload, file, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Records the append that filled an upload and completes it, in one transaction: what
    /// [`Store::record_append`] then [`Store::complete`] do, for an append whose object is
    /// already sealed (the blob store wrote it whole). The same conditions hold: the lease is
    /// `token`'s and the offset is still the one the append started from; otherwise nothing
    /// is recorded (`LostLease`).
    pub async fn record_and_complete(
        &self,
        upload: &Upload,
        token: &str,
        record: &AppendRecord<'_>,
        quota: Quota,
        file: Option<(&FileMeta, &Content)>,
        now: i64,
    ) -> Result<(Recorded, Option<Completion>), InfraError> {
        let mut tx = self.db.begin_write().await?;
        if upload.length.is_none() {
            let amount = Amount {
                bytes: record.offset.saturating_sub(upload.offset),
                files: 0,
            };
            if !reserve(&mut tx, &upload.owner, amount, quota).await? {
                return Ok((Recorded::OverQuota, None));
            }
        }
        let done = sqlx::query(
            "UPDATE files_uploads SET upload_offset = $3, append_state = $4, expires_at = $5, \
             length = CASE WHEN $7 = 1 THEN $3 ELSE length END, completed_at = $8, \
             lock_owner = NULL, lock_until = 0 \
             WHERE id = $1 AND lock_owner = $2 AND upload_offset = $6 AND completed_at IS NULL",
        )
        .bind(&upload.id)
        .bind(token)
        .bind(i(record.offset))
        .bind(record.state)
        .bind(record.expires_at)
        .bind(i(upload.offset))
        .bind(i64::from(record.sets_length))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done != 1 {
            return Ok((Recorded::LostLease, None));
        }
        let mut full = upload.clone();
        full.offset = record.offset;
        let completion = file_it(&mut tx, self.db.backend(), &full, file, now).await?;
        tx.commit().await?;
        Ok((Recorded::Done, Some(completion)))
    }

    /// Deletes an upload that is not a file (terminated, expired, or a partial one consumed
    /// by a concatenation), giving back what it reserved. `None` when it does not exist (or
    /// is a completed single or final upload, which only goes with its file).
    pub async fn delete_upload(&self, id: &str) -> Result<Option<Upload>, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "DELETE FROM files_uploads WHERE id = $1 AND (completed_at IS NULL OR kind = 'partial') \
             RETURNING {UPLOAD_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let upload = upload_of(&row)?;
        let amount = Amount {
            bytes: upload.reserved_bytes(),
            files: upload.reserved_files(),
        };
        release(&mut tx, &upload.owner, amount).await?;
        tx.commit().await?;
        Ok(Some(upload))
    }
}

/// The rest of a completion, in its transaction (the upload is marked complete): a partial
/// upload is sealed; a single or final one becomes `file`, referencing its content's blob.
async fn file_it(
    tx: &mut AnyConnection,
    backend: praxis_infra::Backend,
    upload: &Upload,
    file: Option<(&FileMeta, &Content)>,
    now: i64,
) -> Result<Completion, InfraError> {
    let Some((file, content)) = file else {
        return Ok(Completion::Sealed);
    };
    let row = sqlx::query(
        "INSERT INTO files_blobs (hash, blob_key, size, refs, tier, created_at) \
             VALUES ($1, $2, $3, 1, 'hot', $4) \
             ON CONFLICT (hash) DO UPDATE SET refs = files_blobs.refs + 1 RETURNING blob_key",
    )
    .bind(&content.blake3)
    .bind(&upload.blob_key)
    .bind(i(content.size))
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let blob_key: String = row.try_get("blob_key")?;
    insert_file(&mut *tx, file).await?;
    // A single upload reserved its bytes at creation (or as they came, deferred) and its
    // file count at creation: nothing moves. A final one takes its partials' bytes.
    let consumed = if upload.kind == UploadKind::Final {
        consume_partials(&mut *tx, backend, upload).await?
    } else {
        Vec::new()
    };
    let duplicate = blob_key != upload.blob_key;
    Ok(Completion::Filed {
        blob_key,
        duplicate,
        consumed,
    })
}

impl Store {
    /// The file `id`.
    pub async fn file(&self, id: &str) -> Result<Option<FileMeta>, InfraError> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files_files WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(file_of).transpose()
    }

    /// A page of `owner`'s files, newest first, after the cursor (`created_at`, `id`).
    pub async fn list_files(
        &self,
        owner: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<FileMeta>, InfraError> {
        let (at, id) = after.unwrap_or((i64::MAX, String::new()));
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files_files WHERE owner = $1 \
             AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(owner)
            .bind(at)
            .bind(if id.is_empty() {
                "\u{10ffff}".to_owned()
            } else {
                id
            })
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(file_of).collect()
    }

    /// Where content `hash` is stored.
    pub async fn blob(&self, hash: &str) -> Result<Option<BlobRow>, InfraError> {
        let row = sqlx::query("SELECT hash, blob_key, size, tier FROM files_blobs WHERE hash = $1")
            .bind(hash)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|row| {
            Ok(BlobRow {
                hash: row.try_get("hash")?,
                blob_key: row.try_get("blob_key")?,
                size: u(row.try_get("size")?),
                tier: row.try_get("tier")?,
            })
        })
        .transpose()
    }

    /// Deletes file `id` (of `owner`, or of anyone when `owner` is `None`), its upload row and
    /// links, gives its bytes back, and drops its blob reference.
    pub async fn delete_file(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<Deleted>, InfraError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "DELETE FROM files_files WHERE id = $1 AND ($2 IS NULL OR owner = $2) RETURNING {FILE_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let file = file_of(&row)?;
        sqlx::query("DELETE FROM files_uploads WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM files_links WHERE file_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        release(
            &mut tx,
            &file.owner,
            Amount {
                bytes: file.size,
                files: 1,
            },
        )
        .await?;
        sqlx::query("UPDATE files_blobs SET refs = refs - 1 WHERE hash = $1")
            .bind(&file.blake3)
            .execute(&mut *tx)
            .await?;
        let orphan = sqlx::query(
            "DELETE FROM files_blobs WHERE hash = $1 AND refs <= 0 RETURNING blob_key, tier",
        )
        .bind(&file.blake3)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| Ok::<_, InfraError>((row.try_get("blob_key")?, row.try_get("tier")?)))
        .transpose()?;
        tx.commit().await?;
        Ok(Some(Deleted { file, orphan }))
    }

    /// Sets a file's scanner status.
    pub async fn set_status(&self, id: &str, status: FileStatus) -> Result<(), InfraError> {
        sqlx::query("UPDATE files_files SET status = $2 WHERE id = $1")
            .bind(id)
            .bind(status.as_str())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Up to `limit` files whose SHA-256 is not known yet and not put off past `now`, those
    /// never tried (or put off longest ago) first.
    pub async fn unsummed_files(&self, now: i64, limit: u32) -> Result<Vec<FileMeta>, InfraError> {
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files_files WHERE sha256 IS NULL AND checksum_retry_at <= $1 \
             ORDER BY checksum_retry_at, created_at LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(file_of).collect()
    }

    /// Puts off file `id`'s checksum until `until` (unix ms): it failed.
    pub async fn defer_checksum(&self, id: &str, until: i64) -> Result<(), InfraError> {
        sqlx::query("UPDATE files_files SET checksum_retry_at = $2 WHERE id = $1")
            .bind(id)
            .bind(until)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Puts off file `id`'s scan until `until` (unix ms): the scanner could not decide.
    pub async fn defer_scan(&self, id: &str, until: i64) -> Result<(), InfraError> {
        sqlx::query("UPDATE files_files SET scan_retry_at = $2 WHERE id = $1")
            .bind(id)
            .bind(until)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// The SHA-256 of content `blake3`, when a file of it has one already.
    pub async fn known_sha256(&self, blake3: &str) -> Result<Option<String>, InfraError> {
        let row = sqlx::query(
            "SELECT sha256 FROM files_files WHERE blake3 = $1 AND sha256 IS NOT NULL LIMIT 1",
        )
        .bind(blake3)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| Ok(r.try_get("sha256")?)).transpose()
    }

    /// Sets the SHA-256 of every file of content `blake3` that has none.
    pub async fn set_sha256(&self, blake3: &str, sha256: &str) -> Result<u64, InfraError> {
        let done =
            sqlx::query("UPDATE files_files SET sha256 = $2 WHERE blake3 = $1 AND sha256 IS NULL")
                .bind(blake3)
                .bind(sha256)
                .execute(self.db.pool())
                .await?
                .rows_affected();
        Ok(done)
    }

    /// Up to `limit` files waiting for the scanner and not put off past `now`, those never
    /// tried (or put off longest ago) first.
    pub async fn pending_files(&self, now: i64, limit: u32) -> Result<Vec<FileMeta>, InfraError> {
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files_files WHERE status = 'pending' AND scan_retry_at <= $1 \
             ORDER BY scan_retry_at, created_at LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(file_of).collect()
    }

    /// Up to `limit` uploads that expired before `now` and hold no live lease (on the
    /// database's clock): incomplete ones, and partial ones no concatenation used in time. (A
    /// full upload whose completion was interrupted is not among them:
    /// [`Store::stalled_completions`] finishes it.)
    pub async fn expired_uploads(&self, now: i64, limit: u32) -> Result<Vec<Upload>, InfraError> {
        let clock = self.db.backend().now_ms_sql();
        let sql = format!(
            "SELECT {UPLOAD_COLUMNS} FROM files_uploads WHERE expires_at < $1 AND lock_until < {clock} \
             AND ((completed_at IS NULL AND (length IS NULL OR upload_offset < length)) OR kind = 'partial') \
             ORDER BY expires_at LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(upload_of).collect()
    }

    /// Full uploads whose completion did not finish: the request that filled them held the
    /// lease through the completion, so a full upload whose lease expired (on the database's
    /// clock) was abandoned by a crash.
    pub async fn stalled_completions(&self, limit: u32) -> Result<Vec<Upload>, InfraError> {
        let clock = self.db.backend().now_ms_sql();
        let sql = format!(
            "SELECT {UPLOAD_COLUMNS} FROM files_uploads WHERE completed_at IS NULL \
             AND length IS NOT NULL AND upload_offset = length AND lock_until < {clock} LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(upload_of).collect()
    }

    /// Up to `limit` files whose TTL passed before `now`.
    pub async fn expired_files(&self, now: i64, limit: u32) -> Result<Vec<String>, InfraError> {
        let rows = sqlx::query(
            "SELECT id FROM files_files WHERE expires_at IS NOT NULL AND expires_at < $1 LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// Up to `limit` hot blobs created before `before`.
    pub async fn cold_candidates(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<BlobRow>, InfraError> {
        let rows = sqlx::query(
            "SELECT hash, blob_key, size, tier FROM files_blobs WHERE tier = 'hot' AND created_at < $1 \
             AND refs > 0 ORDER BY created_at LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(BlobRow {
                    hash: row.try_get("hash")?,
                    blob_key: row.try_get("blob_key")?,
                    size: u(row.try_get("size")?),
                    tier: row.try_get("tier")?,
                })
            })
            .collect()
    }

    /// Marks content `hash`, stored under `blob_key` in the hot tier, as moved to `tier`;
    /// `false` when that row is gone (deleted meanwhile, or replaced by a new upload of the
    /// same content under another key: the copy is then the caller's to delete).
    pub async fn set_tier(
        &self,
        hash: &str,
        blob_key: &str,
        tier: &str,
    ) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "UPDATE files_blobs SET tier = $2 WHERE hash = $1 AND blob_key = $3 AND tier = 'hot'",
        )
        .bind(hash)
        .bind(tier)
        .bind(blob_key)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Creates a public link.
    pub async fn create_link(&self, link: &Link) -> Result<(), InfraError> {
        sqlx::query(
            "INSERT INTO files_links (token, file_id, owner, created_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(&link.token)
        .bind(&link.file_id)
        .bind(&link.owner)
        .bind(link.created_at)
        .bind(link.expires_at)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// The link `token`.
    pub async fn link(&self, token: &str) -> Result<Option<Link>, InfraError> {
        let row = sqlx::query(
            "SELECT token, file_id, owner, created_at, expires_at, revoked_at FROM files_links WHERE token = $1",
        )
        .bind(token)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(Link {
                token: row.try_get("token")?,
                file_id: row.try_get("file_id")?,
                owner: row.try_get("owner")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .transpose()
    }

    /// Revokes link `token` of `owner`; `false` when there is no such link of theirs.
    pub async fn revoke_link(
        &self,
        token: &str,
        owner: &str,
        now: i64,
    ) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "UPDATE files_links SET revoked_at = COALESCE(revoked_at, $3) WHERE token = $1 AND owner = $2",
        )
        .bind(token)
        .bind(owner)
        .bind(now)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }
}

/// Deletes the partial uploads of `final_upload` (its owner's, completed) and keeps the bytes
/// they held reserved for the final upload's file; bytes of partials that are gone already
/// (another final consumed them) are added to the usage, whatever the quota (the file exists).
async fn consume_partials(
    conn: &mut AnyConnection,
    backend: praxis_infra::Backend,
    final_upload: &Upload,
) -> Result<Vec<Upload>, InfraError> {
    if final_upload.parts.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "DELETE FROM files_uploads WHERE id IN ({}) AND kind = 'partial' AND owner = ${} \
         AND completed_at IS NOT NULL RETURNING {UPLOAD_COLUMNS}",
        backend.placeholders(1, final_upload.parts.len(), 1),
        final_upload.parts.len() + 1
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for part in &final_upload.parts {
        q = q.bind(part);
    }
    let rows = q.bind(&final_upload.owner).fetch_all(&mut *conn).await?;
    let consumed = rows.iter().map(upload_of).collect::<Result<Vec<_>, _>>()?;
    let held: u64 = consumed.iter().map(Upload::reserved_bytes).sum();
    let missing = final_upload.offset.saturating_sub(held);
    if missing > 0 {
        let unlimited = Quota {
            max_bytes: u64::MAX >> 1,
            max_files: u64::MAX >> 1,
        };
        reserve(
            conn,
            &final_upload.owner,
            Amount {
                bytes: missing,
                files: 0,
            },
            unlimited,
        )
        .await?;
    }
    Ok(consumed)
}

async fn insert_file(conn: &mut AnyConnection, f: &FileMeta) -> Result<(), InfraError> {
    sqlx::query(
        "INSERT INTO files_files (id, owner, name, content_type, sniffed_type, size, blake3, sha256, \
         status, tags, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&f.id)
    .bind(&f.owner)
    .bind(&f.name)
    .bind(&f.content_type)
    .bind(&f.sniffed_type)
    .bind(i(f.size))
    .bind(&f.blake3)
    .bind(&f.sha256)
    .bind(f.status.as_str())
    .bind(serde_json::to_string(&f.tags).unwrap_or_else(|_| "[]".into()))
    .bind(f.created_at)
    .bind(f.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

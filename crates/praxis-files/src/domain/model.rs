//! The file storage's records.

use serde::{Deserialize, Serialize};

/// What an upload becomes (tus concatenation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadKind {
    /// An ordinary upload: a file once complete.
    Single,
    /// A part of a later concatenation (`Upload-Concat: partial`): never a file by itself.
    Partial,
    /// The concatenation of partial uploads (`Upload-Concat: final;...`).
    Final,
}

impl UploadKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadKind::Single => "single",
            UploadKind::Partial => "partial",
            UploadKind::Final => "final",
        }
    }

    /// From the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "single" => Some(UploadKind::Single),
            "partial" => Some(UploadKind::Partial),
            "final" => Some(UploadKind::Final),
            _ => None,
        }
    }
}

/// An upload in progress (or completed: its row stays until the file is deleted, so the
/// upload URL keeps answering HEAD and GET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Its id (the file's too).
    pub id: String,
    /// The account that created it.
    pub owner: String,
    /// Single, partial or final.
    pub kind: UploadKind,
    /// Its declared length; `None` while deferred.
    pub length: Option<u64>,
    /// The durable offset.
    pub offset: u64,
    /// The blob store's state of its object (JSON of `Appending`).
    pub append_state: String,
    /// The `Upload-Metadata` header as created.
    pub metadata: String,
    /// The partial uploads a final upload concatenates.
    pub parts: Vec<String>,
    /// The key of its object in the blob store.
    pub blob_key: String,
    /// Created (unix ms).
    pub created_at: i64,
    /// When an incomplete upload expires (unix ms).
    pub expires_at: i64,
    /// When it completed.
    pub completed_at: Option<i64>,
}

impl Upload {
    /// Whether every declared byte has arrived.
    pub fn is_full(&self) -> bool {
        self.length == Some(self.offset)
    }

    /// Bytes this upload holds against its owner's quota: its declared length, or what has
    /// arrived while the length is deferred. A final upload holds none: its partial uploads
    /// hold its bytes until its completion moves them to its file (so a concatenation never
    /// needs twice the quota).
    pub fn reserved_bytes(&self) -> u64 {
        if self.kind == UploadKind::Final {
            return 0;
        }
        self.length.unwrap_or(self.offset)
    }

    /// Files it holds against the quota: a partial upload is not a file.
    pub fn reserved_files(&self) -> u64 {
        u64::from(self.kind != UploadKind::Partial)
    }
}

/// Where a file stands with the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// Waiting for the configured scanner; not downloadable yet.
    Pending,
    /// Downloadable.
    Ready,
    /// The scanner refused it; never downloadable.
    Quarantined,
}

impl FileStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Pending => "pending",
            FileStatus::Ready => "ready",
            FileStatus::Quarantined => "quarantined",
        }
    }

    /// From the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(FileStatus::Pending),
            "ready" => Some(FileStatus::Ready),
            "quarantined" => Some(FileStatus::Quarantined),
            _ => None,
        }
    }
}

/// A stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Its id.
    pub id: String,
    /// Its owner.
    pub owner: String,
    /// Its name (from the upload's metadata, or the simple upload's).
    pub name: String,
    /// The declared content type.
    pub content_type: String,
    /// The type its first bytes show, when recognisable.
    pub sniffed_type: Option<String>,
    /// Bytes.
    pub size: u64,
    /// BLAKE3 of the content (hex): its blob.
    pub blake3: String,
    /// SHA-256 of the content (hex); `None` until the checksum worker read it.
    pub sha256: Option<String>,
    /// Scanner status.
    pub status: FileStatus,
    /// Tags.
    pub tags: Vec<String>,
    /// Created (unix ms).
    pub created_at: i64,
    /// When it expires (unix ms), for files with a TTL.
    pub expires_at: Option<i64>,
}

impl FileMeta {
    /// Its strong entity tag: the content's BLAKE3, so identical content has one tag.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.blake3)
    }

    /// Whether the declared and sniffed types disagree (then it is served as an attachment
    /// of type `application/octet-stream`).
    pub fn type_mismatch(&self) -> bool {
        self.sniffed_type
            .as_deref()
            .is_some_and(|sniffed| !same_type(sniffed, &self.content_type))
    }
}

/// Whether two media types name the same type (parameters and case ignored).
pub fn same_type(a: &str, b: &str) -> bool {
    let bare = |t: &str| {
        t.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    bare(a) == bare(b)
}

/// What a new file is made of: the content's description, known at completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// Bytes.
    pub size: u64,
    /// BLAKE3 (hex).
    pub blake3: String,
    /// The sniffed type.
    pub sniffed_type: Option<String>,
}

/// What the account holds and may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FileUsage {
    /// Bytes held by files and reserved by uploads in progress.
    pub bytes: u64,
    /// Files held and uploads in progress that will be files.
    pub files: u64,
    /// The account's byte quota.
    pub max_bytes: u64,
    /// The account's file quota.
    pub max_files: u64,
}

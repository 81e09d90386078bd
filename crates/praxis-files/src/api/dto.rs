//! Request and response bodies of the file routes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::model::{FileMeta, FileStatus};

/// A file, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileView {
    /// Its id (also its tus upload id).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The declared content type.
    pub content_type: String,
    /// The type its first bytes show, when recognisable.
    pub sniffed_type: Option<String>,
    /// Whether the declared and sniffed types disagree (it is then served as an attachment
    /// of type application/octet-stream).
    pub type_mismatch: bool,
    /// Bytes.
    pub size: u64,
    /// BLAKE3 of the content, hex (its ETag).
    pub blake3: String,
    /// SHA-256 of the content, hex; null for a moment after the upload completes (it is
    /// computed in the background, off the upload path).
    pub sha256: Option<String>,
    /// Scanner status.
    pub status: FileStatus,
    /// Its owner.
    pub owner: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Created (RFC 3339, UTC).
    pub created_at: String,
    /// When it expires (RFC 3339), for a file with a TTL.
    pub expires_at: Option<String>,
    /// Where its bytes are (for its owner).
    pub content_url: String,
}

/// RFC 3339 of unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl From<&FileMeta> for FileView {
    fn from(f: &FileMeta) -> Self {
        Self {
            id: f.id.clone(),
            name: f.name.clone(),
            content_type: f.content_type.clone(),
            sniffed_type: f.sniffed_type.clone(),
            type_mismatch: f.type_mismatch(),
            size: f.size,
            blake3: f.blake3.clone(),
            sha256: f.sha256.clone(),
            status: f.status,
            owner: f.owner.clone(),
            tags: f.tags.clone(),
            created_at: rfc3339(f.created_at),
            expires_at: f.expires_at.map(rfc3339),
            content_url: format!("/api/v1/files/{}/content", f.id),
        }
    }
}

/// A page of files.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilePage {
    /// The files, newest first.
    pub items: Vec<FileView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Paging of the file list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size (1 to page_max).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The JSON Schema pattern of a file name: no control characters.
pub const NAME_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]+$";
/// The pattern of a tag list: up to 20 comma-separated tags of up to 64 printable ASCII
/// characters.
pub const TAGS_PATTERN: &str = r"^[\x20-\x2b\x2d-\x7e]{0,64}(,[\x20-\x2b\x2d-\x7e]{0,64}){0,19}$";
/// The pattern of a time to live: numbers with units, `90s`, `7d`, `1h30m`.
pub const TTL_PATTERN: &str = r"^([0-9]{1,6}(ms|s|m|h|d))+$";

/// A simple upload's description (query of `PUT /api/v1/files/upload`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SimpleUploadParams {
    /// The file's name.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub name: String,
    /// Comma-separated tags (up to 20 of up to 64 characters).
    #[param(pattern = r"^[\x20-\x2b\x2d-\x7e]{0,64}(,[\x20-\x2b\x2d-\x7e]{0,64}){0,19}$")]
    pub tags: Option<String>,
    /// Time to live (`3600s`, `7d`): the file is deleted after it.
    #[param(pattern = r"^([0-9]{1,6}(ms|s|m|h|d))+$")]
    pub ttl: Option<String>,
}

/// The form of `POST /api/v1/files/upload` (send `tags` and `ttl` before `file`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadForm {
    /// Comma-separated tags.
    #[schema(
        nullable = false,
        pattern = r"^[\x20-\x2b\x2d-\x7e]{0,64}(,[\x20-\x2b\x2d-\x7e]{0,64}){0,19}$"
    )]
    pub tags: Option<String>,
    /// Time to live.
    #[schema(nullable = false, pattern = r"^([0-9]{1,6}(ms|s|m|h|d))+$")]
    pub ttl: Option<String>,
    /// The file, with its name and type in its part's headers.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// A method a signed URL may be bound to.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum SignMethod {
    /// GET.
    #[serde(rename = "GET")]
    Get,
    /// HEAD.
    #[serde(rename = "HEAD")]
    Head,
}

/// Asks for a signed URL.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSignRequest {
    /// Seconds it stays valid (1 to signed_url_max_ttl).
    #[schema(minimum = 1)]
    pub expires_in: u64,
    /// The only method it may be used with.
    pub method: Option<SignMethod>,
    /// The only client address it may be used from (IPv4 or IPv6).
    #[schema(format = Ipv4)]
    pub ip: Option<String>,
}

/// A signed URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileSignedUrl {
    /// The URL (path and query; relative to this server).
    pub url: String,
    /// When it stops working (RFC 3339).
    pub expires_at: String,
}

/// Asks for a public link.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileLinkRequest {
    /// Seconds it stays valid; forever (until revoked) when absent.
    #[schema(minimum = 1, maximum = 3_153_600_000_u64)]
    pub expires_in: Option<u64>,
}

/// A public link.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileLinkView {
    /// Its token.
    pub token: String,
    /// The URL anyone may download from (relative to this server).
    pub url: String,
    /// The file.
    pub file_id: String,
    /// When it stops working (RFC 3339), if ever.
    pub expires_at: Option<String>,
}

/// An account's quota, as an admin sets it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileQuotaRequest {
    /// Bytes the account may hold.
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub max_bytes: u64,
    /// Files the account may hold.
    #[schema(minimum = 1, maximum = 9_223_372_036_854_775_807_u64)]
    pub max_files: u64,
}

//! The file storage's error type and how it becomes a problem response.

use axum::http::StatusCode;
use praxis_http::{FieldError, Problem};
use praxis_infra::InfraError;

/// Everything a file operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The input is invalid; each field error (a header, a query parameter) says what to
    /// change.
    #[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// No such upload or file among the caller's.
    #[error("{0}")]
    NotFound(String),
    /// The upload expired (its bytes are gone or going): 410.
    #[error("{0}")]
    Gone(String),
    /// The client's `Upload-Offset` is not the upload's: 409, naming the current one.
    #[error(
        "Upload-Offset is {sent} but the upload is at {current}; send HEAD and resume from there"
    )]
    OffsetMismatch {
        /// What the client sent.
        sent: u64,
        /// The durable offset.
        current: u64,
    },
    /// The request conflicts with the upload's state (e.g. PATCH on a final upload).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// Another request is appending to this upload: 423, retry shortly.
    #[error("{0}")]
    Locked(String),
    /// The body's digest differs from its `Upload-Checksum`: 460, nothing was kept.
    #[error(
        "the body's {0} digest does not match Upload-Checksum; nothing was kept, resend the chunk"
    )]
    ChecksumMismatch(&'static str),
    /// More bytes than the upload's length, max_size or the quota allow: 413.
    #[error("{1}")]
    TooLarge(&'static str, String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A content type the route does not take (PATCH without
    /// `application/offset+octet-stream`): 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request body failed before it ended (client gone, idle timeout).
    #[error("the request body ended early: {0}")]
    BodyFailed(String),
    /// A dependency failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl FilesError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        FilesError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<sqlx::Error> for FilesError {
    fn from(e: sqlx::Error) -> Self {
        FilesError::Infra(InfraError::from(e))
    }
}

/// The status tus gives a checksum mismatch.
pub const CHECKSUM_MISMATCH: u16 = 460;

impl From<FilesError> for Problem {
    fn from(e: FilesError) -> Self {
        let detail = e.to_string();
        match e {
            FilesError::Invalid(errors) => Problem::validation(errors),
            FilesError::NotFound(detail) => Problem::not_found(detail),
            FilesError::Gone(detail) => Problem::gone(detail),
            FilesError::OffsetMismatch { .. } => Problem::conflict("offset-mismatch", detail),
            FilesError::Conflict(slug, detail) => Problem::conflict(slug, detail),
            FilesError::Locked(detail) | FilesError::Infra(InfraError::Busy(detail)) => {
                Problem::new(
                    StatusCode::LOCKED,
                    "upload-locked",
                    "Upload is locked",
                    detail,
                )
                .with_retry_after(1)
            }
            FilesError::ChecksumMismatch(_) => Problem::new(
                StatusCode::from_u16(CHECKSUM_MISMATCH).unwrap_or(StatusCode::BAD_REQUEST),
                "checksum-mismatch",
                "Checksum mismatch",
                detail,
            ),
            FilesError::TooLarge(slug, detail) => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                slug,
                "Content too large",
                detail,
            ),
            FilesError::Forbidden(detail) => Problem::forbidden(detail),
            FilesError::UnsupportedMediaType(detail) => Problem::unsupported_media_type(detail),
            FilesError::BodyFailed(detail) => Problem::bad_request("body-failed", detail),
            FilesError::Infra(e) => e.into(),
        }
    }
}

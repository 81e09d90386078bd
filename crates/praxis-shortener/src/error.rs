//! The shortener's error type and how it becomes a problem response.

use axum::http::StatusCode;
use praxis_http::{FieldError, Problem};
use praxis_infra::InfraError;

/// Everything a shortener operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ShortenerError {
    /// The input is invalid; each field error says what to change.
    #[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The alias is already used by another link.
    #[error("alias `{0}` is already taken; choose another or omit alias for a generated code")]
    AliasTaken(String),
    /// No link with this code (or not one the caller may see).
    #[error("no link with code `{0}`")]
    NotFound(String),
    /// The link exists but has expired or used up its visits.
    #[error("link `{0}` has expired or reached its visit limit")]
    Gone(String),
    /// No generated code could be found for the item (code collisions, retry).
    #[error("could not allocate a free code; retry the request")]
    NoFreeCode,
    /// A problem produced by a shared HTTP helper (idempotency, pagination).
    #[error("{0}")]
    Problem(Problem),
    /// A dependency failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl ShortenerError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ShortenerError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<Problem> for ShortenerError {
    fn from(p: Problem) -> Self {
        ShortenerError::Problem(p)
    }
}

impl From<ShortenerError> for Problem {
    fn from(e: ShortenerError) -> Self {
        match e {
            ShortenerError::Invalid(errors) => {
                // The first field names the problem, even when several fail.
                let detail = errors
                    .first()
                    .map(|f| format!("invalid {}: {}", f.field, f.message));
                let mut p = Problem::validation(errors);
                if let Some(detail) = detail {
                    p.detail = detail;
                }
                p
            }
            ShortenerError::AliasTaken(_) => Problem::conflict("alias-taken", e.to_string()),
            ShortenerError::NotFound(_) => Problem::not_found(e.to_string()),
            ShortenerError::Gone(_) => Problem::gone(e.to_string()),
            ShortenerError::NoFreeCode => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no-free-code",
                "No free code",
                e.to_string(),
            ),
            ShortenerError::Problem(p) => p,
            ShortenerError::Infra(e) => e.into(),
        }
    }
}

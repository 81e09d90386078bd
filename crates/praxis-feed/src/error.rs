//! The feed's error type and how it becomes a problem response.

use praxis_http::{FieldError, Problem};
use praxis_infra::InfraError;

/// Everything a feed operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The input is invalid; each field error says what to change.
    #[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// No such resource (or not one the caller may see).
    #[error("{0}")]
    NotFound(String),
    /// A dependency failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl FeedError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        FeedError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<sqlx::Error> for FeedError {
    fn from(e: sqlx::Error) -> Self {
        FeedError::Infra(InfraError::from(e))
    }
}

impl From<FeedError> for Problem {
    fn from(e: FeedError) -> Self {
        match e {
            FeedError::Invalid(errors) => Problem::validation(errors),
            FeedError::NotFound(detail) => Problem::not_found(detail),
            FeedError::Infra(e) => e.into(),
        }
    }
}

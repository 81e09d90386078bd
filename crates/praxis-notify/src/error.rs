//! The notification service's error type and how it becomes a problem response.

use praxis_http::{FieldError, Problem};
use praxis_infra::InfraError;

/// Everything a notification operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
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

impl NotifyError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        NotifyError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<sqlx::Error> for NotifyError {
    fn from(e: sqlx::Error) -> Self {
        NotifyError::Infra(InfraError::from(e))
    }
}

impl From<NotifyError> for Problem {
    fn from(e: NotifyError) -> Self {
        match e {
            NotifyError::Invalid(errors) => Problem::validation(errors),
            NotifyError::NotFound(detail) => Problem::not_found(detail),
            NotifyError::Infra(e) => e.into(),
        }
    }
}

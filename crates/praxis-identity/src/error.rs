//! The identity system's error type and how it becomes a problem response.

use std::time::Duration;

use axum::http::StatusCode;
use praxis_http::{FieldError, Problem};
use praxis_infra::InfraError;

/// Everything an identity operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The input is invalid; each field error says what to change.
    #[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The email is already registered.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Wrong email or password (one answer for both, so accounts cannot be enumerated).
    #[error("the email or password is wrong")]
    BadCredentials,
    /// A refresh token that is unknown, expired, revoked or reused.
    #[error("{0}")]
    BadRefresh(String),
    /// Too many attempts; retry after the given time.
    #[error("too many login attempts; retry in {} s", .0.as_secs().max(1))]
    TooManyAttempts(Duration),
    /// No such resource (or not one the caller may see).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A problem produced by a shared HTTP helper.
    #[error("{0}")]
    Problem(Problem),
    /// A dependency failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
    /// A bug or a crypto failure that should not happen.
    #[error("{0}")]
    Internal(String),
}

impl IdentityError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        IdentityError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<Problem> for IdentityError {
    fn from(p: Problem) -> Self {
        IdentityError::Problem(p)
    }
}

impl From<IdentityError> for Problem {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Invalid(errors) => Problem::validation(errors),
            IdentityError::EmailTaken => Problem::conflict("email-taken", e.to_string()),
            IdentityError::BadCredentials => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "Invalid credentials",
                e.to_string(),
            ),
            IdentityError::BadRefresh(_) => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-refresh-token",
                "Invalid refresh token",
                e.to_string(),
            ),
            IdentityError::TooManyAttempts(wait) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-attempts",
                "Too many attempts",
                e.to_string(),
            )
            .with_retry_after(u32::try_from(wait.as_secs().max(1)).unwrap_or(u32::MAX)),
            IdentityError::NotFound(d) => Problem::not_found(d),
            IdentityError::Forbidden(d) => Problem::forbidden(d),
            IdentityError::Problem(p) => p,
            IdentityError::Infra(e) => e.into(),
            IdentityError::Internal(e) => Problem::internal(e),
        }
    }
}

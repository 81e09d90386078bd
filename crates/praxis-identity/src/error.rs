//! The identity system's error type and how it becomes a problem response.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
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

    /// The problem response for this error.
    pub fn to_problem(&self) -> Problem {
        match self {
            IdentityError::Invalid(errors) => Problem::validation(errors.clone()),
            IdentityError::EmailTaken => Problem::conflict("email-taken", self.to_string()),
            IdentityError::BadCredentials => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "Invalid credentials",
                self.to_string(),
            ),
            IdentityError::BadRefresh(_) => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-refresh-token",
                "Invalid refresh token",
                self.to_string(),
            ),
            IdentityError::TooManyAttempts(_) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-attempts",
                "Too many attempts",
                self.to_string(),
            ),
            IdentityError::NotFound(d) => Problem::not_found(d.clone()),
            IdentityError::Forbidden(d) => Problem::forbidden(d.clone()),
            IdentityError::Problem(p) => p.clone(),
            IdentityError::Infra(e) if e.is_transient() => {
                tracing::warn!(error = %e, "dependency unavailable");
                Problem::unavailable("a dependency is unavailable; retry later")
            }
            IdentityError::Infra(e) => Problem::internal(e),
            IdentityError::Internal(e) => Problem::internal(e),
        }
    }
}

impl From<Problem> for IdentityError {
    fn from(p: Problem) -> Self {
        IdentityError::Problem(p)
    }
}

impl From<IdentityError> for Problem {
    fn from(e: IdentityError) -> Self {
        e.to_problem()
    }
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        let retry = match &self {
            IdentityError::TooManyAttempts(d) => Some(d.as_secs().max(1)),
            _ => None,
        };
        let mut res = self.to_problem().into_response();
        if let Some(secs) = retry
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

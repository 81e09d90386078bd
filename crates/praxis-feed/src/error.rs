//! The feed's error type and how it becomes a problem response.

use axum::response::{IntoResponse, Response};
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
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A problem produced by a shared HTTP helper (idempotency, auth).
    #[error("{0}")]
    Problem(Problem),
    /// A dependency failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl FeedError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        FeedError::Invalid(vec![FieldError::new(field, message)])
    }

    /// The problem response for this error.
    pub fn to_problem(&self) -> Problem {
        match self {
            FeedError::Invalid(errors) => Problem::validation(errors.clone()),
            FeedError::NotFound(detail) => Problem::not_found(detail.clone()),
            FeedError::Forbidden(detail) => Problem::forbidden(detail.clone()),
            FeedError::Problem(p) => p.clone(),
            FeedError::Infra(e) => infra_problem(e),
        }
    }
}

/// A dependency failure as a problem: 503 when retrying may help, 500 otherwise.
pub fn infra_problem(e: &InfraError) -> Problem {
    if e.is_transient() {
        tracing::warn!(error = %e, "dependency unavailable");
        Problem::unavailable("a dependency is unavailable; retry later")
    } else {
        Problem::internal(e)
    }
}

impl From<Problem> for FeedError {
    fn from(p: Problem) -> Self {
        FeedError::Problem(p)
    }
}

impl From<sqlx::Error> for FeedError {
    fn from(e: sqlx::Error) -> Self {
        FeedError::Infra(InfraError::from(e))
    }
}

impl From<FeedError> for Problem {
    fn from(e: FeedError) -> Self {
        e.to_problem()
    }
}

impl IntoResponse for FeedError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

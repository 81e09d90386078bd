//! The notification service's error type and how it becomes a problem response.

use axum::response::{IntoResponse, Response};
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
    /// The request conflicts with the resource's state.
    #[error("{detail}")]
    Conflict {
        /// Problem slug.
        slug: &'static str,
        /// What conflicts.
        detail: String,
    },
    /// A problem produced by a shared HTTP helper (idempotency, pagination, auth).
    #[error("{0}")]
    Problem(Problem),
    /// A dependency failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl NotifyError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        NotifyError::Invalid(vec![FieldError::new(field, message)])
    }

    /// The problem response for this error.
    pub fn to_problem(&self) -> Problem {
        match self {
            NotifyError::Invalid(errors) => Problem::validation(errors.clone()),
            NotifyError::NotFound(detail) => Problem::not_found(detail.clone()),
            NotifyError::Conflict { slug, detail } => Problem::conflict(slug, detail.clone()),
            NotifyError::Problem(p) => p.clone(),
            NotifyError::Infra(e) => infra_problem(e),
        }
    }
}

/// A dependency failure as a problem: 503 when retrying may help, 500 otherwise.
pub fn infra_problem(e: &InfraError) -> Problem {
    if e.is_transient() {
        tracing::warn!(error = %e, "dependency unavailable");
        let what = match e {
            InfraError::Sql(_) => "database",
            InfraError::Redis(_) => "redis",
            InfraError::Nats { .. } => "nats",
            _ => "internal",
        };
        Problem::unavailable(format!("a dependency is unavailable ({what}); retry later"))
    } else {
        Problem::internal(e)
    }
}

impl From<Problem> for NotifyError {
    fn from(p: Problem) -> Self {
        NotifyError::Problem(p)
    }
}

impl From<sqlx::Error> for NotifyError {
    fn from(e: sqlx::Error) -> Self {
        NotifyError::Infra(InfraError::from(e))
    }
}

impl From<NotifyError> for Problem {
    fn from(e: NotifyError) -> Self {
        e.to_problem()
    }
}

impl IntoResponse for NotifyError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

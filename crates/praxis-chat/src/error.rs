//! The chat's error type and how it becomes a problem response.

use praxis_http::{FieldError, Problem};
use praxis_infra::InfraError;

/// Everything a chat operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The input is invalid; each field error says what to change.
    #[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// No such conversation or message among the caller's (a non-member sees nothing).
    #[error("{0}")]
    NotFound(String),
    /// The caller is a member but may not do this (e.g. a member removing someone else).
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the state (e.g. a client id reused with another body).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// A well-formed field does not fit the state of what it names (text for an encrypted
    /// conversation, an envelope from a device not registered, a device's first upload without
    /// identity keys): 409 `conversation-state`, naming the field. The same request is fine
    /// against another state.
    #[error("{}: {}", .0.field, .0.message)]
    State(FieldError),
    /// A limit of the account was reached (`send_rate`, `connections_per_account`); retry
    /// after the duration.
    #[error("{1}")]
    Limited(std::time::Duration, String),
    /// A dependency failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl ChatError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ChatError::Invalid(vec![FieldError::new(field, message)])
    }

    /// One field that does not fit the current state (409).
    pub fn state(field: impl Into<String>, message: impl Into<String>) -> Self {
        ChatError::State(FieldError::new(field, message))
    }
}

impl From<sqlx::Error> for ChatError {
    fn from(e: sqlx::Error) -> Self {
        ChatError::Infra(InfraError::from(e))
    }
}

impl From<ChatError> for Problem {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::Invalid(errors) => Problem::validation(errors),
            ChatError::NotFound(detail) => Problem::not_found(detail),
            ChatError::Forbidden(detail) => Problem::forbidden(detail),
            ChatError::Conflict(slug, detail) => Problem::conflict(slug, detail),
            ChatError::State(error) => {
                let mut p = Problem::conflict("conversation-state", error.message.clone());
                p.errors = vec![error];
                p
            }
            ChatError::Limited(wait, detail) => Problem::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                detail,
            )
            .with_retry_after(u32::try_from(wait.as_secs().max(1)).unwrap_or(u32::MAX)),
            ChatError::Infra(e) => e.into(),
        }
    }
}

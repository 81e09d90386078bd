//! The orders system's error type, and how each error answers over HTTP.

use praxis_http::Problem;
use praxis_infra::InfraError;
use praxis_shard::ShardError;

/// Everything an orders operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    /// The input is invalid: the field and what to change.
    #[error("{field}: {message}")]
    Invalid {
        /// The failing field.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// Well-formed, but it cannot be done here: the field and why (a region this deployment
    /// does not serve, a ring that is not one). 422.
    #[error("{field}: {message}")]
    Unprocessable {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
    /// No such order, region or move.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The sharding layer failed.
    #[error(transparent)]
    Shard(#[from] ShardError),
    /// A dependency failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl OrdersError {
    /// An invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        OrdersError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for OrdersError {
    fn from(e: sqlx::Error) -> Self {
        OrdersError::Infra(InfraError::from(e))
    }
}

impl From<OrdersError> for Problem {
    fn from(e: OrdersError) -> Self {
        let detail = e.to_string();
        match e {
            OrdersError::Invalid { field, message } => Problem::invalid(field, message),
            OrdersError::Unprocessable { field, message } => unprocessable(&field, &message),
            OrdersError::NotFound(detail) => Problem::not_found(detail),
            OrdersError::Conflict(detail) => Problem::conflict("conflict", detail),
            OrdersError::Infra(e) => e.into(),
            OrdersError::Shard(e) => match e {
                ShardError::Moving { .. } | ShardError::Fenced { .. } => {
                    Problem::unavailable(detail).with_retry_after(1)
                }
                ShardError::NoRing(_) | ShardError::UnknownShard { .. } | ShardError::NoMove(_) => {
                    Problem::not_found(detail)
                }
                ShardError::Ring(_) => unprocessable("target", &detail),
                ShardError::Conflict { .. }
                | ShardError::Placed { .. }
                | ShardError::NothingToMove(_)
                | ShardError::Busy { .. }
                | ShardError::Leased(_)
                | ShardError::AbortRequested(_)
                | ShardError::Stale { .. }
                | ShardError::Switched(_)
                | ShardError::VerifyFailed { .. }
                | ShardError::ShadowDiffered { .. } => Problem::conflict("conflict", detail),
                ShardError::Corrupt { .. } => Problem::internal(detail),
                ShardError::Infra(e) => e.into(),
            },
        }
    }
}

/// 422 `unprocessable`, naming the field.
pub fn unprocessable(field: &str, message: &str) -> Problem {
    Problem::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        "Unprocessable request",
        format!("{field}: {message}"),
    )
    .with_field(field, message)
}

//! The commerce system's error type.

use praxis_infra::InfraError;

/// Everything an inventory operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CommerceError {
    /// The input is invalid: the field and what to change.
    #[error("{field}: {message}")]
    Invalid {
        /// The failing field.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// Not enough stock of `sku` in any warehouse for the quantity asked.
    #[error("sku {sku}: {requested} wanted, not available in any one warehouse")]
    OutOfStock {
        /// The SKU.
        sku: String,
        /// The quantity asked for.
        requested: i64,
    },
    /// No such SKU, warehouse or reservation.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with the current state (a reservation that expired, was released
    /// or confirmed; an adjustment below what is reserved).
    #[error("{0}")]
    Conflict(String),
    /// A dependency failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl CommerceError {
    /// An invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CommerceError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for CommerceError {
    fn from(e: sqlx::Error) -> Self {
        CommerceError::Infra(InfraError::from(e))
    }
}

impl From<CommerceError> for praxis_http::Problem {
    fn from(e: CommerceError) -> Self {
        use praxis_http::Problem;
        let detail = e.to_string();
        match e {
            CommerceError::Invalid { field, message } => Problem::invalid(field, message),
            CommerceError::OutOfStock { .. } => Problem::conflict("out-of-stock", detail),
            CommerceError::NotFound(detail) => Problem::not_found(detail),
            CommerceError::Conflict(detail) => Problem::conflict("conflict", detail),
            CommerceError::Infra(e) => e.into(),
        }
    }
}

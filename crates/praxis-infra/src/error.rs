//! The one error type of praxis-infra: which dependency failed and whether a retry can help.

use std::sync::Arc;

/// An infrastructure failure. The variant names the dependency; [`InfraError::is_transient`]
/// tells retry and circuit-breaker logic whether trying again can help.
///
/// Cheap to clone (sources are shared), so one failed load can be handed to every caller
/// that was waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InfraError {
    /// The SQL database (SQLite or PostgreSQL) returned an error or could not be reached.
    #[error("sql: {0}; check that the database at database_url is reachable and migrated")]
    Sql(#[source] Arc<sqlx::Error>),
    /// Redis returned an error or could not be reached.
    #[error("redis: {0}; check that redis_url points at a running Redis")]
    Redis(#[source] Arc<redis::RedisError>),
    /// NATS or JetStream returned an error or could not be reached.
    #[error(
        "nats: {message}; check that nats_url points at a running NATS server with JetStream (-js)"
    )]
    Nats {
        /// What failed, with the underlying error.
        message: String,
        /// Whether trying again can help (connection and timeout errors).
        transient: bool,
    },
    /// A server's TLS certificate was not accepted (an unknown CA, or another host's name);
    /// the message names the URL's setting and what to change (`tls_ca_file`, the host).
    #[error("tls: {0}")]
    Tls(String),
    /// The blob store (a local folder or an S3-compatible bucket) refused or failed an
    /// operation, or was given a bad key, range or write state; the message says which and
    /// what to do. Not transient: object_store has already retried what a retry could help.
    #[error("blobs: {0}")]
    Blob(String),
    /// Another writer holds what this operation writes (a local blob file locked by a
    /// concurrent append); the message names it. Retrying after that writer ends succeeds.
    #[error("busy: {0}")]
    Busy(String),
    /// A value could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(String),
    /// A setting or a name is invalid; the message names it and says what is allowed.
    #[error("config: {0}")]
    Config(String),
    /// A migration failed or the recorded migrations do not match the code.
    #[error("migration {system}/{version}: {message}")]
    Migration {
        /// The system whose migration failed.
        system: String,
        /// The failing migration version.
        version: i64,
        /// What went wrong.
        message: String,
    },
    /// An operation did not finish in time.
    #[error("timeout: {0}")]
    Timeout(String),
    /// A loader passed to a cache failed with an error of its own.
    #[error("load: {0}")]
    Load(String),
    /// The component was shut down.
    #[error("shut down: {0}")]
    Shutdown(String),
}

impl InfraError {
    /// Whether a retry of the same operation may succeed (connection lost, pool timed out,
    /// serialization conflict, database busy, timeout).
    pub fn is_transient(&self) -> bool {
        match self {
            InfraError::Sql(e) => sql_is_transient(e),
            InfraError::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
            }
            InfraError::Nats { transient, .. } => *transient,
            InfraError::Timeout(_) | InfraError::Busy(_) => true,
            InfraError::Codec(_)
            | InfraError::Config(_)
            | InfraError::Tls(_)
            | InfraError::Blob(_)
            | InfraError::Migration { .. }
            | InfraError::Load(_)
            | InfraError::Shutdown(_) => false,
        }
    }

    /// Builds a [`InfraError::Nats`] from any NATS error, deciding transience from its text
    /// (async-nats has one error kind enum per operation).
    pub fn nats(context: &str, err: impl std::fmt::Display) -> Self {
        let message = format!("{context}: {err}");
        let lower = message.to_ascii_lowercase();
        let transient = [
            "timed out",
            "timeout",
            "disconnect",
            "connection",
            "no responders",
            "broken pipe",
            "io error",
        ]
        .iter()
        .any(|needle| lower.contains(needle));
        InfraError::Nats { message, transient }
    }
}

fn sql_is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // PostgreSQL: serialization failure, deadlock, admin shutdown, too many connections.
            Some("40001" | "40P01" | "57P01" | "53300") => true,
            // SQLite: SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes.
            Some(code) => code
                .parse::<i32>()
                .map(|c| matches!(c & 0xff, 5 | 6))
                .unwrap_or(false),
            None => false,
        },
        _ => false,
    }
}

impl From<sqlx::Error> for InfraError {
    fn from(e: sqlx::Error) -> Self {
        InfraError::Sql(Arc::new(e))
    }
}

impl From<redis::RedisError> for InfraError {
    fn from(e: redis::RedisError) -> Self {
        InfraError::Redis(Arc::new(e))
    }
}

impl From<serde_json::Error> for InfraError {
    fn from(e: serde_json::Error) -> Self {
        InfraError::Codec(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transience_is_classified() {
        assert!(InfraError::from(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!InfraError::from(sqlx::Error::RowNotFound).is_transient());
        assert!(InfraError::nats("publish", "request timed out").is_transient());
        assert!(!InfraError::nats("create stream", "invalid stream name").is_transient());
        assert!(!InfraError::Config("x".into()).is_transient());
        assert!(InfraError::Timeout("flush".into()).is_transient());
    }
}

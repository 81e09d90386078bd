//! What the sharding layer's operations can fail with.

use praxis_infra::InfraError;
use praxis_kit::ring::RingError;

/// Why a sharding operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The ring changed since the version the caller built on: read it again and retry.
    #[error("region {region}'s ring is at version {current}, not {expected}: read it again")]
    Conflict {
        /// The region.
        region: String,
        /// The version the caller built on.
        expected: i64,
        /// The version stored.
        current: i64,
    },
    /// No ring for the region.
    #[error("region {0} has no ring; create it with `praxis shards add`")]
    NoRing(String),
    /// The shard is not registered.
    #[error("region {region} has no shard {shard}; register it first (`praxis shards add`)")]
    UnknownShard {
        /// The region.
        region: String,
        /// The shard.
        shard: String,
    },
    /// The shard is registered at another place.
    #[error(
        "shard {shard} of region {region} is registered at {url}; a shard never moves database"
    )]
    Placed {
        /// The region.
        region: String,
        /// The shard.
        shard: String,
        /// Where it is (credentials redacted).
        url: String,
    },
    /// The spec is not a ring.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// A stored ring could not be read.
    #[error("stored ring of region {region} v{version} is unreadable: {reason}")]
    Corrupt {
        /// The region.
        region: String,
        /// The version.
        version: i64,
        /// What is wrong.
        reason: String,
    },
    /// The database or the broadcaster failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl From<sqlx::Error> for ShardError {
    fn from(e: sqlx::Error) -> Self {
        ShardError::Infra(e.into())
    }
}

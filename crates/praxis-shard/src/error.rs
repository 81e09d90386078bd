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
    /// This shard refuses writes at the position (a move fenced it or moved it away).
    #[error("position {position} is fenced on this shard (a move is switching it)")]
    Fenced {
        /// The position.
        position: i64,
    },
    /// A conditional write found another version than the one it expected.
    #[error("document {id} is at version {current}, not {expected}: read it again")]
    Stale {
        /// The document.
        id: String,
        /// The version the writer read.
        expected: i64,
        /// The version stored (0: gone).
        current: i64,
    },
    /// A write waited for a move's switch longer than it may: retry in a moment.
    #[error("region {region} is moving position {position} to another shard; retry in a second")]
    Moving {
        /// The region.
        region: String,
        /// The position.
        position: i64,
    },
    /// The target ring gives every key the shard it has now.
    #[error("region {0}'s ring already is that ring: nothing to move")]
    NothingToMove(String),
    /// A move of the region has not ended.
    #[error("region {region} is already moving ({id}); wait for it or abort it")]
    Busy {
        /// The region.
        region: String,
        /// The move in progress.
        id: String,
    },
    /// No such move.
    #[error("no move {0}")]
    NoMove(String),
    /// Another process drives the move (its lease has not lapsed).
    #[error(
        "move {0} is driven by another process; it resumes it, or this one does once its lease lapses"
    )]
    Leased(String),
    /// An abort of the move was asked for: its driver stops copying and undoes it.
    #[error("move {0} is being aborted")]
    AbortRequested(String),
    /// The move switched already: it can only be finished, or undone by a move back.
    #[error("move {0} has switched to the new ring; move back with a new rebalance instead")]
    Switched(String),
    /// Source and target of some arcs differ after the last copy.
    #[error("move {id}: {arcs} arc(s) differ between source and target; run it again")]
    VerifyFailed {
        /// The move.
        id: String,
        /// How many arcs differ.
        arcs: usize,
    },
    /// Shadow reads found the target holding other documents than the source at the same
    /// version: the move is not switched.
    #[error(
        "move {id}: {reads} shadow read(s) found the target differing from the source; abort it"
    )]
    ShadowDiffered {
        /// The move.
        id: String,
        /// How many reads differed.
        reads: i64,
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

//! praxis-shard: the sharding layer any praxis system can put its data on (issue 20).
//!
//! - A **region** (US, EU, APAC, ...) has its own set of databases, its **shards**: N SQLite
//!   files embedded, N PostgreSQL databases scaled. A user's data stays in the user's home
//!   region.
//! - Within a region a consistent-hash **ring** with virtual nodes (`praxis_kit::ring`) maps a
//!   key (an order id) to a shard. Ring changes are **versioned** in the control database
//!   ([`rings::RingStore`]): a new version is published only on top of the one it was built
//!   from, so two operators never both change a ring.
//! - Every process keeps the current ring of every region in memory ([`rings::RingWatch`]),
//!   refreshed when a publisher's broadcast arrives and at least every `poll` interval, so a
//!   ring change reaches every process within one second even when the broadcast is lost.
//! - Where each shard lives is recorded in the control database too ([`shards::ShardSet`]),
//!   and each process opens a pool per shard it routes to, migrated with the using system's
//!   schema.
//! - [`docs::Docs`]: JSON documents in named collections, each on the shard the current ring
//!   gives its id, with a per-shard change log written in the same transaction (what a
//!   rebalance tails while it copies).
//! - [`rebalance::Rebalancer`]: online moves from one ring to the next (copy, tail, fence,
//!   verify, switch, clean up), resumable by any process and abortable before the switch.

pub mod docs;
pub mod error;
pub mod migrations;
pub mod rebalance;
pub mod rings;
pub mod shadow;
pub mod shards;

pub use docs::{Change, DOC_MIGRATIONS, Doc, Docs, Route};
pub use error::ShardError;
pub use migrations::MIGRATIONS;
pub use rebalance::{MoveState, MoveStatus, Rebalancer};
pub use rings::{RingStore, RingWatch, VersionedRing};
pub use shadow::Shadow;
pub use shards::{Placement, ShardSet};

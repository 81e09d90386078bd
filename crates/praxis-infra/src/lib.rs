//! Ports and adapters of praxis: SQL ([`sql`]), cache ([`cache`]), broadcast ([`broadcast`]),
//! event bus ([`bus`]), and the [`platform`] that wires them from configuration alone
//! (embedded: SQLite + in-process; scaled: PostgreSQL + Redis + NATS JetStream).
//!
//! [`testing`] builds ready platforms for every crate's integration suites.

pub mod broadcast;
pub mod bus;
pub mod cache;
mod error;
pub mod platform;
pub mod ratelimit;
pub mod redis_conn;
pub mod sql;
pub mod testing;
mod util;

pub use error::InfraError;
pub use platform::{DependencyStatus, Platform, PlatformConfig};
pub use sql::{Backend, Db, Migration, MigrationSet};

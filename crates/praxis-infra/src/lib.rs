//! Ports and adapters of praxis: SQL ([`sql`]), cache ([`cache`]), broadcast ([`broadcast`]),
//! event bus ([`bus`]), blobs ([`blobs`]: a local folder or an S3-compatible bucket), and the
//! [`platform`] that wires them from configuration alone
//! (embedded: SQLite + in-process; scaled: PostgreSQL + Redis + NATS JetStream), with one
//! TLS crypto provider and one trust policy for every outgoing connection ([`tls`]).
//!
//! Test support lives in the `praxis-testkit` crate; the `testing` module (where the test
//! services are, and a fresh PostgreSQL database) exists only with the `testing` feature,
//! which only dev-dependencies turn on: praxis-http's unit tests need it and cannot use the
//! test kit without a dependency cycle.

pub mod blobs;
pub mod broadcast;
pub mod bus;
pub mod cache;
mod error;
pub mod metric_docs;
pub mod platform;
pub mod ratelimit;
pub mod redis_conn;
pub mod sql;
#[doc(hidden)]
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod trace;
mod util;

pub use error::InfraError;
pub use metric_docs::{MetricDoc, MetricKind, describe as describe_metrics};
pub use platform::{DependencyStatus, Platform, PlatformConfig};
pub use sql::{Backend, Db, Migration, MigrationSet};

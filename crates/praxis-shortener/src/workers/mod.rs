//! Use cases and background work: link writes ([`links`]), redirect resolution ([`hot`]),
//! the visit batcher ([`visits`]) and the consumers and maintenance loop ([`maintenance`]).
//! They use the store and the domain, never the API layer.

pub mod hot;
pub mod links;
pub mod maintenance;
pub mod metrics;
pub mod visits;

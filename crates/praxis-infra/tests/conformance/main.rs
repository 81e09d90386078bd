//! Conformance of praxis-infra: each port's suite (`praxis_testkit::conformance`) on every
//! adapter, then what is specific to one adapter, and the platform's wiring. Scaled cases
//! never skip; see `praxis_testkit::services` for the environment variables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod adapters;
mod broadcast;
mod bus;
mod dialect;
mod platform;
mod ratelimit;
mod tls;

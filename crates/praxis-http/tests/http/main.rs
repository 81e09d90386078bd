//! Integration tests of praxis-http: the app driven with `tower::ServiceExt::oneshot`, no
//! sockets. One binary made of modules (faster to link than many).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

mod access_log;
mod auth;
mod health;
mod idempotency;
mod metrics;
mod openapi;
mod pagination;
mod problems;
mod request_id;
mod trace;

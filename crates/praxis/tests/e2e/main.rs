//! End-to-end tests: they run the real `praxis` binary as a child process, each on a free port
//! with its own temporary directory (and, for scaled mode, its own PostgreSQL database and
//! Redis/NATS prefix), and talk to it over HTTP.
//!
//! Scaled-mode tests need PostgreSQL, Redis and NATS (`PRAXIS_TEST_POSTGRES_URL`,
//! `PRAXIS_TEST_REDIS_URL`, `PRAXIS_TEST_NATS_URL`, localhost defaults) and fail, never skip,
//! when one is unreachable. `scripts/test` starts them, and TLS listeners of the three with a
//! CA made for the run (`PRAXIS_TEST_*_TLS_URL`, `PRAXIS_TEST_TLS_CA_FILE`) for [`tls`].
#![allow(clippy::panic, clippy::expect_used)]

mod backup;
mod chat;
mod checkout_crash;
mod cli_config;
mod crash;
mod files;
mod identity;
mod migrate;
mod notify;
mod order_emails;
mod ratelimit;
mod scaled;
mod secrets;
mod serve;
mod shards_crash;
mod shutdown;
mod support;
mod systems;
mod tls;
mod trace;

//! Integration suite of the channel providers against real receivers: email through a real
//! SMTP server (Python's aiosmtpd, one child process per test) and to `.eml` files; webhooks
//! and the SMS/push gateways against a real axum receiver on 127.0.0.1 that checks every
//! Standard Webhooks signature; failure classification (SMTP 4xx/5xx, HTTP 400/408/429/503,
//! Retry-After, redirects, timeouts, connection refused).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod email;
mod gateway;
mod smtp_sink;
mod support;
mod tls;
mod webhook;

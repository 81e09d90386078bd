//! Integration suite of the notification service: the same cases on the embedded backend
//! (SQLite, in-process bus and limiter) and on the scaled backend (PostgreSQL, NATS JetStream,
//! Redis), driving the full app with `tower::ServiceExt::oneshot` and delivering to real
//! receivers (an axum webhook receiver that verifies signatures, `.eml` files, the inbox
//! table, and for order emails a real SMTP server). No timed assertions: every wait is for a condition, with a generous deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod cases;
mod digest;
mod group_commit;
mod inbox;
mod order_events;
mod preferences;
mod receiver;
mod retention;
// The SMTP server of the channel suite, for the order emails; not every helper is used here.
#[allow(dead_code)]
#[path = "../channels/smtp_sink.rs"]
mod smtp_sink;
mod ssrf;
mod support;
mod unsubscribe;

praxis_testkit::backend_matrix!(crate::cases: [
    webhook_is_delivered_signed,
    idempotency_key_sends_once,
    bad_requests_are_problems,
    flaky_receiver_gets_each_exactly_once,
    breaker_opens_while_receiver_is_down_and_recovers,
    send_at_waits_and_survives_a_restart,
    dead_letters_can_be_requeued,
    transient_failures_run_out_of_attempts,
    in_app_writes_the_inbox_once,
    email_becomes_an_eml_file,
    bulk_send_reports_each_item,
    templates_are_versioned_and_checked,
    subscribers_are_managed,
    routes_need_the_right_caller,
    provider_rate_limit_spreads_sends,
]);

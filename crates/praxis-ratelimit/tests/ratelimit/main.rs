//! Integration suite of the rate-limit decision service: the same cases on the embedded
//! backend (in-process limiter) and on the scaled backend (Redis limiter), through the full
//! HTTP app (`tower::ServiceExt::oneshot`) and a real gRPC server and tonic client; and the
//! Envoy configuration of docs/ratelimit.md run by a real Envoy (`envoy`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod cases;
mod envoy;
mod support;

praxis_testkit::backend_matrix!(
    praxis_testkit::matrix::with_backend,
    crate::cases: [
    http_check_counts_to_the_limit,
    grpc_should_rate_limit_counts_to_the_limit,
    http_and_grpc_share_one_decision,
    most_specific_match_wins,
    unlimited_and_shadow_mode,
    hits_are_added_per_request_and_descriptor,
    bad_input_is_a_problem_naming_the_field,
    bad_grpc_input_is_invalid_argument,
    callers_must_be_authenticated,
    limits_reload_without_restart,
    config_reports_the_version,
    openapi_lists_routes,
]);

/// Cases that need two processes sharing Redis.
mod scaled_pair {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_share_one_limit() {
        crate::cases::two_processes_share_one_limit().await;
    }
}

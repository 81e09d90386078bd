//! Integration suite of the identity system: the same cases on the embedded backend (SQLite,
//! in-process cache and bus) and on the scaled backend (PostgreSQL, Redis, NATS JetStream),
//! driving the full app with `tower::ServiceExt::oneshot`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod cases;
mod support;

praxis_testkit::backend_matrix!(
    crate::support::run,
    crate::cases: [
    login_token_grants_access,
    alg_none_is_rejected,
    expired_token_is_rejected,
    not_yet_valid_token_is_rejected,
    wrong_issuer_is_rejected,
    wrong_audience_is_rejected,
    bad_signature_is_rejected,
    missing_scope_is_forbidden,
    rs256_tokens_verify_through_jwks,
    algorithm_confusion_is_rejected,
    unreachable_jwks_is_unavailable,
    refresh_rotates_and_reuse_revokes_the_family,
    concurrent_refreshes_of_one_token_revoke_the_family,
    logout_revokes_the_family,
    expired_refresh_token_is_rejected,
    sign_up_and_log_in,
    sign_up_replays_with_an_idempotency_key,
    unknown_account_and_wrong_password_answer_alike,
    password_change_revokes_refresh_tokens,
    api_key_lifecycle,
    key_scopes_are_checked_at_creation,
    last_use_is_written_at_most_once_per_interval,
    admin_role_and_plans,
    bad_input_is_a_problem,
    openapi_lists_routes,
    login_attempts_are_limited_per_account_and_ip,
    login_limits_see_the_client_behind_a_trusted_proxy,
]);

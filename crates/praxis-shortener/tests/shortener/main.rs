//! Integration suite of the shortener: the same cases on the embedded backend (SQLite, in-process
//! cache and bus) and on the scaled backend (PostgreSQL, Redis, NATS JetStream), driving the full
//! app with `tower::ServiceExt::oneshot`; plus two-process cases on the scaled backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod cases;
mod multi;
mod support;

praxis_testkit::backend_matrix!(
    crate::support::run,
    crate::cases: [
    create_and_redirect,
    redirect_statuses,
    custom_aliases,
    idempotency_replays,
    find_if_exists,
    url_rejections,
    anonymous_creation,
    expiry_is_gone,
    max_visits_is_exact,
    query_forwarding,
    unknown_codes,
    patch_then_delete,
    list_with_pagination_and_tags,
    bulk_mixed_items,
    bulk_limits,
    stats_count_visits,
    duplicate_batch_counts_once,
    qr_codes,
    auth_on_every_route,
    bad_input_is_a_problem,
    shutdown_flushes_buffered_visits,
    small_bloom_grows,
    concurrent_writes,
    openapi_lists_routes,
    generated_code_skips_a_taken_alias,
    callers_only_reach_their_own_links,
    api_key_scopes_gate_reads_and_writes,
]);

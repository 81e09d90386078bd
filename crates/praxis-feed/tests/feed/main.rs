//! Integration suite of the feed: the same cases on the embedded backend (SQLite, in-process
//! bus, in-memory timelines) and on the scaled backend (PostgreSQL, NATS JetStream, Redis
//! timelines), driving the full app with `tower::ServiceExt::oneshot`. No timed assertions:
//! every wait is for a condition, with a generous deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod cases;
mod support;

praxis_testkit::backend_matrix!(crate::cases: [
    user_home_is_for_that_user_or_the_admin,
    home_is_newest_first_and_pages_with_links,
    paging_across_concurrent_posts_has_no_gaps_or_duplicates,
    celebrity_posts_are_merged_not_pushed,
    threshold_switch_loses_no_post,
    follow_backfills_the_timeline,
    unfollow_block_mute_delete_take_effect,
    flushed_timelines_answer_from_the_database_and_rebuild,
    inactive_users_get_no_fanout_but_see_posts,
    stream_receives_followee_posts,
    bad_input_is_a_named_problem,
    unauthenticated_is_401,
    admin_imports_follows,
    pages_past_the_cap_come_from_the_database,
    timeline_store_conformance,
    late_fanout_is_not_paged_past,
    post_cache_hydrates_pages_and_edits_deletes_invalidate,
]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_redis_timelines_always_expire() {
    cases::redis_timelines_always_expire().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_posts_cross_processes() {
    cases::posts_cross_processes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_post_cache_invalidates_across_processes() {
    cases::post_cache_invalidates_across_processes().await;
}

//! Integration suite of the chat: the same cases on the embedded backend (SQLite) and on the
//! scaled one (PostgreSQL), the chat started the way `praxis serve` starts it (its plug-in,
//! through the test kit) and driven over HTTP in process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod cases;
mod e2ee;
mod live;
mod sse;
mod support;
mod ws;

praxis_testkit::backend_matrix!(crate::cases: [
    direct_conversation_is_one_per_pair,
    groups_have_owners_and_members,
    sequences_are_gapless_under_concurrent_senders,
    resend_with_the_same_client_id_is_the_same_message,
    history_pages_by_sequence,
    edits_and_tombstones,
    read_markers_and_unread_counts,
    list_is_newest_first_and_pages,
    non_members_see_nothing,
    bad_input_is_a_named_problem,
    api_keys_need_chat_scopes,
    settings_are_read_from_the_section,
]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_two_processes_share_one_gapless_sequence() {
    cases::two_processes_share_one_gapless_sequence().await;
}

/// The WebSocket cases, on both backends.
mod socket {
    praxis_testkit::backend_matrix!(crate::live: [
        ws_delivers_messages_live_and_in_order,
        ws_catches_up_exactly_the_missing_messages,
        ws_typing_and_receipts_reach_the_other_members,
        ws_bad_frames_and_non_members_get_errors,
        ws_slow_client_is_closed_and_catches_up,
        python_websockets_client_catches_up_and_sends,
        sse_catches_up_then_streams,
        limits_refuse_with_429,
        browsers_authenticate_with_access_token,
        presence_online_away_offline,
        presence_expires_without_heartbeats,
        retention_resets_clients_from_before_it,
    ]);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scaled_ws_clients_on_two_processes_see_every_message() {
        crate::live::ws_clients_on_two_processes_see_every_message().await;
    }
}

/// End-to-end encryption with vodozemac clients, on both backends.
mod encryption {
    praxis_testkit::backend_matrix!(crate::e2ee: [
        e2ee_olm_and_megolm_clients_talk_through_praxis_and_rows_hold_ciphertext,
        e2ee_one_time_prekeys_are_claimed_at_most_once,
        e2ee_bad_keys_and_wrong_content_are_named_problems,
    ]);
}

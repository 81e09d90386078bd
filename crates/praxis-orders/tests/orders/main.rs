//! Integration suite of the orders system: the same cases on the embedded backend (SQLite
//! files as shards) and the scaled one (PostgreSQL databases as shards), with one or two
//! "processes".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod moves;
mod orders;
mod support;

mod records {
    praxis_testkit::backend_matrix!(crate::orders: [
        a_user_places_reads_and_lists_orders_in_the_home_region,
        orders_spread_over_the_shards_of_their_region,
        the_index_is_kept_from_the_change_log,
        the_report_names_the_shards_that_did_not_answer,
        bad_input_is_a_named_4xx,
        an_order_made_elsewhere_is_stored_under_its_id,
    ]);
}

mod rebalancing {
    praxis_testkit::backend_matrix!(crate::moves: [
        a_shard_is_added_under_load_and_nothing_is_lost,
        an_aborted_move_leaves_the_data_as_before,
        a_dry_run_says_what_would_move_and_moves_nothing,
        the_size_trigger_says_what_it_would_move_then_moves,
        a_move_whose_target_differs_is_not_switched,
    ]);
}

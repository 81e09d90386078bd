//! Integration suite of the sharding layer: the same cases on the embedded backend (SQLite,
//! in-process broadcasts) and the scaled one (PostgreSQL, Redis or NATS broadcasts), with one
//! or two "processes".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod docs;
mod rebalance;
mod rings;
mod shards;
mod support;

praxis_testkit::backend_matrix!(crate::rings: [
    a_ring_version_is_published_once_on_top_of_the_one_it_was_built_from,
    racing_publishers_in_two_processes_make_one_version,
    two_processes_see_a_ring_change_within_a_second,
]);

mod places {
    praxis_testkit::backend_matrix!(crate::shards: [
        each_shard_is_its_own_database_wherever_it_is_opened,
    ]);
}

mod store {
    praxis_testkit::backend_matrix!(crate::docs: [
        documents_live_on_the_shard_the_ring_gives_them,
    ]);
}

mod moves {
    praxis_testkit::backend_matrix!(crate::rebalance: [
        two_to_three_shards_under_load_loses_nothing_and_moves_a_third,
        a_second_run_of_a_move_is_refused_while_one_drives_it,
        an_aborted_rebalance_leaves_the_data_exactly_as_before,
        a_move_whose_process_dies_is_resumed_by_another,
    ]);
}

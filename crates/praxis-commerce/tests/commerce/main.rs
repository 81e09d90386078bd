//! Integration suite of the commerce system's inventory: the same cases on the embedded
//! backend (SQLite) and the scaled one (PostgreSQL), with one or two "processes".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod inventory;
mod races;
mod support;

praxis_testkit::backend_matrix!(crate::races: [
    a_thousand_buyers_race_for_a_hundred_units,
    two_processes_race_for_the_same_units,
    the_naive_read_modify_write_oversells,
    expired_reservations_return_once_with_two_sweepers,
]);

mod lines {
    praxis_testkit::backend_matrix!(crate::inventory: [
        a_checkout_reserves_every_line_or_none,
        the_buyers_region_goes_first_then_the_fullest_warehouse,
        release_and_confirm_happen_once,
        receipts_and_adjustments_keep_the_ledger,
        bad_input_is_named,
    ]);
}

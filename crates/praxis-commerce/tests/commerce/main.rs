//! Integration suite of the commerce system's inventory: the same cases on the embedded
//! backend (SQLite) and the scaled one (PostgreSQL), with one or two "processes".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod catalog;
mod http;
mod inventory;
mod providers;
mod races;
mod saga;
mod support;

praxis_testkit::backend_matrix!(crate::races: [
    a_thousand_buyers_race_for_a_hundred_units,
    a_split_hot_sku_sells_exactly_its_units,
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
        a_split_sku_keeps_its_counts_and_its_ledger,
        bad_input_is_named,
    ]);
}

mod checkout {
    praxis_testkit::backend_matrix!(crate::saga: [
        a_checkout_confirms_and_publishes_its_events,
        each_failing_step_is_compensated,
        a_late_payment_is_voided_when_it_lands,
        a_checkout_whose_process_dies_is_resumed_by_another,
        the_same_idempotency_key_gives_the_same_order,
        a_buyer_cancels_a_confirmed_order,
    ]);
}

mod shop {
    praxis_testkit::backend_matrix!(crate::catalog: [
        a_price_change_is_seen_by_every_process_within_a_second,
        a_cart_reads_its_writes_in_every_process,
        a_cart_checks_out_at_the_database_prices,
        bad_catalog_input_is_named,
    ]);
}

mod routes {
    praxis_testkit::backend_matrix!(crate::http: [
        a_buyer_shops_checks_out_and_cancels,
        bad_input_is_a_named_4xx,
    ]);
}

//! Pure inventory logic: names and quantities, reservations, ledger entries.

pub mod model;

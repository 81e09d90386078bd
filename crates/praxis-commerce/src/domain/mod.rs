//! Pure commerce logic: names and quantities, reservations and ledger entries ([`model`]),
//! orders and the steps of their saga ([`order`]).

pub mod model;
pub mod order;

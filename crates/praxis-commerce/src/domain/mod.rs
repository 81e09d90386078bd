//! Pure commerce logic: names and quantities, reservations and ledger entries ([`model`]),
//! the catalog's products, variants, prices and cart lines ([`catalog`]), orders and the
//! steps of their saga ([`order`]).

pub mod catalog;
pub mod model;
pub mod order;

//! The commerce use cases: the catalog and carts ([`catalog`]), the inventory
//! ([`inventory`]) and the checkout saga ([`checkout`]), and their background work
//! ([`sweeper`], [`checkout::run_recovery`]).

pub mod catalog;
pub mod checkout;
pub mod inventory;
pub mod sweeper;

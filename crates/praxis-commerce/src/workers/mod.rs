//! The commerce use cases: the inventory ([`inventory`]) and the checkout saga
//! ([`checkout`]), and their background work ([`sweeper`], [`checkout::run_recovery`]).

pub mod checkout;
pub mod inventory;
pub mod sweeper;

//! The inventory's use cases ([`inventory`]) and its background work ([`sweeper`]).

pub mod inventory;
pub mod sweeper;

//! The feed's records and rules, with no I/O.

pub mod model;

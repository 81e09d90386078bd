//! The decision and its upkeep: [`decide`] answers a check through the platform's limiter;
//! [`reload`] watches the limit file and swaps the rules in without a restart. The decision
//! service keeps no tables, so there is no `store/`; its counters live in the limiter.

pub mod decide;
pub mod metrics;
pub mod reload;

//! Pure shortener logic: no I/O, unit tested beside the code.

pub mod agent;
pub mod alias;
pub mod codes;
pub mod days;
pub mod link;
pub mod query;
pub mod tags;
pub mod url_rules;
pub mod visits;

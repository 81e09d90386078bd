//! Pure shortener logic: no I/O, unit tested beside the code.

pub mod agent;
pub mod alias;
pub mod bloom;
pub mod codes;
pub mod days;
pub mod link;
pub mod qr;
pub mod query;
pub mod requests;
pub mod tags;
pub mod url_rules;
pub mod visits;

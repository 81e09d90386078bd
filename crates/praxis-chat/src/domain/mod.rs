//! Pure chat rules and data: no I/O, unit tested beside the code.

pub mod events;
pub mod keys;
pub mod model;
pub mod rules;

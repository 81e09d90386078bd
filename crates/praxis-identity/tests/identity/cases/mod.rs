//! The cases every backend runs; each takes a fresh harness.

mod abuse;
mod accounts;
mod admin;
mod errors;
mod jwks;
mod keys;
mod refresh;
mod tokens;

pub use abuse::*;
pub use accounts::*;
pub use admin::*;
pub use errors::*;
pub use jwks::*;
pub use keys::*;
pub use refresh::*;
pub use tokens::*;

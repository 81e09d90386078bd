//! The cases every backend runs; each takes a fresh harness.

mod bulk;
mod create;
mod errors;
mod manage;
mod owners;
mod qr;
mod redirect;
mod stats;

pub use bulk::*;
pub use create::*;
pub use errors::*;
pub use manage::*;
pub use owners::*;
pub use qr::*;
pub use redirect::*;
pub use stats::*;

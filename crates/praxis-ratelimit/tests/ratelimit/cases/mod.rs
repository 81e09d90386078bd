//! The cases every backend runs; each takes a fresh backend.

mod check;
mod errors;
mod grpc;
mod matching;
mod reload;

pub use check::*;
pub use errors::*;
pub use grpc::*;
pub use matching::*;
pub use reload::*;

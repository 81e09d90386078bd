//! Load-balancing pickers as pure state machines: each one chooses an index in `0..n` among
//! the instances a caller calls eligible (healthy and not ejected), from the loads and times
//! the caller passes. No clocks, no I/O, no locks: the gateway holds each in a mutex.
//!
//! - [`round_robin`]: each eligible instance in turn.
//! - [`weighted`]: nginx's smooth weighted round robin, weights changeable at runtime or
//!   derived from live latency and in-flight counts ([`weights_from_costs`]).
//! - [`least`]: the eligible instance with the fewest requests in flight, ties rotated.
//! - [`ewma`]: a peak-sensitive, time-decayed moving average of latency (Finagle's and
//!   Linkerd's "peak EWMA"), where an error is observed as a penalty latency.
//! - [`p2c`]: power of two choices: two distinct eligible instances at random, the less
//!   loaded one wins.
//! - [`hash`]: consistent hashing on [`crate::ring`] with bounded load (Mirrokni, Thorup and
//!   Zadimoghaddam, 2016): a key goes to its owner unless the owner carries more than
//!   `factor` times the mean load, then to the next instance round the ring.

pub mod ewma;
pub mod hash;
pub mod least;
pub mod p2c;
pub mod round_robin;
pub mod weighted;

pub use ewma::PeakEwma;
pub use hash::HashRing;
pub use least::least_loaded;
pub use p2c::p2c;
pub use round_robin::RoundRobin;
pub use weighted::{SmoothWeighted, weights_from_costs};

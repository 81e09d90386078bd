//! praxis-kit: pure building blocks shared by every praxis crate.
//!
//! Nothing here performs I/O: each module is a small algorithm with a property test against a
//! simple reference implementation.
//!
//! - [`base62`]: short public codes (`0-9A-Za-z`).
//! - [`scramble`]: a keyed bijection that turns a sequential counter into non-sequential codes.
//! - [`jitter`]: spread a duration by a random fraction (cache TTLs, poll intervals).
//! - [`backoff`]: exponential backoff with full jitter and a ceiling (retries).
//! - [`balance`]: load-balancing pickers (round robin, smooth weighted round robin, least
//!   connections, power of two choices on peak EWMA, consistent hashing with bounded load).
//! - [`retry_budget`]: retries limited to a share of requests in a sliding window.
//! - [`outlier`]: passive outlier detection (consecutive errors, latency) with ejections that
//!   grow and a cap on the share of a pool ejected.
//! - [`canary`]: a canary judge that rolls back on error rate or p99 against the baseline, and
//!   (optionally) steps the canary's share up and promotes it after healthy checks.
//! - [`canary_switch`]: the check after a blue/green switch, against the old side's recorded
//!   responses: confirmed, or switched back.
//! - [`ratelimit`]: token bucket, GCRA, fixed window, sliding log and sliding-window counter as
//!   pure state machines (the caller passes `now`).
//! - [`breaker`]: a circuit breaker (closed, open, half-open with one probe, doubling open
//!   period) as a pure state machine (the caller passes `now`).
//! - [`ring`]: a consistent-hash ring with virtual nodes, and the key ranges that move
//!   between two rings (sharding).
//! - [`text`]: values as configuration writes them (durations, sizes, booleans) and a serde
//!   deserializer that reads a settings struct from the text of each key.

pub mod backoff;
pub mod balance;
pub mod base62;
pub mod breaker;
pub mod canary;
pub mod canary_switch;
pub mod jitter;
pub mod outlier;
pub mod ratelimit;
pub mod retry_budget;
pub mod ring;
pub mod scramble;
pub mod text;

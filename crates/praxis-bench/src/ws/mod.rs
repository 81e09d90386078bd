//! `praxis bench ws`: WebSocket scenarios for the chat (`/api/v1/chat/ws`, docs/chat.md).
//!
//! ```text
//! praxis bench ws connect URL --clients N [--sources 8] [--server-pid PID] [--hold 10s]
//! praxis bench ws fanout URL[,URL2...] --rate R [--members 1000] [--duration 10s] [--warmup 2s]
//!                                      [--server-pid PID ...] [--json FILE]
//! praxis bench ws reference [--listen 127.0.0.1:8092]
//! ```
//!
//! - [`connect`]: N idle authenticated connections, the server's VmRSS before and after:
//!   memory per idle connection.
//! - [`fanout`]: a group of M members (the creator sends, the others receive, spread over the
//!   given servers), messages at a fixed rate open loop, each delivery's latency from the
//!   message's intended send time; deliveries per second and per server CPU-second.
//! - [`mod@reference`]: a bare axum WebSocket broadcast server speaking the same frames, measured
//!   in the same run.
//!
//! Each connection is its own account (`<prefix><index>`), with an HS256 access token signed
//! as identity signs them ([`token`]) with `PRAXIS_JWT_SECRET` or `--jwt-secret-file` (an
//! embedded server generates `<data_dir>/jwt.secret` on its first start).
//!
//! # Server settings to raise
//!
//! The chat's defaults protect a real deployment; a benchmark exceeds several of them. Set them
//! in `[chat]` or as environment variables of `praxis serve`:
//! - `PRAXIS_CHAT_SEND_RATE` (default 20 messages per second per account): at least the
//!   fan-out `--rate`, since one account sends everything (else `rate-limited` refusals).
//! - `PRAXIS_CHAT_MAX_MEMBERS` (default 1000, at most 100000): at least `--members`.
//! - `PRAXIS_CHAT_OUTBOUND_QUEUE` (default 256): each `subscribe` tells every member already
//!   following that one more member is online, so joining M members sends each up to M - 1
//!   `presence` frames in a burst; a socket whose queue fills is closed with 4008. 4096 is
//!   enough for 1,000 members.
//! - `PRAXIS_CHAT_CONNECTIONS_PER_ACCOUNT` (default 20): enough as is, every bench connection
//!   is its own account.
//! - `PRAXIS_ACCESS_LOG=false`: one log line per handshake otherwise.
//!
//! # Open files
//!
//! Every connection is a file descriptor in both processes. Raise the limit in the shells that
//! start the server and the bench, e.g. `ulimit -n 100000` (as root, or up to `ulimit -Hn`);
//! the bench does not raise its own (the workspace forbids `unsafe`, and no rlimit crate is
//! among its dependencies). A connection refused for lack of descriptors says so. Beyond
//! ~28,000 connections to one server port, use `--sources N` (127.0.0.1 .. 127.0.0.N).
//!
//! # CPU and memory readings
//!
//! `--server-pid PID` (repeatable) reads `/proc/PID/status` (VmRSS) and `/proc/PID/stat`
//! (utime + stime, in `getconf CLK_TCK` ticks, 100 per second when `getconf` is missing):
//! the server must run on the same machine. Pin the server and the generator apart
//! (`taskset -c 0` / `taskset -c 1`); `scenarios/chat-ws.sh` runs the whole set.
//!
//! # Reading the results
//!
//! The generator runs every receiver on one thread: it reads on the order of 100,000 frames a
//! second on one core, and a delivery's latency includes the time the generator takes to
//! reach its socket in a burst of M - 1. Its health is in the output: `schedule lag` (how
//! late the sender sent) should stay far below the latencies; when it does not, the latency
//! figures are the generator's, not the server's (lower `--rate` for latency, and read
//! deliveries per server CPU-second, which the server's own CPU time measures, for
//! throughput). The reference measured in the same session shows the floor of both.

pub mod cli;
pub mod connect;
pub mod dial;
pub mod fanout;
pub mod frames;
pub mod proc;
mod receiver;
pub mod reference;
pub mod rest;
mod sender;
pub mod tally;
pub mod token;

pub use cli::{WsArgs, WsCommand, run};

/// Errors of the WebSocket scenarios.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
    /// A connection failed.
    #[error(transparent)]
    Dial(#[from] dial::DialError),
    /// Reading the server's /proc failed.
    #[error(transparent)]
    Proc(#[from] proc::ProcError),
    /// Tokens cannot be signed.
    #[error(transparent)]
    Token(#[from] token::TokenError),
    /// Preparing the scenario failed (creating the group, subscribing).
    #[error("{0}")]
    Setup(String),
}

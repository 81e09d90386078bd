//! `praxis bench`: an open-loop HTTP/1.1 load generator, free of coordinated omission.
//!
//! Requests are sent at a constant arrival rate (uniform spacing, the wrk2 model, or Poisson
//! arrivals) whatever the server does, and each latency is measured from the request's
//! *intended* send time. A server that stalls for 500 ms therefore shows up in the tail of
//! every request that should have been sent during the stall, not as one slow sample.
//!
//! # Command line
//!
//! ```text
//! praxis bench URL --rate N [--duration 10s] [--warmup 2s] [--connections 32] [--threads 1]
//!              [--arrival uniform|poisson] [--timeout 5s] [--expect-status 301]
//!              [--json FILE] [--report FILE.md] [--quiet]
//! praxis bench --scenario FILE [BASE_URL] [same options] [--no-seed | --seed-only]
//! praxis bench ... --find-max --slo "p99<50ms" [--rate START] [--max-rate N] [--precision 0.05]
//! praxis bench compare A.json B.json
//! praxis bench reference [--listen 127.0.0.1:8090] [--threads 1] [--status 301]
//! praxis bench ws connect|fanout|reference ...    (WebSocket scenarios of the chat, see [`ws`])
//! ```
//!
//! Output: a progress line every second on stderr (elapsed, achieved rate, errors, p99 of the
//! last second), a summary on stdout (target and achieved rate, p50/p90/p99/p99.9/max per kind,
//! errors by kind), `--json` for machines ([`result::BenchResult`]) and `--report` for people
//! (Markdown plus an SVG percentile spectrum). The same CLI is the standalone `praxis-bench`
//! binary, which links only this crate.
//!
//! # Design of the hot loop
//!
//! See [`runner`]: per-thread current-thread runtimes, each owning a share of the connections;
//! per connection one sequential request loop driven by its schedule (request `i` of
//! connection `c` is due at `t0 + offset_i`, [`schedule`]); one hyper `conn::http1` connection
//! per TCP stream, no pool; no task per request; pre-built request parts
//! ([`workload`]); per-thread HdrHistograms merged at the end ([`record`]). A connection that
//! falls behind sends at once but still measures from the intended time.
//!
//! # Scenarios
//!
//! A scenario is a TOML file (see `scenarios/` at the repository root):
//!
//! ```toml
//! name = "shortener-redirect-zipf"
//! description = "..."
//! base_url = "http://127.0.0.1:8080"     # a URL on the command line overrides it
//!
//! [load]                                  # optional defaults; flags override them
//! rate = 20000
//! duration = "30s"
//! warmup = "5s"
//! connections = 64
//! arrival = "uniform"                     # or "poisson"
//!
//! [seed]                                  # optional: runs before the load
//! path = "/api/v1/links/bulk"
//! count = 1000000                         # items; {key} runs over [0, count)
//! batch = 1000                            # items per request
//! concurrency = 4
//! auth_env = "PRAXIS_ADMIN_KEY"           # Authorization: Bearer $PRAXIS_ADMIN_KEY
//! item = '{"url": "https://example.com/{key}", "alias": "bk{key}"}'
//! body = '{"links": [{items}]}'           # {items}: the batch's items, comma separated
//! expect_status = [200, 201]              # default: any 2xx
//! check = { path = "/bk999999", status = 301 }  # skip seeding if this already answers 301
//!
//! [keys.hot]                              # a key generator, used as {hot}
//! dist = "zipf"                           # "sequence" | "uniform" | "zipf"
//! n = 1000000                             # keys [0, n)
//! s = 1.0                                 # Zipf exponent
//! format = "decimal"                      # or "base62"; width = 7 pads with '0'; offset = N
//!
//! [[request]]                             # the weighted mix; name = histogram key
//! name = "redirect"
//! weight = 1
//! method = "GET"
//! path = "/bk{hot}"
//! headers = { "accept" = "text/html" }
//! # body = '{"url": "https://example.com/{hot}"}'   (content-type defaults to JSON)
//! # auth_env = "PRAXIS_ADMIN_KEY"
//! expect_status = 301                     # others are errors; redirects are never followed
//! ```
//!
//! Placeholders are `{identifier}`; any other brace is literal (JSON needs no escaping) and
//! `{{` is a literal `{`. Unknown fields are errors, and every error names its field.
//!
//! # Measuring against references
//!
//! On a 2-core machine pin the server to one core and the generator to the other, and run
//! the reference in the same session:
//!
//! ```sh
//! taskset -c 0 praxis bench reference --listen 127.0.0.1:8090 &
//! taskset -c 1 praxis bench http://127.0.0.1:8090/x --rate 50000 --expect-status 301 --json axum.json
//! taskset -c 0 nginx -p "$PWD/scenarios/nginx" -c nginx.conf       # listens on 127.0.0.1:8091
//! taskset -c 1 praxis bench http://127.0.0.1:8091/x --rate 50000 --expect-status 301 --json nginx.json
//! praxis bench compare nginx.json axum.json
//! ```
//!
//! `scenarios/nginx/nginx.conf` runs one worker process, in the foreground, with access logs
//! off and `return 301 https://example.com/;` for every path. Stop it with Ctrl-C (or
//! `nginx -p "$PWD/scenarios/nginx" -c nginx.conf -s stop`). To check the generator itself,
//! compare its `--find-max` or saturated rate on one core with `wrk -t1 -c32` against the same
//! endpoint; the schedule lag in the summary says whether the generator kept up.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cli;
pub mod client;
pub mod compare;
pub mod findmax;
pub mod keys;
pub mod plot;
pub mod progress;
pub mod record;
pub mod reference;
pub mod report;
pub mod result;
pub mod runner;
pub mod scenario;
pub mod schedule;
pub mod seed;
pub mod summary;
pub mod template;
pub mod timeline;
pub mod units;
pub mod workload;
pub mod ws;
pub mod zipf;

use std::path::PathBuf;

pub use cli::{BenchArgs, BenchCommand, CompareArgs, LoadArgs, run};
pub use result::BenchResult;
pub use runner::{LoadPlan, RunOutcome, run_load};

/// Errors of the library (the command line wraps them in `anyhow`).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
    /// The target URL is invalid.
    #[error(transparent)]
    Target(#[from] workload::TargetError),
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
    /// The workload is invalid.
    #[error(transparent)]
    Workload(#[from] workload::WorkloadError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Seeding failed.
    #[error("seed: {0}")]
    Seed(String),
    /// A worker thread failed.
    #[error("worker: {0}")]
    Worker(String),
    /// JSON encoding failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// An operating-system error (e.g. spawning a thread).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

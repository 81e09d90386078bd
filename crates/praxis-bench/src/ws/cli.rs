//! The command line of `praxis bench ws` and its glue: arguments to plans, results to stdout
//! and `--json`, and a failing exit status when anything was lost or refused.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use crate::result::write_json;
use crate::schedule::Arrival;
use crate::units::parse_duration;
use crate::ws::connect::{self, ConnectPlan};
use crate::ws::dial::{Dialer, Server, source_addresses};
use crate::ws::fanout::{self, FanoutPlan};
use crate::ws::reference::{self, WsReferenceArgs};
use crate::ws::token::{SECRET_ENV, Signer};

/// `praxis bench ws`: WebSocket scenarios for the chat.
#[derive(Debug, Clone, clap::Args)]
pub struct WsArgs {
    /// The scenario.
    #[command(subcommand)]
    pub command: WsCommand,
}

/// The WebSocket scenarios.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum WsCommand {
    /// Open N idle authenticated connections and read the server's memory per connection.
    Connect(ConnectArgs),
    /// Fan messages out to a group's members at a fixed rate; delivery latency from the
    /// intended send time, deliveries per second and per server CPU-second.
    Fanout(FanoutArgs),
    /// Serve a bare WebSocket broadcast speaking the same frames: the reference to measure
    /// beside praxis (pin it: `taskset -c 0 praxis bench ws reference`).
    Reference(WsReferenceArgs),
}

/// Accounts and their tokens.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// Accounts are `<PREFIX><index>`, one per connection.
    #[arg(long, default_value = "wsb-")]
    pub account_prefix: String,
    /// File holding the server's JWT secret [default: the PRAXIS_JWT_SECRET environment
    /// variable; neither: no token, which only the reference accepts].
    #[arg(long)]
    pub jwt_secret_file: Option<PathBuf>,
    /// The server's `[identity] jwt_issuer`.
    #[arg(long, default_value = "praxis")]
    pub jwt_issuer: String,
    /// The server's `[identity] jwt_audience`.
    #[arg(long, default_value = "praxis")]
    pub jwt_audience: String,
}

/// How connections are opened, and what is read from the servers.
#[derive(Debug, Clone, clap::Args)]
pub struct DialArgs {
    /// Spread connections over source addresses 127.0.0.1 .. 127.0.0.N (loopback servers;
    /// one address holds about 28,000 connections to one server port).
    #[arg(long, default_value_t = 1)]
    pub sources: usize,
    /// Handshakes in flight at most.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
    /// Longest connect + handshake.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// A server process (same machine) whose memory and CPU to read; repeat for several.
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// Write the result as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress lines.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Arguments of `praxis bench ws connect`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The server: http://HOST:PORT (the chat's WebSocket path is added) or ws://HOST:PORT/PATH.
    pub url: String,
    /// Connections to open, each its own account.
    #[arg(long, short = 'n')]
    pub clients: usize,
    /// How long to hold them all open before reading the server's memory again.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub hold: Duration,
    /// Connections.
    #[command(flatten)]
    pub dial: DialArgs,
    /// Accounts.
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Arguments of `praxis bench ws fanout`.
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    /// Servers, comma-separated (http://HOST:PORT or ws://HOST:PORT/PATH): receivers are
    /// spread over them round-robin; the group is created and the sender connects on the first.
    pub urls: String,
    /// Members of the group, the sender included.
    #[arg(long, short = 'm', default_value_t = 1000)]
    pub members: usize,
    /// Messages per second (open loop).
    #[arg(long, short = 'R')]
    pub rate: f64,
    /// Measured window.
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Sent, not measured, before the window (also lets the subscription burst settle).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// After the last send, how long to wait for answers and deliveries.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Arrival process of the sends.
    #[arg(long, value_enum, default_value_t = Arrival::Uniform)]
    pub arrival: Arrival,
    /// Yield-spin this long before each due time instead of trusting tokio's 1 ms timer.
    #[arg(long, default_value = "2ms", value_parser = parse_duration)]
    pub spin: Duration,
    /// Seed of Poisson arrivals.
    #[arg(long, default_value_t = 1)]
    pub random_seed: u64,
    /// Pad message bodies to this many bytes.
    #[arg(long, default_value_t = 0)]
    pub body_bytes: usize,
    /// Connections.
    #[command(flatten)]
    pub dial: DialArgs,
    /// Accounts.
    #[command(flatten)]
    pub auth: AuthArgs,
}

fn signer(auth: &AuthArgs, quiet: bool) -> anyhow::Result<Option<Signer>> {
    let Some(secret) = Signer::secret_from(auth.jwt_secret_file.as_deref())? else {
        if !quiet {
            eprintln!(
                "no {SECRET_ENV} and no --jwt-secret-file: connecting without tokens (only `praxis bench ws reference` accepts that)"
            );
        }
        return Ok(None);
    };
    Ok(Some(Signer::new(
        &secret,
        &auth.jwt_issuer,
        &auth.jwt_audience,
        Duration::from_secs(3600),
    )?))
}

fn dialer(server: Server, dial: &DialArgs, signer: Option<Signer>) -> anyhow::Result<Dialer> {
    let sources = source_addresses(&server.addr, dial.sources).map_err(anyhow::Error::msg)?;
    Ok(Dialer::new(server, sources, signer, dial.connect_timeout))
}

/// Runs `praxis bench ws ...`.
pub async fn run(args: WsArgs) -> anyhow::Result<()> {
    match args.command {
        WsCommand::Reference(r) => Ok(reference::run(r).await?),
        WsCommand::Connect(c) => run_connect(c).await,
        WsCommand::Fanout(f) => run_fanout(f).await,
    }
}

async fn run_connect(args: ConnectArgs) -> anyhow::Result<()> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let server = Server::parse(&args.url)?;
    let signer = signer(&args.auth, args.dial.quiet)?;
    let plan = ConnectPlan {
        dialer: dialer(server, &args.dial, signer)?,
        clients: args.clients,
        concurrency: args.dial.concurrency,
        hold: args.hold,
        server_pids: args.dial.server_pids.clone(),
        account_prefix: args.auth.account_prefix.clone(),
        progress: !args.dial.quiet,
    };
    println!(
        "praxis bench ws connect: {} clients to {} ({} source address{})",
        plan.clients,
        plan.dialer.server().ws_url,
        args.dial.sources.max(1),
        if args.dial.sources > 1 { "es" } else { "" }
    );
    let result = connect::run(&plan).await?;
    print!("{}", result.summary());
    if let Some(path) = &args.dial.json {
        write_json(path, &result)?;
        eprintln!("wrote {}", path.display());
    }
    if result.failed() > 0 || result.closed_by_server > 0 {
        bail!(
            "{} connections failed and {} were closed by the server (see above)",
            result.failed(),
            result.closed_by_server
        );
    }
    Ok(())
}

async fn run_fanout(args: FanoutArgs) -> anyhow::Result<()> {
    let servers = Server::parse_list(&args.urls)?;
    if servers.is_empty() {
        bail!("give at least one server URL");
    }
    if args.duration.is_zero() {
        bail!("--duration must be positive");
    }
    let signer = signer(&args.auth, args.dial.quiet)?;
    let dialers = servers
        .into_iter()
        .map(|s| dialer(s, &args.dial, signer.clone()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let plan = FanoutPlan {
        dialers,
        members: args.members,
        rate: args.rate,
        duration: args.duration,
        warmup: args.warmup,
        drain: args.drain,
        arrival: args.arrival,
        spin: args.spin,
        seed: args.random_seed,
        body_bytes: args.body_bytes,
        concurrency: args.dial.concurrency,
        server_pids: args.dial.server_pids.clone(),
        account_prefix: args.auth.account_prefix.clone(),
        progress: !args.dial.quiet,
    };
    println!(
        "praxis bench ws fanout: group of {} ({} receivers over {} server{}), {} msg/s {} for {:?} + {:?} warm-up",
        plan.members,
        plan.members.saturating_sub(1),
        plan.dialers.len(),
        if plan.dialers.len() == 1 { "" } else { "s" },
        plan.rate,
        plan.arrival,
        plan.duration,
        plan.warmup
    );
    let result = fanout::run(&plan).await?;
    print!("{}", result.summary());
    if let Some(path) = &args.dial.json {
        write_json(path, &result)?;
        eprintln!("wrote {}", path.display());
    }
    if !result.complete() {
        bail!(
            "incomplete run: {} lost, {} duplicates, {} refused, {} unanswered",
            result.lost,
            result.duplicates,
            result.send_errors.values().sum::<u64>(),
            result.unanswered
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: crate::BenchArgs,
    }

    fn ws(args: &[&str]) -> WsCommand {
        let cli = Cli::try_parse_from(["bench", "ws"].iter().chain(args)).unwrap();
        match cli.bench.command {
            Some(crate::BenchCommand::Ws(w)) => w.command,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_connect() {
        match ws(&[
            "connect",
            "http://127.0.0.1:8080",
            "--clients",
            "20000",
            "--sources",
            "8",
            "--server-pid",
            "42",
            "--hold",
            "5s",
        ]) {
            WsCommand::Connect(c) => {
                assert_eq!(c.clients, 20_000);
                assert_eq!(c.dial.sources, 8);
                assert_eq!(c.dial.server_pids, [42]);
                assert_eq!(c.hold, Duration::from_secs(5));
                assert_eq!(c.auth.account_prefix, "wsb-");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_fanout_with_two_servers_and_pids() {
        match ws(&[
            "fanout",
            "http://127.0.0.1:8081,http://127.0.0.1:8082",
            "--members",
            "1000",
            "--rate",
            "100",
            "--server-pid",
            "1",
            "--server-pid",
            "2",
            "--json",
            "f.json",
        ]) {
            WsCommand::Fanout(f) => {
                assert_eq!(Server::parse_list(&f.urls).unwrap().len(), 2);
                assert_eq!((f.members, f.rate), (1000, 100.0));
                assert_eq!(f.dial.server_pids, [1, 2]);
                assert_eq!(f.duration, Duration::from_secs(10));
                assert_eq!(f.warmup, Duration::from_secs(2));
            }
            other => panic!("{other:?}"),
        }
        match ws(&["reference", "--listen", "127.0.0.1:9"]) {
            WsCommand::Reference(r) => assert_eq!((r.listen.port(), r.queue), (9, 256)),
            other => panic!("{other:?}"),
        }
    }
}

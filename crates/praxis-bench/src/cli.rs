//! The command line (`praxis bench ...`, also the standalone `praxis-bench` binary) and the
//! glue that turns it into seeding, a run or a search, and their outputs.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::compare::compare;
use crate::findmax::{FindMaxResult, Measurement, Search, Slo, find_max};
use crate::reference::{self, ReferenceArgs};
use crate::report::{write_findmax_report, write_report};
use crate::result::{BenchResult, Machine, RunConfig, now_rfc3339, read_json, write_json};
use crate::runner::{LoadPlan, run_load};
use crate::scenario::Scenario;
use crate::schedule::Arrival;
use crate::seed::{SeedOutcome, seed};
use crate::summary::summary_text;
use crate::units::{format_duration, format_rate, parse_duration};
use crate::workload::Workload;

/// `praxis bench`: run an open-loop load test, or one of the subcommands.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BenchArgs {
    /// A subcommand (compare, reference, ws); without one, run a load test.
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// The load test.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `praxis bench` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchCommand {
    /// Print the differences between two JSON results (B against A) per percentile and rate.
    Compare(CompareArgs),
    /// Serve a fixed redirect with a bare axum handler: the reference to measure beside a
    /// service (pin it: `taskset -c 0 praxis bench reference`).
    Reference(ReferenceArgs),
    /// WebSocket scenarios for the chat: connect, fanout, and their reference server.
    Ws(Box<crate::ws::WsArgs>),
}

/// Arguments of `praxis bench compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The baseline result (`--json` output).
    pub a: PathBuf,
    /// The result to compare with the baseline.
    pub b: PathBuf,
}

/// Arguments of a load test. Unset values come from the scenario's `[load]`, then defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The URL to GET; with --scenario, the base URL (overrides the scenario's base_url).
    pub url: Option<String>,
    /// A scenario file (TOML), see scenarios/.
    #[arg(long, short = 's')]
    pub scenario: Option<PathBuf>,
    /// Target arrival rate, requests per second (required unless the scenario sets it; the
    /// starting rate with --find-max, default 1000).
    #[arg(long, short = 'R')]
    pub rate: Option<f64>,
    /// Measured duration [default: 10s; 5s per --find-max step].
    #[arg(long, short = 'd', value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Warm-up before measuring, excluded from results [default: 2s; 1s per --find-max step].
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Keep-alive connections [default: 32].
    #[arg(long, short = 'c')]
    pub connections: Option<usize>,
    /// Worker threads, each with its own runtime and share of connections [default: 1].
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Arrival process [default: uniform].
    #[arg(long, value_enum)]
    pub arrival: Option<Arrival>,
    /// Per-request timeout [default: 5s].
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Yield-spin this long before each due time instead of trusting tokio's 1 ms timer; 0
    /// turns it off (saves CPU when idle, adds up to ~2 ms of timer error to latencies).
    #[arg(long, default_value = "2ms", value_parser = parse_duration)]
    pub spin: Duration,
    /// Seed of every random choice (arrivals, mix, keys).
    #[arg(long, default_value_t = 1)]
    pub random_seed: u64,
    /// URL mode: the expected status (others are errors); default: anything below 400.
    #[arg(long)]
    pub expect_status: Option<u16>,
    /// Write the result as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a Markdown report (and FILE.svg beside it).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write responses and errors per 10 ms of intended send time, warm-up included, as CSV
    /// (`ms,responses,errors`): when errors began and ended around an event during the run.
    #[arg(long, conflicts_with = "find_max")]
    pub timeline: Option<PathBuf>,
    /// Skip the scenario's seeding step.
    #[arg(long, conflicts_with = "seed_only")]
    pub no_seed: bool,
    /// Only run the scenario's seeding step.
    #[arg(long)]
    pub seed_only: bool,
    /// Search for the highest rate that meets --slo.
    #[arg(long, requires = "slo")]
    pub find_max: bool,
    /// The objective for --find-max, e.g. "p99<50ms" or "p99.9<=200ms,errors<0.1%".
    #[arg(long, value_parser = clap::value_parser!(Slo))]
    pub slo: Option<Slo>,
    /// --find-max: never try a rate above this.
    #[arg(long, default_value_t = 10_000_000.0)]
    pub max_rate: f64,
    /// --find-max: stop when the bracket is within this fraction.
    #[arg(long, default_value_t = 0.05)]
    pub precision: f64,
    /// --find-max: at most this many steps.
    #[arg(long, default_value_t = 20)]
    pub max_steps: usize,
    /// No progress lines.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Runs `praxis bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        Some(BenchCommand::Compare(c)) => {
            let a: BenchResult = read_json(&c.a)?;
            let b: BenchResult = read_json(&c.b)?;
            print!("{}", compare(&a, &b));
            Ok(())
        }
        Some(BenchCommand::Reference(r)) => Ok(reference::run(r).await?),
        Some(BenchCommand::Ws(w)) => crate::ws::run(*w).await,
        None => run_load_command(args.load).await,
    }
}

fn first<T>(a: Option<T>, b: Option<T>, default: T) -> T {
    a.or(b).unwrap_or(default)
}

async fn run_load_command(args: LoadArgs) -> anyhow::Result<()> {
    let scenario = match &args.scenario {
        Some(path) => Some(Scenario::load(path)?),
        None => None,
    };
    let workload = match (&scenario, &args.url) {
        (Some(s), url) => s.compile(url.as_deref())?,
        (None, Some(url)) => Workload::from_url(url, args.expect_status)?,
        (None, None) => bail!("give a URL to load, or --scenario FILE (see `praxis bench --help`)"),
    };
    let workload = Arc::new(workload);
    let verbose = !args.quiet;

    if let Some(spec) = scenario.as_ref().and_then(|s| s.seed.as_ref())
        && !args.no_seed
    {
        let outcome = seed(spec, &workload.target, &workload.prefix, verbose)
            .await
            .context("seeding")?;
        if let SeedOutcome::Created { items, requests } = outcome
            && verbose
        {
            eprintln!("seed: created {items} items in {requests} requests");
        }
    } else if args.seed_only {
        bail!("--seed-only: the scenario has no [seed] section");
    }
    if args.seed_only {
        return Ok(());
    }

    let load = scenario
        .as_ref()
        .map(|s| s.load.clone())
        .unwrap_or_default();
    let parse = |v: &Option<String>| -> anyhow::Result<Option<Duration>> {
        v.as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(Into::into)
    };
    let (default_duration, default_warmup) = if args.find_max {
        (Duration::from_secs(5), Duration::from_secs(1))
    } else {
        (Duration::from_secs(10), Duration::from_secs(2))
    };
    let rate = match args.rate.or(load.rate) {
        Some(r) => r,
        None if args.find_max => 1000.0,
        None => bail!("--rate is required (or set load.rate in the scenario)"),
    };
    if !(rate.is_finite() && rate > 0.0) {
        bail!("--rate must be a positive number");
    }
    let plan = LoadPlan {
        workload: Arc::clone(&workload),
        rate,
        duration: first(args.duration, parse(&load.duration)?, default_duration),
        warmup: first(args.warmup, parse(&load.warmup)?, default_warmup),
        connections: first(args.connections, load.connections, 32).max(1),
        threads: first(args.threads, load.threads, 1).max(1),
        arrival: first(args.arrival, load.arrival, Arrival::Uniform),
        timeout: first(args.timeout, parse(&load.timeout)?, Duration::from_secs(5)),
        spin: args.spin,
        seed: args.random_seed,
        progress: verbose,
    };
    if plan.duration.is_zero() {
        bail!("--duration must be positive");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let ctrl_c = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                // First Ctrl-C: finish early and still report what was measured.
                eprintln!("\nstopping (Ctrl-C again to abort)");
                stop.store(true, Ordering::Relaxed);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        })
    };
    let result = if args.find_max {
        run_find_max(&args, &plan, &stop).await
    } else {
        run_once(&args, &plan, &stop).await
    };
    ctrl_c.abort();
    result
}

fn describe(plan: &LoadPlan) -> String {
    format!(
        "{} -> {}: {} {} arrivals, {} + {} warm-up, {} connections, {} threads",
        plan.workload.name,
        plan.workload.target.url,
        format_rate(plan.rate),
        plan.arrival,
        format_duration(plan.duration),
        format_duration(plan.warmup),
        plan.connections,
        plan.threads.min(plan.connections)
    )
}

async fn run_once(args: &LoadArgs, plan: &LoadPlan, stop: &Arc<AtomicBool>) -> anyhow::Result<()> {
    if plan.progress {
        eprintln!("praxis bench: {}", describe(plan));
    }
    let started_at = now_rfc3339();
    let outcome = run_load(plan, Arc::clone(stop)).await?;
    let result = BenchResult::from_outcome(plan, &outcome, started_at);
    print!("{}", summary_text(&result));
    if let Some(path) = &args.json {
        result.write_json(path)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.report {
        let svg = write_report(path, &result)?;
        eprintln!("wrote {} and {}", path.display(), svg.display());
    }
    if let Some(path) = &args.timeline {
        std::fs::write(path, outcome.recorder.timeline.to_csv())
            .with_context(|| format!("cannot write the timeline to {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

async fn run_find_max(
    args: &LoadArgs,
    plan: &LoadPlan,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let Some(slo) = &args.slo else {
        bail!("--find-max needs --slo, e.g. --slo \"p99<50ms\"");
    };
    let started_at = now_rfc3339();
    eprintln!(
        "praxis bench --find-max {slo}: {} (steps of {} + {} warm-up)",
        plan.workload.target.url,
        format_duration(plan.duration),
        format_duration(plan.warmup)
    );
    let search = Search::new(plan.rate, args.max_rate, args.precision);
    let probe = |rate: f64| {
        let step = LoadPlan {
            rate,
            progress: false,
            ..plan.clone()
        };
        let stop = Arc::clone(stop);
        async move {
            if stop.load(Ordering::Relaxed) {
                return Err(crate::BenchError::Worker("interrupted".into()));
            }
            let outcome = run_load(&step, stop).await?;
            let result = BenchResult::from_outcome(&step, &outcome, now_rfc3339());
            Ok(Measurement::from(&result))
        }
    };
    let mut n = 0;
    let (best, steps) = find_max(search, slo, args.max_steps, probe, |s| {
        n += 1;
        eprintln!("step {n:>2}: {s}");
    })
    .await?;
    match best {
        Some(r) => println!("highest rate meeting {slo}: {}", format_rate(r)),
        None => println!("no rate met {slo}"),
    }
    let result = FindMaxResult {
        tool: format!("praxis-bench {}", env!("CARGO_PKG_VERSION")),
        started_at,
        machine: Machine::detect(),
        scenario: plan.workload.name.clone(),
        target: plan.workload.target.url.clone(),
        slo: slo.to_string(),
        config: RunConfig::from_plan(plan),
        max_rate: best,
        steps,
    };
    if let Some(path) = &args.json {
        write_json(path, &result)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.report {
        write_findmax_report(path, &result)?;
        eprintln!("wrote {}", path.display());
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
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.bench)
    }

    #[test]
    fn parses_a_url_run() {
        let a = parse(&[
            "http://127.0.0.1:8080/k1",
            "--rate",
            "20000",
            "--duration",
            "10s",
            "--warmup",
            "2s",
            "--connections",
            "64",
            "--threads",
            "2",
            "--arrival",
            "poisson",
            "--json",
            "out.json",
            "--report",
            "out.md",
        ])
        .unwrap();
        assert!(a.command.is_none());
        let l = a.load;
        assert_eq!(l.url.as_deref(), Some("http://127.0.0.1:8080/k1"));
        assert_eq!(l.rate, Some(20000.0));
        assert_eq!(l.duration, Some(Duration::from_secs(10)));
        assert_eq!(l.warmup, Some(Duration::from_secs(2)));
        assert_eq!((l.connections, l.threads), (Some(64), Some(2)));
        assert_eq!(l.arrival, Some(Arrival::Poisson));
        assert_eq!(l.spin, Duration::from_millis(2));
        assert_eq!(l.json, Some(PathBuf::from("out.json")));
    }

    #[test]
    fn parses_subcommands() {
        let a = parse(&["compare", "a.json", "b.json"]).unwrap();
        assert!(
            matches!(a.command, Some(BenchCommand::Compare(ref c)) if c.b.as_path() == std::path::Path::new("b.json"))
        );
        let a = parse(&["reference", "--listen", "127.0.0.1:9000"]).unwrap();
        match a.command {
            Some(BenchCommand::Reference(r)) => {
                assert_eq!(r.listen.port(), 9000);
                assert_eq!(r.status, 301);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn find_max_requires_slo() {
        assert!(parse(&["http://x/", "--find-max"]).is_err());
        let a = parse(&["http://x/", "--find-max", "--slo", "p99<50ms"]).unwrap();
        assert!(a.load.find_max);
        assert_eq!(a.load.slo.unwrap().to_string(), "p99<50ms");
        let e = parse(&["http://x/", "--find-max", "--slo", "p99<soon"]).unwrap_err();
        assert!(e.to_string().contains("p99<soon"), "{e}");
    }

    #[test]
    fn bad_duration_is_reported() {
        let e = parse(&["http://x/", "--duration", "10 fortnights"]).unwrap_err();
        assert!(e.to_string().contains("10 fortnights"), "{e}");
    }
}

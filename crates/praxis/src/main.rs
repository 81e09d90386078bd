//! The praxis binary: `serve`, `gateway`, `migrate`, `config`, `backup`, `secrets`, `shards`, `bench`. See `praxis --help`.

mod backup;
mod cli;
mod config;
mod context;
mod log_writer;
mod logging;
mod migrate;
mod otel;
mod secrets;
mod secrets_cmd;
mod serve;
mod shards_cmd;
mod shutdown;
mod systems;

use std::path::PathBuf;
use std::process::ExitCode;

use cli::{Cli, Command};
use config::{Config, LoadOptions, ProcessEnv};

/// Exit status for an invalid configuration (like a usage error).
const CONFIG_ERROR: u8 = 2;

fn main() -> ExitCode {
    praxis_infra::tls::install_crypto_provider();
    let cli = Cli::parse_args();
    let flags = match &cli.command {
        Command::Bench(args) => return run_bench((**args).clone()),
        other => other.effective_flags(),
    };
    let loaded = config::load(&LoadOptions {
        env: &ProcessEnv,
        flags: flags.values,
        config_flag: cli.config.clone(),
        default_file: PathBuf::from("praxis.toml"),
        systems: systems::SYSTEMS,
    });
    let config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("praxis: invalid configuration:");
            for error in &errors.0 {
                eprintln!("  {error}");
            }
            return ExitCode::from(CONFIG_ERROR);
        }
    };

    match cli.command {
        Command::Config(_) => {
            print!("{}", config::render::render(&config));
            ExitCode::SUCCESS
        }
        Command::Serve(_) | Command::Gateway(_) => {
            run_async(config, |c| async move { serve::run(c).await })
        }
        Command::Migrate(_) => run_async(config, |c| async move { migrate::run(&c).await }),
        Command::Secrets(cmd) => secrets_cmd::run(&config, &cmd),
        Command::Shards(cmd) => shards_cmd::run(&config, &cmd),
        Command::Backup(args) => {
            run_async(config, |c| async move { backup::run(&c, &args.to).await })
        }
        Command::Bench(args) => run_bench(*args),
    }
}

/// Runs `praxis bench` on a current-thread runtime (the generator starts its own threads).
fn run_bench(args: praxis_bench::BenchArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("praxis: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(praxis_bench::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("praxis bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts logging and a Tokio runtime, runs `f`, and turns its error into exit status 1.
fn run_async<F, Fut>(config: Config, f: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let logging = match logging::init(&config) {
        Ok(logging) => logging,
        Err(e) => {
            eprintln!("praxis: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("praxis: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = match runtime.block_on(f(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "praxis failed");
            eprintln!("praxis: error: {e:#}");
            ExitCode::FAILURE
        }
    };
    drop(runtime);
    logging.finish();
    status
}

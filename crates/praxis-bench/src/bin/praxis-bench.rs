//! `praxis-bench`: the load generator on its own (the same CLI as `praxis bench`), for
//! measuring without linking the whole praxis binary.

use clap::Parser;

/// praxis bench: an open-loop HTTP load generator (no coordinated omission).
#[derive(Debug, Parser)]
#[command(name = "praxis-bench", version)]
struct Cli {
    #[command(flatten)]
    bench: praxis_bench::BenchArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    praxis_bench::run(Cli::parse().bench).await
}

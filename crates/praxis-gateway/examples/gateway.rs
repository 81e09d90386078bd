//! A standalone gateway process, for benchmarks and trying it out before the binary lists it:
//! `cargo run --release -p praxis-gateway --example gateway -- --routes gateway.toml
//! [--listen 127.0.0.1:8090] [--threads 1]`. Stops on Ctrl-C or SIGTERM.

use std::path::PathBuf;

use praxis_gateway::GatewaySettings;
use tokio_util::sync::CancellationToken;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut settings = GatewaySettings::default();
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--routes" => settings.routes = Some(PathBuf::from(args.next().ok_or("--routes needs a file")?)),
            "--listen" => settings.listen = args.next().ok_or("--listen needs HOST:PORT")?.parse()?,
            "--threads" => threads = args.next().ok_or("--threads needs a number")?.parse()?,
            other => return Err(format!("unknown argument {other:?}; usage: gateway --routes FILE [--listen HOST:PORT] [--threads N]").into()),
        }
    }
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            stop.cancel();
        });
        eprintln!("gateway: listening on {}", settings.listen);
        praxis_gateway::run(settings, shutdown).await
    })?;
    Ok(())
}

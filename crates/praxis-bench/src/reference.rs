//! `praxis bench reference`: a bare axum handler answering every request with a fixed redirect
//! (default `301` to `https://example.com/`, empty body): the peer to measure beside a real
//! service in the same run. It runs on its own runtime (current-thread with `--threads 1`) so
//! its cost does not depend on how the caller's runtime is configured; pin it with `taskset`.

use std::net::SocketAddr;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header::LOCATION};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Command-line arguments of `praxis bench reference`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReferenceArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Runtime threads (1: a current-thread runtime, the cheapest on one pinned core).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Status to answer with.
    #[arg(long, default_value_t = 301)]
    pub status: u16,
    /// `Location` header value.
    #[arg(long, default_value = "https://example.com/")]
    pub location: String,
}

/// Why the reference server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Status or location are invalid.
    #[error("invalid reference response: {0}")]
    Invalid(String),
    /// Binding or serving failed.
    #[error("reference server: {0}")]
    Io(#[from] std::io::Error),
}

/// The router: every method and path answers `status` with `Location: location`.
pub fn router(status: StatusCode, location: HeaderValue) -> Router {
    Router::new().fallback(move || {
        let location = location.clone();
        async move { (status, [(LOCATION, location)]) }
    })
}

fn response_parts(args: &ReferenceArgs) -> Result<(StatusCode, HeaderValue), ReferenceError> {
    let status = StatusCode::from_u16(args.status)
        .map_err(|_| ReferenceError::Invalid(format!("status {}", args.status)))?;
    let location = HeaderValue::from_str(&args.location)
        .map_err(|_| ReferenceError::Invalid(format!("location `{}`", args.location)))?;
    Ok((status, location))
}

/// Serves on the current runtime until `shutdown` resolves. Returns the bound address through
/// `bound` as soon as it listens.
pub async fn serve(
    args: &ReferenceArgs,
    bound: oneshot::Sender<SocketAddr>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ReferenceError> {
    let (status, location) = response_parts(args)?;
    let listener = TcpListener::bind(args.listen).await?;
    let _ = bound.send(listener.local_addr()?);
    axum::serve(listener, router(status, location))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// A reference server running on its own thread and runtime.
#[derive(Debug)]
pub struct ReferenceServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<std::thread::JoinHandle<Result<(), ReferenceError>>>,
}

impl ReferenceServer {
    /// Starts the server on a new thread with its own runtime and waits until it listens.
    pub async fn start(args: ReferenceArgs) -> Result<Self, ReferenceError> {
        response_parts(&args)?;
        let (bound_tx, bound_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let done = std::thread::Builder::new()
            .name("praxis-bench-reference".into())
            .spawn(move || {
                let runtime = if args.threads <= 1 {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?
                } else {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(args.threads)
                        .enable_all()
                        .build()?
                };
                runtime.block_on(serve(&args, bound_tx, async {
                    let _ = stop_rx.await;
                }))
            })?;
        match bound_rx.await {
            Ok(addr) => Ok(ReferenceServer {
                addr,
                stop: Some(stop_tx),
                done: Some(done),
            }),
            Err(_) => match done.join() {
                Ok(Err(e)) => Err(e),
                _ => Err(ReferenceError::Invalid("server thread ended".into())),
            },
        }
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) -> Result<(), ReferenceError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ReferenceError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.done.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ReferenceError::Invalid("server thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// `praxis bench reference`: serves until Ctrl-C.
pub async fn run(args: ReferenceArgs) -> Result<(), ReferenceError> {
    let server = ReferenceServer::start(args.clone()).await?;
    eprintln!(
        "reference: answering {} Location: {} on http://{} ({} thread{}); Ctrl-C to stop",
        args.status,
        args.location,
        server.addr,
        args.threads,
        if args.threads == 1 { "" } else { "s" }
    );
    let _ = tokio::signal::ctrl_c().await;
    server.stop()
}

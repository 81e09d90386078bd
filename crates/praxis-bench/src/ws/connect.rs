//! `praxis bench ws connect`: opens N idle authenticated WebSockets (each its own account),
//! holds them, and reads the server's resident memory before and after, which gives the
//! memory each idle connection costs the server.
//!
//! Connections are opened with at most `concurrency` handshakes in flight. Each stays open in
//! a task that only reads (so a server close is noticed and counted), until the run ends.
//! `hold` is a deliberate wait after the last connection opened, so what the handshakes
//! allocated and freed settles before the second reading.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::result::{Machine, now_rfc3339};
use crate::ws::WsError;
use crate::ws::dial::{DialError, Dialer, Ws};
use crate::ws::proc;
use crate::ws::token::account;

/// What to run.
#[derive(Debug, Clone)]
pub struct ConnectPlan {
    /// Opens the connections.
    pub dialer: Dialer,
    /// How many.
    pub clients: usize,
    /// Handshakes in flight at most.
    pub concurrency: usize,
    /// How long to hold them all open before the second memory reading.
    pub hold: Duration,
    /// Server processes whose memory to read.
    pub server_pids: Vec<u32>,
    /// Accounts are `<prefix><index>`.
    pub account_prefix: String,
    /// Print progress on stderr.
    pub progress: bool,
}

/// One server process's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMemory {
    /// The process.
    pub pid: u32,
    /// VmRSS before the first connection, bytes.
    pub rss_before: u64,
    /// VmRSS with every connection open, after the hold, bytes.
    pub rss_after: u64,
}

/// The result (`--json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectResult {
    /// The generator and its version.
    pub tool: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// Where it ran.
    pub machine: Machine,
    /// The WebSocket URL.
    pub url: String,
    /// Connections asked for.
    pub clients: usize,
    /// Connections opened.
    pub opened: usize,
    /// Connections that failed to open, by reason.
    pub failures: BTreeMap<String, u64>,
    /// The first failure's message, which says what to do.
    pub first_failure: Option<String>,
    /// Connections the server closed before the end of the hold.
    pub closed_by_server: usize,
    /// Seconds to open them all.
    pub connect_seconds: f64,
    /// Seconds held open before reading memory again.
    pub hold_seconds: f64,
    /// Each server process's memory.
    pub servers: Vec<ServerMemory>,
    /// Sum of the servers' VmRSS before, bytes.
    pub rss_before: Option<u64>,
    /// Sum of the servers' VmRSS after, bytes.
    pub rss_after: Option<u64>,
    /// `(rss_after - rss_before) / open connections`, bytes.
    pub bytes_per_connection: Option<f64>,
}

impl ConnectResult {
    /// Connections that failed to open.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// The summary for people.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "opened {}/{} in {:.1}s ({:.0}/s), failed {}\n",
            self.opened,
            self.clients,
            self.connect_seconds,
            self.opened as f64 / self.connect_seconds.max(1e-9),
            self.failed()
        );
        for (reason, n) in &self.failures {
            out.push_str(&format!("  failed {reason}: {n}\n"));
        }
        if let Some(first) = &self.first_failure {
            out.push_str(&format!("  first failure: {first}\n"));
        }
        out.push_str(&format!(
            "held {:.1}s: {} still open, {} closed by the server\n",
            self.hold_seconds,
            self.opened - self.closed_by_server,
            self.closed_by_server
        ));
        for s in &self.servers {
            out.push_str(&format!(
                "server pid {}: VmRSS {} -> {}\n",
                s.pid,
                mib(s.rss_before),
                mib(s.rss_after)
            ));
        }
        if let Some(b) = self.bytes_per_connection {
            out.push_str(&format!(
                "server memory per open connection: {b:.0} bytes ({:.2} KiB)\n",
                b / 1024.0
            ));
        }
        out
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn rss_all(pids: &[u32]) -> Result<Vec<u64>, WsError> {
    Ok(pids
        .iter()
        .map(|&pid| proc::rss_bytes(pid))
        .collect::<Result<_, _>>()?)
}

/// Opens, holds and closes the connections; reads memory around them.
pub async fn run(plan: &ConnectPlan) -> Result<ConnectResult, WsError> {
    let started_at = now_rfc3339();
    let before = rss_all(&plan.server_pids)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let closed = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Result<(), DialError>>();
    let permits = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let mut holders = JoinSet::new();
    let start = Instant::now();

    // Spawns each connection as soon as a handshake slot is free.
    let spawner = {
        let dialer = plan.dialer.clone();
        let prefix = plan.account_prefix.clone();
        let closed = Arc::clone(&closed);
        let clients = plan.clients;
        async move {
            for i in 0..clients {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let dialer = dialer.clone();
                let name = account(&prefix, i);
                let done = done_tx.clone();
                let stop = stop_rx.clone();
                let closed = Arc::clone(&closed);
                holders.spawn(async move {
                    let opened = dialer.open(i, &name).await;
                    drop(permit);
                    match opened {
                        Ok(ws) => {
                            let _ = done.send(Ok(()));
                            hold(ws, stop, &closed).await;
                        }
                        Err(e) => {
                            let _ = done.send(Err(e));
                        }
                    }
                });
            }
            holders
        }
    };
    let spawner = tokio::spawn(spawner);

    let mut opened = 0usize;
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_failure = None;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let mut finished = 0usize;
    while finished < plan.clients {
        tokio::select! {
            result = done_rx.recv() => {
                let Some(result) = result else { break };
                finished += 1;
                match result {
                    Ok(()) => opened += 1,
                    Err(e) => {
                        *failures.entry(e.reason()).or_default() += 1;
                        first_failure.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            _ = ticker.tick(), if plan.progress => {
                eprintln!(
                    "connect {:>5.1}s: {opened}/{} open, {} failed",
                    start.elapsed().as_secs_f64(),
                    plan.clients,
                    finished - opened
                );
            }
        }
    }
    let connect_seconds = start.elapsed().as_secs_f64();
    if plan.progress {
        eprintln!(
            "connect: {opened} open in {connect_seconds:.1}s; holding {:?}",
            plan.hold
        );
    }
    tokio::time::sleep(plan.hold).await;
    let after = rss_all(&plan.server_pids)?;
    let closed_by_server = closed.load(Ordering::Relaxed);

    let _ = stop_tx.send(true);
    let mut holders = spawner
        .await
        .map_err(|e| WsError::Setup(format!("connection spawner failed: {e}")))?;
    while holders.join_next().await.is_some() {}

    let servers: Vec<ServerMemory> = plan
        .server_pids
        .iter()
        .zip(before.iter().zip(&after))
        .map(|(&pid, (&b, &a))| ServerMemory {
            pid,
            rss_before: b,
            rss_after: a,
        })
        .collect();
    let (rss_before, rss_after) = if servers.is_empty() {
        (None, None)
    } else {
        (
            Some(before.iter().sum::<u64>()),
            Some(after.iter().sum::<u64>()),
        )
    };
    let still_open = opened - closed_by_server.min(opened);
    let bytes_per_connection = match (rss_before, rss_after) {
        (Some(b), Some(a)) if still_open > 0 => Some((a as f64 - b as f64) / still_open as f64),
        _ => None,
    };
    Ok(ConnectResult {
        tool: format!("praxis-bench {}", env!("CARGO_PKG_VERSION")),
        started_at,
        machine: Machine::detect(),
        url: plan.dialer.server().ws_url.clone(),
        clients: plan.clients,
        opened,
        failures,
        first_failure,
        closed_by_server,
        connect_seconds,
        hold_seconds: plan.hold.as_secs_f64(),
        servers,
        rss_before,
        rss_after,
        bytes_per_connection,
    })
}

/// Keeps one connection open, reading (and dropping) whatever the server sends, until `stop`;
/// counts it in `closed` when the server ends it first.
async fn hold(mut ws: Ws, mut stop: watch::Receiver<bool>, closed: &AtomicUsize) {
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(frame)) if !frame.is_close() => {}
                _ => {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
        }
    }
}

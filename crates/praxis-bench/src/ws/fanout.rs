//! `praxis bench ws fanout`: one sender, a group of M members, and the delivery of every
//! message to every other member, measured from the message's *intended* send time.
//!
//! 1. The group is created over REST on the first server, owned by account `<prefix>0`, the
//!    sender; members `<prefix>1 .. <prefix>M-1` are the receivers.
//! 2. Every receiver connects (round-robin over the servers, at most `concurrency`
//!    handshakes in flight), subscribes, and waits for `subscribed`. Then, and only then, the
//!    sender starts.
//! 3. The sender, on one connection to the first server (not subscribed: each stored message
//!    comes back to it directly, which counts it as stored), sends at `rate` open loop: the
//!    `i`-th message is due at `start + offset_i` whatever the server does, and its body
//!    carries that intended time ([`crate::ws::frames`]). It keeps sending for warm-up + duration.
//! 4. Each receiver records the latency of each measured message as receive time minus
//!    intended time ([`Tally`]). Once the sender knows which sends were stored, receivers stop
//!    when they hold all of them, or after `drain`.
//! 5. Everything is accounted: a send is stored, refused (an `error` frame, by code) or
//!    unanswered; a delivery that never came is *lost*, a second copy a *duplicate*, and a
//!    receiver the server closed is listed with its close code.
//!
//! Server CPU (utime + stime of each `--server-pid`) is read when the measured window starts
//! and when the last receiver finished; deliveries per server CPU-second divide the measured
//! deliveries by their sum. The delivery rate divides the measured deliveries by the time from
//! the window's start to the last measured delivery.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::result::{LatencySummary, Machine, now_rfc3339};
use crate::schedule::Arrival;
use crate::units::{format_micros, format_rate};
use crate::ws::WsError;
use crate::ws::dial::{Dialer, Ws};
use crate::ws::proc::CpuSample;
use crate::ws::receiver::{Phase, Received, Receivers};
use crate::ws::rest;
use crate::ws::sender::{self, SendPlan};
use crate::ws::tally::{SeqSet, Tally};
use crate::ws::token::account;

/// What to run.
#[derive(Debug, Clone)]
pub struct FanoutPlan {
    /// One dialer per server; the first also creates the group and carries the sender.
    pub dialers: Vec<Dialer>,
    /// Members of the group, the sender included.
    pub members: usize,
    /// Messages per second.
    pub rate: f64,
    /// Measured window.
    pub duration: Duration,
    /// Sent but not measured, before the window.
    pub warmup: Duration,
    /// After the last send: how long to wait for replies and deliveries.
    pub drain: Duration,
    /// Arrival process of the sends.
    pub arrival: Arrival,
    /// Sleep until this long before a due time, then yield until it.
    pub spin: Duration,
    /// Seed of Poisson arrivals.
    pub seed: u64,
    /// Pad message bodies to this many bytes.
    pub body_bytes: usize,
    /// Handshakes (and subscriptions) in flight at most.
    pub concurrency: usize,
    /// Server processes whose CPU time to read.
    pub server_pids: Vec<u32>,
    /// Accounts are `<prefix><index>`.
    pub account_prefix: String,
    /// Print progress on stderr.
    pub progress: bool,
}

/// CPU time one server process used in the measured interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerCpu {
    /// The process.
    pub pid: u32,
    /// utime + stime, seconds.
    pub cpu_seconds: f64,
}

/// The result (`--json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FanoutResult {
    /// The generator and its version.
    pub tool: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// Where it ran.
    pub machine: Machine,
    /// The servers' WebSocket URLs; the sender is on the first.
    pub servers: Vec<String>,
    /// The group.
    pub conversation_id: String,
    /// Members, the sender included.
    pub members: usize,
    /// Members receiving (members - 1).
    pub receivers: usize,
    /// Target messages per second.
    pub rate: f64,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Messages sent (warm-up included).
    pub sent: u64,
    /// Sends the server stored (answered with the message).
    pub stored: u64,
    /// Sends refused, by error code.
    pub send_errors: BTreeMap<String, u64>,
    /// The first refusal's code and detail.
    pub first_send_error: Option<String>,
    /// Sends with no answer within the drain.
    pub unanswered: u64,
    /// stored × receivers.
    pub expected_deliveries: u64,
    /// Deliveries received (first copies, warm-up included).
    pub delivered: u64,
    /// Expected deliveries that never came.
    pub lost: u64,
    /// Second copies.
    pub duplicates: u64,
    /// Deliveries of messages of the measured window.
    pub measured_deliveries: u64,
    /// From the window's start to the last measured delivery, seconds.
    pub measured_seconds: f64,
    /// measured_deliveries / measured_seconds.
    pub deliveries_per_second: f64,
    /// Receive time minus intended send time of measured deliveries.
    pub latency: LatencySummary,
    /// Stored reply time minus intended send time, at the sender.
    pub store_latency: LatencySummary,
    /// How late the sender sent (generator health), all sends.
    pub schedule_lag: LatencySummary,
    /// Receivers whose connection ended before the run, by reason (e.g. `close 4008`).
    pub receivers_closed: BTreeMap<String, u64>,
    /// Each server's CPU over the measured interval.
    pub cpu: Vec<ServerCpu>,
    /// Their sum, seconds.
    pub cpu_seconds: Option<f64>,
    /// measured_deliveries / cpu_seconds.
    pub deliveries_per_cpu_second: Option<f64>,
}

impl FanoutResult {
    /// Whether every send was stored and every delivery arrived exactly once.
    pub fn complete(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.unanswered == 0
            && self.send_errors.is_empty()
            && self.stored == self.sent
    }

    /// The summary for people.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "sent {}, stored {}, refused {}, unanswered {}\n",
            self.sent,
            self.stored,
            self.send_errors.values().sum::<u64>(),
            self.unanswered
        );
        for (code, n) in &self.send_errors {
            out.push_str(&format!("  refused {code}: {n}\n"));
        }
        if let Some(first) = &self.first_send_error {
            out.push_str(&format!("  first refusal: {first}\n"));
        }
        out.push_str(&format!(
            "deliveries: {} of {} expected ({} lost, {} duplicates); measured {} in {:.2}s: {}\n",
            self.delivered,
            self.expected_deliveries,
            self.lost,
            self.duplicates,
            self.measured_deliveries,
            self.measured_seconds,
            format_rate(self.deliveries_per_second)
        ));
        let l = |s: &LatencySummary| {
            format!(
                "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
                format_micros(s.p50_us),
                format_micros(s.p90_us),
                format_micros(s.p99_us),
                format_micros(s.p999_us),
                format_micros(s.max_us)
            )
        };
        out.push_str(&format!("delivery latency  {}\n", l(&self.latency)));
        out.push_str(&format!("stored (sender)   {}\n", l(&self.store_latency)));
        out.push_str(&format!("schedule lag      {}\n", l(&self.schedule_lag)));
        for (reason, n) in &self.receivers_closed {
            out.push_str(&format!("receivers closed early, {reason}: {n}\n"));
        }
        for c in &self.cpu {
            out.push_str(&format!(
                "server pid {}: {:.2} CPU-seconds\n",
                c.pid, c.cpu_seconds
            ));
        }
        if let (Some(cpu), Some(per)) = (self.cpu_seconds, self.deliveries_per_cpu_second) {
            out.push_str(&format!(
                "server CPU {cpu:.2}s: {} deliveries per server CPU-second\n",
                format_rate(per).trim_end_matches("/s")
            ));
        }
        if !self.complete() {
            out.push_str(
                "INCOMPLETE: see the lost, duplicate, refused or unanswered counts above\n",
            );
        }
        out
    }
}

/// Runs the scenario.
pub async fn run(plan: &FanoutPlan) -> Result<FanoutResult, WsError> {
    if plan.members < 2 {
        return Err(WsError::Config(
            "--members must be at least 2 (a sender and a receiver)".into(),
        ));
    }
    if !(plan.rate.is_finite() && plan.rate > 0.0) {
        return Err(WsError::Config("--rate must be a positive number".into()));
    }
    let Some(first) = plan.dialers.first() else {
        return Err(WsError::Config("give at least one server URL".into()));
    };
    let started_at = now_rfc3339();
    let sender_account = account(&plan.account_prefix, 0);
    let accounts: Vec<String> = (1..plan.members)
        .map(|i| account(&plan.account_prefix, i))
        .collect();
    let conversation =
        rest::create_group(first.server(), first.signer(), &sender_account, &accounts)
            .await
            .map_err(WsError::Setup)?;
    if plan.progress {
        eprintln!("fanout: group {conversation} of {} members", plan.members);
    }

    let epoch = Instant::now();
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let delivered = Arc::new(AtomicU64::new(0));
    let receivers = Receivers {
        dialers: &plan.dialers,
        accounts: &accounts,
        conversation: &conversation,
        concurrency: plan.concurrency,
        epoch,
    };
    let tasks = receivers.start(&phase_rx, &delivered).await?;
    if plan.progress {
        eprintln!(
            "fanout: {} receivers subscribed in {:.1}s",
            accounts.len(),
            epoch.elapsed().as_secs_f64()
        );
    }

    let sender_ws = first.open(0, &sender_account).await?;
    let start = Instant::now();
    let measure_start = start + plan.warmup;
    let sender = tokio::spawn(sender::send(
        sender_ws,
        send_plan(plan, &conversation),
        epoch,
        start,
    ));
    let progress = plan
        .progress
        .then(|| tokio::spawn(report_progress(start, Arc::clone(&delivered))));
    tokio::time::sleep_until(measure_start.into()).await;
    let cpu_start = CpuSample::take(&plan.server_pids)?;
    let sent = sender
        .await
        .map_err(|e| WsError::Setup(format!("the sender failed: {e}")))?;

    let stored = Arc::new(sent.replies.stored.clone());
    let _ = phase_tx.send(Phase::Expect(Arc::clone(&stored)));
    let gathered = gather(tasks, &stored, &phase_tx, plan.drain).await?;
    let cpu_end = CpuSample::take(&plan.server_pids)?;
    if let Some(p) = progress {
        p.abort();
    }
    drop(gathered.open);

    let total = gathered.total;
    let measured_end = total.last_measured_at.unwrap_or(cpu_end.at);
    let measured_seconds = measured_end
        .saturating_duration_since(measure_start)
        .as_secs_f64();
    let cpu: Vec<ServerCpu> = cpu_start
        .seconds_until(&cpu_end)
        .into_iter()
        .map(|(pid, cpu_seconds)| ServerCpu { pid, cpu_seconds })
        .collect();
    let cpu_seconds = (!cpu.is_empty()).then(|| cpu.iter().map(|c| c.cpu_seconds).sum::<f64>());
    let replies = sent.replies;
    Ok(FanoutResult {
        tool: format!("praxis-bench {}", env!("CARGO_PKG_VERSION")),
        started_at,
        machine: Machine::detect(),
        servers: plan
            .dialers
            .iter()
            .map(|d| d.server().ws_url.clone())
            .collect(),
        conversation_id: conversation,
        members: plan.members,
        receivers: accounts.len(),
        rate: plan.rate,
        duration_s: plan.duration.as_secs_f64(),
        warmup_s: plan.warmup.as_secs_f64(),
        sent: sent.sent,
        stored: replies.stored.len(),
        unanswered: sent
            .sent
            .saturating_sub(replies.stored.len() + replies.refused.len()),
        send_errors: replies.errors,
        first_send_error: replies.first_error,
        expected_deliveries: replies.stored.len() * accounts.len() as u64,
        delivered: gathered.delivered,
        lost: gathered.lost,
        duplicates: total.duplicates,
        measured_deliveries: total.measured,
        measured_seconds,
        deliveries_per_second: if measured_seconds > 0.0 {
            total.measured as f64 / measured_seconds
        } else {
            0.0
        },
        latency: LatencySummary::from_histogram(&total.latency),
        store_latency: LatencySummary::from_histogram(&replies.store_latency),
        schedule_lag: LatencySummary::from_histogram(&sent.lag),
        receivers_closed: gathered.closed,
        deliveries_per_cpu_second: cpu_seconds
            .filter(|&c| c > 0.0)
            .map(|c| total.measured as f64 / c),
        cpu_seconds,
        cpu,
    })
}

fn send_plan(plan: &FanoutPlan, conversation: &str) -> SendPlan {
    SendPlan {
        conversation: conversation.to_owned(),
        rate: plan.rate,
        warmup: plan.warmup,
        duration: plan.duration,
        drain: plan.drain,
        arrival: plan.arrival,
        spin: plan.spin,
        seed: plan.seed,
        body_bytes: plan.body_bytes,
    }
}

async fn report_progress(start: Instant, delivered: Arc<AtomicU64>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        ticker.tick().await;
        eprintln!(
            "fanout {:>5.1}s: {} deliveries",
            start.elapsed().as_secs_f64(),
            delivered.load(Ordering::Relaxed)
        );
    }
}

/// Every receiver's count, merged.
struct Gathered {
    total: Tally,
    delivered: u64,
    lost: u64,
    closed: BTreeMap<String, u64>,
    /// Connections still open, closed by the caller after its last CPU reading.
    open: Vec<Ws>,
}

/// Waits for every receiver (they stop once they hold every `stored` message); after
/// `drain`, tells the rest to stop.
async fn gather(
    mut tasks: JoinSet<Received>,
    stored: &SeqSet,
    phase: &watch::Sender<Phase>,
    drain: Duration,
) -> Result<Gathered, WsError> {
    let deadline = tokio::time::sleep(drain);
    tokio::pin!(deadline);
    let mut stopped = false;
    let mut g = Gathered {
        total: Tally::default(),
        delivered: 0,
        lost: 0,
        closed: BTreeMap::new(),
        open: Vec::with_capacity(tasks.len()),
    };
    loop {
        tokio::select! {
            joined = tasks.join_next() => {
                let Some(joined) = joined else { break };
                let r = joined.map_err(|e| WsError::Setup(format!("a receiver failed: {e}")))?;
                g.lost += stored.missing_from(&r.tally.seen);
                g.delivered += r.tally.seen.len();
                g.total.merge_counts(&r.tally);
                if let Some(reason) = r.closed {
                    *g.closed.entry(reason).or_default() += 1;
                }
                g.open.extend(r.ws);
            }
            () = &mut deadline, if !stopped => {
                stopped = true;
                let _ = phase.send(Phase::Stop);
            }
        }
    }
    Ok(g)
}

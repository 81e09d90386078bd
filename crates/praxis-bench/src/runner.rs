//! The load run: worker threads, the per-connection open-loop request loop, warm-up, drain and
//! live progress.
//!
//! # The hot loop
//!
//! `--threads N` OS threads each run a current-thread tokio runtime and own every N-th
//! connection. A thread drives its connection loops as plain futures in one
//! `FuturesUnordered` (no task per request, no task per connection loop; only hyper's
//! connection driver is a task) and records into its own [`Recorder`] (`Rc<RefCell>`, no
//! locks, no atomics). Histograms are merged once, at the end.
//!
//! Each connection loop walks its [`ConnSchedule`]: request `i` is due at `t0 + offset_i`
//! whatever the server does. If the loop is early it sleeps; tokio's timer wheel has 1 ms
//! ticks and a sleep can end up to about 2 ms after its deadline, so the loop sleeps until
//! `spin` (default 2 ms) before the due time and then yields until the due time, which keeps
//! send times accurate to microseconds while other connections keep running; if it is late (the previous
//! response took longer than the gap) it sends at once. Either way the latency is measured
//! from the *intended* time, so a server stall counts against every request that should have
//! been sent during it: no coordinated omission. How late requests actually left is recorded
//! too (the schedule lag), so a generator that cannot keep up is visible in the results.
//!
//! Requests due during warm-up are sent but not recorded. Requests due before the end are all
//! accounted for: after the end the loop keeps sending its backlog until `end + timeout`,
//! and whatever is still unsent then counts as a timeout.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::BenchError;
use crate::client::{self, Exchange, Sender};
use crate::progress::ProgressLine;
use crate::record::{ErrorKind, Recorder, new_histogram};
use crate::schedule::{Arrival, ConnSchedule, mix};
use crate::workload::{RequestGen, Workload};

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// What to send and where.
    pub workload: Arc<Workload>,
    /// Target arrival rate, requests per second (all connections together).
    pub rate: f64,
    /// Measured duration (after warm-up).
    pub duration: Duration,
    /// Warm-up: requests due in it are sent but not recorded.
    pub warmup: Duration,
    /// Number of keep-alive connections.
    pub connections: usize,
    /// Worker threads (each with its own runtime); at most `connections`.
    pub threads: usize,
    /// Arrival process.
    pub arrival: Arrival,
    /// Per-request (and connect) timeout.
    pub timeout: Duration,
    /// How long before a due time to stop sleeping and yield-spin (0: sleep only, 1 ms timer
    /// resolution).
    pub spin: Duration,
    /// Seed of every random choice (arrivals, request mix, keys).
    pub seed: u64,
    /// Print a progress line every second on stderr.
    pub progress: bool,
}

/// The raw outcome of a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// All threads' recordings merged.
    pub recorder: Recorder,
    /// Requests due in the measured window (each one is a response or an error).
    pub scheduled: u64,
    /// The measured window: from the end of warm-up to the later of the planned end and the
    /// last measured response (shorter if interrupted).
    pub elapsed: Duration,
    /// True if the run was stopped early (Ctrl-C).
    pub interrupted: bool,
}

/// One thread's live numbers for one second.
#[derive(Debug)]
struct Tick {
    hist: Histogram<u64>,
    responses: u64,
    errors: u64,
}

/// One thread's final numbers.
#[derive(Debug)]
struct ThreadResult {
    recorder: Recorder,
    scheduled: u64,
    last_done: Option<Instant>,
}

/// Shared, read-only timing of a run.
#[derive(Debug, Clone, Copy)]
struct Clock {
    t0: Instant,
    warm_end: Instant,
    end: Instant,
    drain_deadline: Instant,
}

/// Runs the plan and returns the merged recordings. `stop` ends the run early when set.
pub async fn run_load(plan: &LoadPlan, stop: Arc<AtomicBool>) -> Result<RunOutcome, BenchError> {
    if !(plan.rate.is_finite() && plan.rate > 0.0) {
        return Err(BenchError::Config("rate must be a positive number".into()));
    }
    if plan.connections == 0 {
        return Err(BenchError::Config("connections must be at least 1".into()));
    }
    let threads = plan.threads.clamp(1, plan.connections);
    let addr = client::resolve(&plan.workload.target)
        .await
        .map_err(|e| BenchError::Config(e.to_string()))?;
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let (clock_tx, clock_rx) = watch::channel::<Option<Clock>>(None);
    let (tick_tx, mut tick_rx) = mpsc::unbounded_channel::<Tick>();
    let mut results = Vec::with_capacity(threads);
    for t in 0..threads {
        let conns: Vec<usize> = (t..plan.connections).step_by(threads).collect();
        let (res_tx, res_rx) = oneshot::channel();
        let plan = plan.clone();
        let ready_tx = ready_tx.clone();
        let clock_rx = clock_rx.clone();
        let tick_tx = tick_tx.clone();
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name(format!("praxis-bench-{t}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let out = match runtime {
                    Ok(rt) => {
                        Ok(rt
                            .block_on(worker(plan, conns, addr, ready_tx, clock_rx, tick_tx, stop)))
                    }
                    Err(e) => {
                        let _ = ready_tx.send(());
                        Err(e.to_string())
                    }
                };
                let _ = res_tx.send(out);
            })?;
        results.push(res_rx);
    }
    drop(ready_tx);
    drop(tick_tx);
    for _ in 0..threads {
        if ready_rx.recv().await.is_none() {
            break;
        }
    }
    let t0 = Instant::now() + Duration::from_millis(10);
    let clock = Clock {
        t0,
        warm_end: t0 + plan.warmup,
        end: t0 + plan.warmup + plan.duration,
        drain_deadline: t0 + plan.warmup + plan.duration + plan.timeout,
    };
    // Receivers only go away if a worker died; the results below report that.
    let _ = clock_tx.send(Some(clock));

    let mut line = ProgressLine::new(plan.progress, plan.warmup);
    let mut stopped_at = None;
    let mut ticker =
        tokio::time::interval_at(t0 + Duration::from_millis(1050), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut window = new_histogram();
    let (mut responses, mut errors) = (0u64, 0u64);
    let mut all = futures::future::join_all(results);
    let joined = loop {
        tokio::select! {
            joined = &mut all => break joined,
            Some(tick) = tick_rx.recv() => {
                let _ = window.add(&tick.hist);
                responses += tick.responses;
                errors += tick.errors;
            }
            _ = ticker.tick() => {
                line.print(t0.elapsed(), responses, errors, &window);
                window.reset();
                responses = 0;
                errors = 0;
            }
        }
        if stopped_at.is_none() && stop.load(Ordering::Relaxed) {
            stopped_at = Some(Instant::now());
        }
    };
    line.finish();

    let mut merged = Recorder::new(&plan.workload.kind_names());
    let mut scheduled = 0;
    let mut last_done: Option<Instant> = None;
    for r in joined {
        let r = r
            .map_err(|_| BenchError::Worker("a worker thread panicked".into()))?
            .map_err(BenchError::Worker)?;
        merged.merge(&r.recorder);
        scheduled += r.scheduled;
        last_done = last_done.max(r.last_done);
    }
    let interrupted = stopped_at.is_some() || stop.load(Ordering::Relaxed);
    let window_end = match stopped_at {
        Some(at) => at.min(clock.end),
        None => clock.end.max(last_done.unwrap_or(clock.end)),
    };
    Ok(RunOutcome {
        recorder: merged,
        scheduled,
        elapsed: window_end.saturating_duration_since(clock.warm_end),
        interrupted,
    })
}

/// One worker thread: connect, wait for the start, run the connection loops.
async fn worker(
    plan: LoadPlan,
    conns: Vec<usize>,
    addr: SocketAddr,
    ready: mpsc::UnboundedSender<()>,
    mut clock_rx: watch::Receiver<Option<Clock>>,
    ticks: mpsc::UnboundedSender<Tick>,
    stop: Arc<AtomicBool>,
) -> ThreadResult {
    let recorder = Rc::new(RefCell::new(Recorder::new(&plan.workload.kind_names())));
    // Connect before the clock starts so connection set-up is not in the first requests.
    let senders = futures::future::join_all(conns.iter().map(|_| async {
        tokio::time::timeout(plan.timeout, client::connect(addr))
            .await
            .ok()
            .and_then(Result::ok)
    }))
    .await;
    let _ = ready.send(());
    let clock = match clock_rx.wait_for(Option::is_some).await {
        Ok(c) => *c,
        Err(_) => None,
    };
    let Some(clock) = clock else {
        return ThreadResult {
            recorder: recorder.replace(Recorder::new(&[])),
            scheduled: 0,
            last_done: None,
        };
    };
    let last_done = Rc::new(Cell::new(None));
    let mut loops: FuturesUnordered<_> = conns
        .iter()
        .zip(senders)
        .map(|(&c, sender)| {
            connection_loop(
                &plan,
                c,
                sender,
                addr,
                clock,
                Rc::clone(&recorder),
                Rc::clone(&last_done),
                &stop,
            )
        })
        .collect();
    let mut scheduled = 0;
    let run = async {
        while let Some(n) = loops.next().await {
            scheduled += n;
        }
    };
    let progress = async {
        let mut interval =
            tokio::time::interval_at(clock.t0 + Duration::from_secs(1), Duration::from_secs(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            let (hist, responses, errors) = recorder.borrow_mut().take_live();
            let _ = ticks.send(Tick {
                hist,
                responses,
                errors,
            });
        }
    };
    tokio::select! {
        _ = run => {}
        _ = progress => {}
    }
    ThreadResult {
        recorder: recorder.replace(Recorder::new(&[])),
        scheduled,
        last_done: last_done.get(),
    }
}

/// One connection's open-loop request loop. Returns how many requests were due in the
/// measured window.
#[allow(clippy::too_many_arguments)]
async fn connection_loop(
    plan: &LoadPlan,
    conn: usize,
    mut sender: Option<Sender>,
    addr: SocketAddr,
    clock: Clock,
    recorder: Rc<RefCell<Recorder>>,
    last_done: Rc<Cell<Option<Instant>>>,
    stop: &AtomicBool,
) -> u64 {
    let mut schedule =
        ConnSchedule::new(plan.arrival, plan.rate, conn, plan.connections, plan.seed);
    let mut requests = RequestGen::new(
        Arc::clone(&plan.workload),
        mix(plan.seed ^ 0x5eed, conn as u64),
    );
    let mut timer = Box::pin(tokio::time::sleep_until(clock.t0));
    let mut scheduled = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let intended = clock.t0 + schedule.next_offset();
        if intended >= clock.end {
            break;
        }
        let measured = intended >= clock.warm_end;
        scheduled += u64::from(measured);

        // Wait for the intended time (never for the server).
        let wake = intended.checked_sub(plan.spin).unwrap_or(intended);
        if Instant::now() < wake {
            timer.as_mut().reset(wake);
            timer.as_mut().await;
        }
        while Instant::now() < intended {
            tokio::task::yield_now().await;
        }

        let (kind, mut req) = match requests.next_request() {
            Ok(r) => r,
            Err(_) => {
                let mut rec = recorder.borrow_mut();
                rec.failure(0, ErrorKind::Io, measured);
                rec.timeline.record(intended - clock.t0, false, true);
                continue;
            }
        };
        if Instant::now() > clock.drain_deadline {
            // The run is over and this request could not even be sent in time.
            let mut rec = recorder.borrow_mut();
            rec.failure(kind, ErrorKind::Timeout, measured);
            rec.timeline.record(intended - clock.t0, false, true);
            continue;
        }
        let expect = plan.workload.kinds[kind].expect;

        // Send, reconnecting at most once if the connection was closed before the request
        // left (e.g. the server ended keep-alive).
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let s = match sender.as_mut() {
                Some(s) => s,
                None => match connect(addr, plan.timeout).await {
                    Some(s) => sender.insert(s),
                    None => break Err(ErrorKind::Connect),
                },
            };
            let sent = Instant::now();
            timer.as_mut().reset(sent + plan.timeout);
            let result = tokio::select! {
                biased;
                r = client::exchange(s, req) => Some(r),
                _ = timer.as_mut() => None,
            };
            match result {
                Some(Ok(Exchange::Status(status))) => break Ok((sent, status)),
                Some(Ok(Exchange::NotSent(back))) if attempts < 2 => {
                    sender = None;
                    req = *back;
                }
                Some(Ok(Exchange::NotSent(_))) | Some(Err(_)) => {
                    sender = None;
                    break Err(ErrorKind::Io);
                }
                None => {
                    sender = None;
                    break Err(ErrorKind::Timeout);
                }
            }
        };
        let done = Instant::now();
        let mut rec = recorder.borrow_mut();
        match outcome {
            Ok((sent, status)) => {
                let error = ErrorKind::classify(status, expect);
                rec.send_lag(sent.saturating_duration_since(intended), measured);
                rec.timeline
                    .record(intended - clock.t0, true, error.is_some());
                rec.response(
                    kind,
                    done.saturating_duration_since(intended),
                    done.saturating_duration_since(sent),
                    error,
                    measured,
                );
                if measured {
                    last_done.set(last_done.get().max(Some(done)));
                }
            }
            Err(e) => {
                rec.failure(kind, e, measured);
                rec.timeline.record(intended - clock.t0, false, true);
            }
        }
    }
    scheduled
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Option<Sender> {
    tokio::time::timeout(timeout, client::connect(addr))
        .await
        .ok()
        .and_then(Result::ok)
}

//! `praxis bench ws connect` and `fanout` against the built-in WebSocket reference, in
//! process, with small numbers. Counts come from the schedule and the group's size; nothing
//! depends on how fast this machine is.

use std::time::Duration;

use praxis_bench::schedule::Arrival;
use praxis_bench::ws::connect::{self, ConnectPlan};
use praxis_bench::ws::dial::{Dialer, Server, source_addresses};
use praxis_bench::ws::fanout::{self, FanoutPlan};
use praxis_bench::ws::reference::{WsReferenceArgs, WsReferenceServer};

async fn reference() -> WsReferenceServer {
    WsReferenceServer::start(WsReferenceArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        threads: 1,
        queue: 4096,
        read_buffer: 4096,
        nagle: false,
    })
    .await
    .unwrap()
}

fn dialer(server: &WsReferenceServer, sources: usize) -> Dialer {
    let target = Server::parse(&format!("http://{}", server.addr)).unwrap();
    let sources = source_addresses(&target.addr, sources).unwrap();
    Dialer::new(target, sources, None, Duration::from_secs(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_connect_opens_and_holds_every_client() {
    let server = reference().await;
    let me = std::process::id();
    let plan = ConnectPlan {
        dialer: dialer(&server, 2),
        clients: 50,
        concurrency: 8,
        hold: Duration::ZERO,
        server_pids: vec![me],
        account_prefix: "it-".into(),
        progress: false,
    };
    let r = connect::run(&plan).await.unwrap();
    assert_eq!((r.clients, r.opened), (50, 50));
    assert_eq!(r.failed(), 0, "{:?}", r.first_failure);
    assert_eq!(r.closed_by_server, 0);
    assert_eq!(r.servers.len(), 1);
    assert_eq!(r.servers[0].pid, me);
    assert!(r.rss_before.is_some_and(|b| b > 0));
    assert!(r.bytes_per_connection.is_some());
    assert!(r.summary().contains("opened 50/50"));
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_fanout_delivers_every_message_to_every_member_once() {
    let server = reference().await;
    let plan = FanoutPlan {
        // Receivers alternate between two dialers (to the same server).
        dialers: vec![dialer(&server, 1), dialer(&server, 2)],
        members: 20,
        rate: 200.0,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(250),
        drain: Duration::from_secs(30),
        arrival: Arrival::Uniform,
        spin: Duration::from_millis(2),
        seed: 1,
        body_bytes: 64,
        concurrency: 8,
        server_pids: vec![std::process::id()],
        account_prefix: "it-".into(),
        progress: false,
    };
    let r = fanout::run(&plan).await.unwrap();
    // 200 messages/s, due at i/200 s for i/200 < 1.25 s: 250 sends, the first 50 (before
    // 0.25 s) warm-up. (Both bounds are exact in binary floating point.)
    assert_eq!(r.sent, 250);
    assert_eq!(r.stored, 250, "{:?}", r.first_send_error);
    assert!(r.send_errors.is_empty() && r.unanswered == 0);
    assert_eq!(r.receivers, 19);
    assert_eq!(r.expected_deliveries, 250 * 19);
    assert_eq!(r.delivered, 250 * 19);
    assert_eq!((r.lost, r.duplicates), (0, 0));
    assert_eq!(r.measured_deliveries, 200 * 19);
    assert_eq!(r.latency.count, 200 * 19);
    assert_eq!(r.store_latency.count, 200);
    assert_eq!(r.schedule_lag.count, 250);
    assert!(r.receivers_closed.is_empty(), "{:?}", r.receivers_closed);
    assert!(r.complete());
    assert_eq!(r.cpu.len(), 1);
    assert!(r.cpu_seconds.is_some());
    server.stop().unwrap();
}

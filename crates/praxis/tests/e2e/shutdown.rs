//! Graceful shutdown: SIGTERM/SIGINT stop accepting, let in-flight requests finish, exit 0; a
//! second signal exits at once.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ADMIN_KEY, Server, data_dir, temp_dir};

const BODY: &str = r#"{"url":"https://example.com/e2e/in-flight"}"#;

/// Opens a create request and sends all but the last bytes of its body, so the request is in
/// flight (the handler is waiting for the body) until [`finish`] is called.
async fn start_slow_create(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/links HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr,
        BODY.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream
        .write_all(&BODY.as_bytes()[..10])
        .await
        .expect("write part of the body");
    stream.flush().await.expect("flush");
    // Let the server read the head and start the request.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stream
}

/// Sends the rest of the body and returns the response's status line.
async fn finish(mut stream: TcpStream) -> String {
    stream
        .write_all(&BODY.as_bytes()[10..])
        .await
        .expect("write the rest");
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("response within 10s")
    .expect("read response");
    response.lines().next().unwrap_or_default().to_owned()
}

/// Waits until connecting to the server is refused (the listener is closed).
async fn wait_refused(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(server.addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "still accepting connections after the signal\n{}",
        server.logs()
    );
}

fn start(dir: &std::path::Path) -> Server {
    let data = data_dir(dir).display().to_string();
    Server::start(
        dir,
        &["--data-dir", &data, "--shutdown-grace", "20s"],
        &[("PRAXIS_ADMIN_KEY", ADMIN_KEY)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let dir = temp_dir();
    let mut server = start(dir.path());
    let in_flight = start_slow_create(&server).await;

    server.signal("TERM");
    server.wait_for_log(
        "shutting down: no new connections, draining in-flight requests",
        Duration::from_secs(10),
    );
    wait_refused(&server).await;

    // The request that was in flight still completes.
    let status = finish(in_flight).await;
    assert!(
        status.starts_with("HTTP/1.1 201"),
        "in-flight create answered {status:?}\n{}",
        server.logs()
    );

    let exit = server.wait_exit(Duration::from_secs(30));
    assert_eq!(exit.code(), Some(0), "{}", server.logs());
    server.wait_for_log("praxis stopped", Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_is_graceful_too() {
    let dir = temp_dir();
    let mut server = start(dir.path());
    server.signal("INT");
    let exit = server.wait_exit(Duration::from_secs(30));
    assert_eq!(exit.code(), Some(0), "{}", server.logs());
    server.wait_for_log("praxis stopped", Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let dir = temp_dir();
    let mut server = start(dir.path());
    // This request never completes, so the graceful shutdown would wait the whole grace (20s).
    let _stuck = start_slow_create(&server).await;
    server.signal("TERM");
    server.wait_for_log(
        "shutting down: no new connections, draining in-flight requests",
        Duration::from_secs(10),
    );
    server.signal("TERM");
    let exit = server.wait_exit(Duration::from_secs(10));
    assert_eq!(exit.code(), Some(130), "{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_keeps_every_buffered_visit() {
    let dir = temp_dir();
    let mut server = start(dir.path());
    let http = crate::support::client();
    let code = crate::support::create_code(&http, &server, "https://example.com/e2e/visits").await;
    const VISITS: i64 = 25;
    for _ in 0..VISITS {
        let (status, _) = crate::support::visit(&http, &server, &code)
            .await
            .expect("visit");
        assert_eq!(status, 301);
    }
    // Stop at once: most of these visits are still in the in-memory buffer.
    server.signal("TERM");
    assert_eq!(
        server.wait_exit(Duration::from_secs(30)).code(),
        Some(0),
        "{}",
        server.logs()
    );
    let first_logs = server.logs();
    drop(server);

    let restarted = start(dir.path());
    let totals = crate::support::settled_totals(
        &http,
        &restarted,
        std::slice::from_ref(&code),
        Duration::from_secs(3),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        totals[&code], VISITS,
        "a graceful shutdown must not lose buffered visits\n{first_logs}"
    );
}

//! WebSocket pass-through: an outside client (tungstenite) through the gateway to an outside
//! server (Python's `websockets`, the chat suite's outside WebSocket implementation).

use std::process::Stdio;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_connections_pass_through_and_count_as_load() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gateway/ws_echo.py");
    let mut server = Command::new("python3")
        .args([script, "ws0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with the websockets package (scripts/test installs it)");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .await
        .expect("the echo server's port");
    let port = line
        .trim()
        .strip_prefix("listening ")
        .expect("listening PORT")
        .to_owned();
    let file = format!(
        "[pools.ws]\ninstances = [\"127.0.0.1:{port}\"]\nhealth.check = \"none\"\n\n[[routes]]\npath_prefix = \"/ws\"\npool = \"ws\"\n"
    );
    let gw = gateway(&file).await;

    let url = format!("{}/ws/room", gw.base.replace("http://", "ws://"));
    let (mut a, resp) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect through the gateway");
    assert_eq!(resp.status(), 101);
    let (mut b, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("a second socket");
    let in_flight = |gw: &Gw| gw.gateway.pool_status("ws").expect("pool")[0].in_flight;
    assert_eq!(
        in_flight(&gw),
        2,
        "open sockets count as requests in flight"
    );

    for i in 0..3 {
        a.send(Message::text(format!("hello {i}")))
            .await
            .expect("send");
        let echoed = a.next().await.expect("a message").expect("a frame");
        assert_eq!(
            echoed.into_text().expect("text").as_str(),
            format!("ws0:hello {i}")
        );
    }
    b.send(Message::text("from b")).await.expect("send");
    assert_eq!(
        b.next()
            .await
            .expect("message")
            .expect("frame")
            .into_text()
            .expect("text")
            .as_str(),
        "ws0:from b"
    );

    a.close(None).await.expect("close");
    while a.next().await.is_some() {}
    b.close(None).await.expect("close");
    while b.next().await.is_some() {}
    // The clients close their TCP connections, as RFC 6455 has them do after the close
    // handshake; the tunnel ends when both directions have.
    drop((a, b));
    eventually(
        "the sockets' slots to be freed",
        std::time::Duration::from_secs(10),
        || async { in_flight(&gw) == 0 },
    )
    .await;
}

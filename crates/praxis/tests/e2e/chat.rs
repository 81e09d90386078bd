//! Chat through the real binary: two scaled processes on one PostgreSQL, Redis and NATS, a
//! WebSocket client on one of them, and kill -9 of that process while messages keep coming.
//! The client reconnects to the other process and catches up: no message lost, none twice.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::identity::account;
use crate::support::{Scaled, Server, client, env_refs, temp_dir};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Messages alice sends in all, and how many bob must have read when his process is killed.
const SENT: usize = 200;
const KILL_AFTER: usize = 40;
/// How long one frame may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

async fn connect(addr: SocketAddr, token: &str) -> Socket {
    let mut req = format!("ws://{addr}/api/v1/chat/ws")
        .into_client_request()
        .expect("url");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    connect_async(req).await.expect("websocket handshake").0
}

/// The next JSON frame, or `None` once the connection ended.
async fn next(ws: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(&text).expect("JSON frame"));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            _ => return None,
        }
    }
}

/// Subscribes and returns the sequence numbers of the catch-up.
async fn subscribe(ws: &mut Socket, conversation: &str, after: Option<i64>) -> Vec<i64> {
    let mut frame = json!({"type": "subscribe", "conversation_id": conversation});
    if let Some(after) = after {
        frame["after"] = after.into();
    }
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send");
    let mut seqs = Vec::new();
    loop {
        let frame = next(ws).await.expect("open socket");
        match frame["type"].as_str() {
            Some("message") => seqs.push(frame["message"]["seq"].as_i64().expect("seq")),
            Some("subscribed") => return seqs,
            _ => panic!("unexpected frame {frame}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_chat_client_survives_a_kill9_of_its_process() {
    let scaled = Scaled::new().await;
    // Alice sends faster than the default send_rate (20/s) allows one account.
    let mut env = scaled.env();
    env.push(("PRAXIS_CHAT_SEND_RATE", "1000".to_owned()));
    let env = env_refs(&env);
    let (dir_a, dir_b) = (temp_dir(), temp_dir());
    let mut a = Server::start(dir_a.path(), &[], &env);
    let b = Server::start(dir_b.path(), &[], &env);
    let http = client();
    let alice = account(&http, &b, "alice@chat.example").await;
    let bob = account(&http, &b, "bob@chat.example").await;
    let me: Value = http
        .get(b.url("/api/v1/identity/me"))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("me JSON");
    let bob_id = me["subject"].as_str().expect("subject").to_owned();
    let opened: Value = http
        .post(b.url("/api/v1/chat/conversations"))
        .bearer_auth(&alice)
        .json(&json!({"kind": "direct", "with": bob_id}))
        .send()
        .await
        .expect("open")
        .json()
        .await
        .expect("conversation JSON");
    let conversation = opened["id"].as_str().expect("id").to_owned();

    // Bob listens on A; alice sends through B the whole time.
    let mut ws = connect(a.addr, &bob).await;
    assert!(subscribe(&mut ws, &conversation, None).await.is_empty());
    let sender = {
        let (http, url, alice) = (
            http.clone(),
            b.url(&format!(
                "/api/v1/chat/conversations/{conversation}/messages"
            )),
            alice.clone(),
        );
        tokio::spawn(async move {
            for i in 1..=SENT {
                let resp = http
                    .post(&url)
                    .bearer_auth(&alice)
                    .json(&json!({"client_id": format!("m{i}"), "body": format!("message {i}")}))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status().as_u16(), 201, "send {i}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < KILL_AFTER {
        let frame = next(&mut ws).await.expect("A is alive");
        assert_eq!(frame["type"], "message", "{frame}");
        seen.push(frame["message"]["seq"].as_i64().expect("seq"));
    }
    a.kill9();
    // Whatever A had already written still arrives; then the socket ends.
    while let Some(frame) = next(&mut ws).await {
        seen.push(frame["message"]["seq"].as_i64().expect("seq"));
    }
    let last = *seen.last().expect("some messages");
    let mut ws = connect(b.addr, &bob).await;
    seen.extend(subscribe(&mut ws, &conversation, Some(last)).await);
    sender.await.expect("sender finished");
    while seen.len() < SENT {
        let frame = next(&mut ws).await.expect("B is alive");
        assert_eq!(frame["type"], "message", "{frame}");
        seen.push(frame["message"]["seq"].as_i64().expect("seq"));
    }
    assert_eq!(
        seen,
        (1..=SENT as i64).collect::<Vec<_>>(),
        "every message once, in order"
    );
}

//! A WebSocket client for the cases: the chat served on a loopback port, driven with
//! tokio-tungstenite (a client the chat's code does not share).

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, client_async, connect_async};

/// How long a frame may take before a case fails (generous: CI machines are slow).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Serves `app` on a loopback port until the test ends.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One client socket.
pub struct Ws<S = MaybeTlsStream<TcpStream>> {
    stream: WebSocketStream<S>,
    /// Whether `presence` frames are returned (skipped otherwise: other members come and go
    /// in every case).
    presence: bool,
}

fn request(
    addr: SocketAddr,
    bearer: Option<&str>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = format!("ws://{addr}/api/v1/chat/ws")
        .into_client_request()
        .unwrap();
    if let Some(bearer) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {bearer}").parse().unwrap());
    }
    req
}

impl Ws {
    /// Connects as account `user`.
    pub async fn connect(addr: SocketAddr, user: &str) -> Ws {
        let (stream, _) = connect_async(request(addr, Some(&format!("u:{user}"))))
            .await
            .unwrap_or_else(|e| panic!("{user} could not connect: {e}"));
        Ws {
            stream,
            presence: false,
        }
    }

    /// A client over a socket opened elsewhere.
    pub fn from_stream(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Ws {
        Ws {
            stream,
            presence: false,
        }
    }

    /// Connects as `user`, or the HTTP status of the refused handshake.
    pub async fn try_connect(addr: SocketAddr, user: &str) -> Result<Ws, u16> {
        match connect_async(request(addr, Some(&format!("u:{user}")))).await {
            Ok((stream, _)) => Ok(Ws {
                stream,
                presence: false,
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
            Err(e) => panic!("{user} could not connect: {e}"),
        }
    }

    /// The HTTP status of a refused handshake with this bearer.
    pub async fn refused(addr: SocketAddr, bearer: Option<&str>) -> u16 {
        match connect_async(request(addr, bearer)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
            other => panic!("expected a refused handshake, got {:?}", other.map(|_| ())),
        }
    }
}

impl Ws<TcpStream> {
    /// Connects as `user` with a tiny receive buffer, so an unread socket backs up quickly.
    pub async fn connect_small(addr: SocketAddr, user: &str) -> Ws<TcpStream> {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(addr).await.unwrap();
        let (stream, _) = client_async(request(addr, Some(&format!("u:{user}"))), tcp)
            .await
            .unwrap();
        Ws {
            stream,
            presence: false,
        }
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Ws<S> {
    /// From now on, `presence` frames are returned too.
    pub fn with_presence(mut self) -> Self {
        self.presence = true;
        self
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    /// Sends a raw frame.
    pub async fn send_raw(&mut self, frame: Message) {
        self.stream.send(frame).await.unwrap();
    }

    /// The next frame: a JSON text frame, or `Err` with the close frame (or `None` when the
    /// connection just ended).
    pub async fn next(&mut self) -> Result<Value, Option<CloseFrame>> {
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.stream.next())
                .await
                .expect("no frame within the deadline");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if frame["type"] == "presence" && !self.presence {
                        continue;
                    }
                    return Ok(frame);
                }
                Some(Ok(Message::Close(close))) => return Err(close),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// The next JSON frame (fails on a close).
    pub async fn frame(&mut self) -> Value {
        self.next()
            .await
            .unwrap_or_else(|close| panic!("closed: {close:?}"))
    }

    /// The next frame, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let frame = self.frame().await;
        assert_eq!(frame["type"], kind, "{frame}");
        frame
    }

    /// Subscribes (with `after` when given) and returns the messages before `subscribed`.
    pub async fn subscribe(&mut self, conversation: &str, after: Option<i64>) -> Vec<Value> {
        let mut frame = serde_json::json!({"type": "subscribe", "conversation_id": conversation});
        if let Some(after) = after {
            frame["after"] = after.into();
        }
        self.send(frame).await;
        let mut messages = Vec::new();
        loop {
            let frame = self.frame().await;
            match frame["type"].as_str() {
                Some("message") => messages.push(frame["message"].clone()),
                Some("subscribed") => return messages,
                _ => panic!("unexpected frame while subscribing: {frame}"),
            }
        }
    }

    /// The next `n` message frames' messages.
    pub async fn messages(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let frame = self.expect("message").await;
            out.push(frame["message"].clone());
        }
        out
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self) {
        self.send_raw(Message::Binary(Bytes::from_static(b"\x00\x01")))
            .await;
    }
}

/// The sequence numbers of messages.
pub fn seq_of(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

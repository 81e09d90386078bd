//! `praxis bench ws reference`: a bare WebSocket broadcast server on axum's `ws` (the stack
//! praxis's chat uses), with no authentication, no storage and no presence: the floor to
//! measure praxis's chat against in the same run.
//!
//! It speaks just enough of the chat's protocol for `praxis bench ws connect` and `fanout`:
//! - `POST /api/v1/chat/conversations` answers 201 `{"id": "ref-N", "kind": "group"}`
//!   (members are not kept: anyone may follow any conversation);
//! - `GET /api/v1/chat/ws` upgrades; `subscribe` answers `subscribed`; `send` numbers the
//!   message in its conversation, encodes the `message` frame once and queues it to every
//!   follower (and answers it directly to a sender that does not follow); `ack`, `read`,
//!   `typing` and `presence` are accepted and ignored.
//!
//! Like praxis, each socket has a bounded queue (`--queue`, praxis's `outbound_queue`) and a
//! follower whose queue is full is closed with 4008; each frame is one `send` (one flush).
//! Its read buffer per connection is `--read-buffer` (4 KiB); axum's default, 128 KiB, is
//! allocated and zeroed per connection by tungstenite and would dominate the memory figure.
//! Accepted sockets get `TCP_NODELAY` (`--nagle` leaves it off, as `axum::serve` does by
//! default): with Nagle's algorithm a reply frame can wait for the client's delayed ACK.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::ws::dial::WS_PATH;
use crate::ws::rest::CONVERSATIONS_PATH;

/// Close code of a follower whose queue overflowed (praxis's too).
pub const CLOSE_SLOW: u16 = 4008;

/// Command-line arguments of `praxis bench ws reference`.
#[derive(Debug, Clone, clap::Args)]
pub struct WsReferenceArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8092")]
    pub listen: SocketAddr,
    /// Runtime threads (1: a current-thread runtime, the cheapest on one pinned core).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Frames queued per socket before a slow follower is closed with 4008.
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
    /// Read buffer per connection, bytes (axum's default is 131072).
    #[arg(long, default_value_t = 4096)]
    pub read_buffer: usize,
    /// Leave Nagle's algorithm on (axum's default): small frames then wait for the peer's
    /// ACK of the previous one, up to the peer's delayed-ACK timer.
    #[arg(long)]
    pub nagle: bool,
}

/// Why the reference cannot start.
#[derive(Debug, thiserror::Error)]
#[error("ws reference server: {0}")]
pub struct WsReferenceError(#[from] std::io::Error);

#[derive(Debug, Default)]
struct Room {
    last_seq: i64,
    followers: Vec<Follower>,
}

#[derive(Debug)]
struct Follower {
    id: u64,
    tx: mpsc::Sender<Utf8Bytes>,
    overflow: Arc<Notify>,
}

#[derive(Debug)]
struct Hub {
    rooms: Mutex<HashMap<String, Room>>,
    next_id: AtomicU64,
    queue: usize,
    read_buffer: usize,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientFrame {
    Subscribe {
        conversation_id: String,
    },
    Send {
        conversation_id: String,
        client_id: String,
        body: String,
    },
    Ack {},
    Read {},
    Typing {},
    Presence {},
}

#[derive(Serialize)]
struct MessageView<'a> {
    conversation_id: &'a str,
    seq: i64,
    sender: &'a str,
    client_id: &'a str,
    body: &'a str,
    deleted: bool,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ServerFrame<'a> {
    Message {
        message: MessageView<'a>,
    },
    Subscribed {
        conversation_id: &'a str,
        last_seq: i64,
    },
    Error {
        code: &'static str,
        detail: String,
    },
}

fn encode(frame: &ServerFrame<'_>) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(frame).unwrap_or_default())
}

impl Hub {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers one client frame; the reply (if any) goes to this socket only.
    fn on_client(
        &self,
        me: &Follower,
        followed: &mut Vec<String>,
        text: &str,
    ) -> Option<Utf8Bytes> {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                return Some(encode(&ServerFrame::Error {
                    code: "bad-frame",
                    detail: e.to_string(),
                }));
            }
        };
        match frame {
            ClientFrame::Subscribe { conversation_id } => {
                let mut rooms = self.rooms();
                let room = rooms.entry(conversation_id.clone()).or_default();
                if !followed.contains(&conversation_id) {
                    room.followers.push(Follower {
                        id: me.id,
                        tx: me.tx.clone(),
                        overflow: Arc::clone(&me.overflow),
                    });
                    followed.push(conversation_id.clone());
                }
                Some(encode(&ServerFrame::Subscribed {
                    conversation_id: &conversation_id,
                    last_seq: room.last_seq,
                }))
            }
            ClientFrame::Send {
                conversation_id,
                client_id,
                body,
            } => {
                let mut rooms = self.rooms();
                let room = rooms.entry(conversation_id.clone()).or_default();
                room.last_seq += 1;
                let frame = encode(&ServerFrame::Message {
                    message: MessageView {
                        conversation_id: &conversation_id,
                        seq: room.last_seq,
                        sender: "",
                        client_id: &client_id,
                        body: &body,
                        deleted: false,
                    },
                });
                for f in &room.followers {
                    if f.tx.try_send(frame.clone()).is_err() {
                        f.overflow.notify_one();
                    }
                }
                (!followed.contains(&conversation_id)).then_some(frame)
            }
            ClientFrame::Ack {}
            | ClientFrame::Read {}
            | ClientFrame::Typing {}
            | ClientFrame::Presence {} => None,
        }
    }

    fn forget(&self, id: u64, followed: &[String]) {
        let mut rooms = self.rooms();
        for c in followed {
            if let Some(room) = rooms.get_mut(c) {
                room.followers.retain(|f| f.id != id);
            }
        }
    }
}

async fn upgrade(State(hub): State<Arc<Hub>>, ws: WebSocketUpgrade) -> Response {
    let read_buffer = hub.read_buffer;
    ws.read_buffer_size(read_buffer)
        .on_upgrade(move |socket| serve_socket(hub, socket))
}

async fn create(State(hub): State<Arc<Hub>>) -> Response {
    let n = hub.next_id.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::CREATED,
        Json(serde_json::json!({"id": format!("ref-{n}"), "kind": "group"})),
    )
        .into_response()
}

async fn serve_socket(hub: Arc<Hub>, socket: WebSocket) {
    let (tx, mut rx) = mpsc::channel(hub.queue.max(1));
    let me = Follower {
        id: hub.next_id.fetch_add(1, Ordering::Relaxed),
        tx,
        overflow: Arc::new(Notify::new()),
    };
    let mut followed = Vec::new();
    let (mut sink, mut stream) = socket.split();
    let slow = loop {
        let out = tokio::select! {
            () = me.overflow.notified() => break true,
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => hub.on_client(&me, &mut followed, text.as_str()),
                Some(Ok(Message::Close(_)) | Err(_)) | None => break false,
                Some(Ok(_)) => None,
            },
            queued = rx.recv() => queued,
        };
        if let Some(frame) = out
            && sink.send(Message::Text(frame)).await.is_err()
        {
            break false;
        }
    };
    hub.forget(me.id, &followed);
    if slow {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CLOSE_SLOW,
                reason: Utf8Bytes::from_static("too slow"),
            })))
            .await;
    }
}

/// The router (for tests and embedding).
pub fn router(args: &WsReferenceArgs) -> Router {
    let hub = Arc::new(Hub {
        rooms: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        queue: args.queue,
        read_buffer: args.read_buffer.max(1024),
    });
    Router::new()
        .route(WS_PATH, get(upgrade))
        .route(CONVERSATIONS_PATH, post(create))
        .with_state(hub)
}

/// A reference running on its own thread and runtime (stopped when dropped).
#[derive(Debug)]
pub struct WsReferenceServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<std::thread::JoinHandle<Result<(), WsReferenceError>>>,
}

impl WsReferenceServer {
    /// Starts it on a new thread with its own runtime and waits until it listens.
    pub async fn start(args: WsReferenceArgs) -> Result<Self, WsReferenceError> {
        let (bound_tx, bound_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let done = std::thread::Builder::new()
            .name("praxis-bench-ws-reference".into())
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
                runtime.block_on(async move {
                    let listener = TcpListener::bind(args.listen).await?;
                    let _ = bound_tx.send(listener.local_addr()?);
                    let nodelay = !args.nagle;
                    let listener = listener.tap_io(move |tcp| {
                        if nodelay {
                            let _ = tcp.set_nodelay(true);
                        }
                    });
                    axum::serve(listener, router(&args))
                        .with_graceful_shutdown(async {
                            let _ = stop_rx.await;
                        })
                        .await?;
                    Ok(())
                })
            })?;
        match bound_rx.await {
            Ok(addr) => Ok(WsReferenceServer {
                addr,
                stop: Some(stop_tx),
                done: Some(done),
            }),
            Err(_) => match done.join() {
                Ok(Err(e)) => Err(e),
                _ => Err(WsReferenceError(std::io::Error::other(
                    "server thread ended",
                ))),
            },
        }
    }

    /// Stops it and waits for its thread.
    pub fn stop(mut self) -> Result<(), WsReferenceError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), WsReferenceError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.done.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(WsReferenceError(std::io::Error::other(
                "server thread panicked",
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for WsReferenceServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// `praxis bench ws reference`: serves until Ctrl-C.
pub async fn run(args: WsReferenceArgs) -> Result<(), WsReferenceError> {
    let server = WsReferenceServer::start(args.clone()).await?;
    eprintln!(
        "ws reference: ws://{}{WS_PATH} (queue {}, read buffer {} B, {}, {} thread{}); Ctrl-C to stop",
        server.addr,
        args.queue,
        args.read_buffer,
        if args.nagle {
            "Nagle on"
        } else {
            "TCP_NODELAY"
        },
        args.threads,
        if args.threads == 1 { "" } else { "s" }
    );
    let _ = tokio::signal::ctrl_c().await;
    server.stop()
}

//! The WebSocket at `/api/v1/chat/ws` (RFC 6455), JSON text frames with a `type`.
//!
//! Client to server:
//! - `{"type": "subscribe", "conversation_id", "after"?}`: follow a conversation. With `after`
//!   (the last sequence the client holds), the missing messages come first, in order; then
//!   `{"type": "subscribed", "conversation_id", "last_seq"}`; then live events.
//! - `{"type": "send", "conversation_id", "client_id", "body"}`: as `POST .../messages`; the
//!   stored message comes back as a `message` frame (a resend gets the first copy).
//! - `{"type": "ack", "conversation_id", "seq"}`: this device has every message up to `seq`;
//!   moves the delivery marker; members get a `receipt`.
//! - `{"type": "read", "conversation_id", "seq"}`: moves the read marker (and the delivery
//!   marker with it); members get a `receipt`.
//! - `{"type": "typing", "conversation_id"}`: the other members get a `typing` frame.
//!
//! Server to client: `message` (`{"type": "message", "message": {...}}`, also for an edit
//! or delete of a message already delivered), `subscribed`, `receipt`, `typing`, and `error`
//! (`{"type": "error", "code", "detail", "conversation_id"?, "client_id"?}`), after which the
//! socket stays open. Close codes: 1001 when the server shuts down, 1009 for a frame over
//! `max_message_bytes` plus 4 KiB, 4008 when the client reads too slowly (its queue of
//! `outbound_queue` events is full; reconnect and subscribe with `after`).
//!
//! What a frame does is the [`super::session`]'s; this module carries it over the socket.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message as Frame, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};

use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Problem, Require, Scope};

use super::auth::{ChatRead, ChatWrite};
use super::session::{Session, error_frame};
use super::{AppState, TAG};
use crate::workers::live::Connection;

/// Close code of a client whose queue overflowed.
pub const CLOSE_SLOW: u16 = 4008;
/// Room for the JSON around a message body in one frame.
const FRAME_OVERHEAD: usize = 4096;
/// How long a closing frame may take to go out before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Why a slow client is closed.
const SLOW_REASON: &str =
    "too slow: your queue of events is full; reconnect and subscribe with after";
/// Most queued events written with one flush (one system call for many frames under load).
const BATCH: usize = 64;
/// Bytes read from the socket at a time. The library's default (128 KiB, allocated for every
/// connection) would cost more than everything else an idle connection holds; frames larger
/// than this are read in several reads.
const READ_BUFFER: usize = 4096;

/// Open the chat's WebSocket.
///
/// Authenticated like every route (`Authorization: Bearer`). The frames are described in
/// docs/chat.md. Not a WebSocket handshake: 400.
#[utoipa::path(
    get,
    path = "/api/v1/chat/ws",
    tag = TAG,
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket handshake", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The account holds connections_per_account live connections already", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn connect(
    State(state): State<AppState>,
    who: Require<ChatRead>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    let upgrade = upgrade.map_err(|e| {
        Problem::bad_request(
            "not-a-websocket",
            format!("this route speaks WebSocket (RFC 6455): {e}"),
        )
    })?;
    let me = who.subject().to_owned();
    let can_write = ChatWrite::granted(who.principal());
    let conn = state.inner.chat.connect(&me)?;
    let limit = state.inner.chat.settings().max_message_bytes + FRAME_OVERHEAD;
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            run(Session::new(state, me, can_write), conn, socket).await;
        }))
}

/// Serves one socket until it closes, the client is too slow, or the server shuts down.
///
/// The session's calls (the store, presence) are boxed: their futures are large and live
/// only while they run, so an idle socket's task holds just the waits of its `select!`.
async fn run(mut session: Session, mut conn: Connection, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let shutdown = session.shutdown();
    Box::pin(session.heartbeat()).await;
    let mut beats = tokio::time::interval(session.heartbeat_every());
    beats.tick().await;
    let mut out: Vec<Utf8Bytes> = Vec::new();
    let close = loop {
        tokio::select! {
            _ = beats.tick() => Box::pin(session.heartbeat()).await,
            () = shutdown.cancelled() => break Some((1001, "the server is shutting down; reconnect")),
            () = conn.overflow.cancelled() => break Some((CLOSE_SLOW, SLOW_REASON)),
            frame = stream.next() => match frame {
                Some(Ok(Frame::Text(text))) => {
                    let frames = Box::pin(session.on_client(&conn, text.as_str())).await;
                    out.extend(frames.into_iter().map(Utf8Bytes::from));
                }
                Some(Ok(Frame::Binary(_))) => out.push(error_frame("bad-frame", "binary frames are not accepted; send JSON text frames".to_owned(), None, None).into()),
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => {}
                Some(Ok(Frame::Close(_)) | Err(_)) | None => break None,
            },
            event = conn.events.recv() => match event {
                Some(delivery) => {
                    out.extend(session.on_event(&delivery).await);
                    // Events already queued go out in the same write.
                    for _ in 0..BATCH {
                        let Ok(delivery) = conn.events.try_recv() else { break };
                        out.extend(session.on_event(&delivery).await);
                    }
                }
                None => break None,
            },
        }
        if out.is_empty() {
            continue;
        }
        let sent = tokio::select! {
            sent = write_all(&mut sink, &mut out) => sent,
            () = conn.overflow.cancelled() => false,
        };
        if !sent {
            break conn
                .overflow
                .is_cancelled()
                .then_some((CLOSE_SLOW, SLOW_REASON));
        }
    };
    if let Some((code, reason)) = close {
        let frame = Frame::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(frame)).await;
    }
    session.chat().live().forget(conn.id, session.followed());
    drop(conn);
    Box::pin(session.close()).await;
}

/// Writes `out` (drained) with one flush at the end; `false` when the socket failed.
async fn write_all<S>(sink: &mut S, out: &mut Vec<Utf8Bytes>) -> bool
where
    S: futures::Sink<Frame> + Unpin,
{
    for frame in out.drain(..) {
        if sink.feed(Frame::Text(frame)).await.is_err() {
            return false;
        }
    }
    sink.flush().await.is_ok()
}

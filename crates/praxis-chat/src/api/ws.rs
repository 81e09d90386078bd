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
//! Per followed conversation the session remembers the last sequence it delivered: a live
//! message at or below it is a duplicate and is dropped; one beyond the next is preceded by
//! the gap, read from the store. So a client sees every message once, in order, whichever
//! process stored it and whatever the broadcaster lost.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message as Frame, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};

use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Problem, Require, Scope};

use super::auth::{ChatRead, ChatWrite};
use super::dto::MessageView;
use super::{AppState, TAG};
use crate::domain::events::Event;
use crate::domain::model::Message;
use crate::error::ChatError;
use crate::store::Window;
use crate::workers::UseCases;
use crate::workers::live::Connection;

/// Close code of a client whose queue overflowed.
pub const CLOSE_SLOW: u16 = 4008;
/// Room for the JSON around a message body in one frame.
const FRAME_OVERHEAD: usize = 4096;
/// How long a closing frame may take to go out before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ClientFrame {
    Subscribe {
        conversation_id: String,
        #[serde(default)]
        after: Option<i64>,
    },
    Send {
        conversation_id: String,
        client_id: String,
        body: String,
    },
    Ack {
        conversation_id: String,
        seq: i64,
    },
    Read {
        conversation_id: String,
        seq: i64,
    },
    Typing {
        conversation_id: String,
    },
}

/// What the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ServerFrame<'a> {
    Message {
        message: MessageView,
    },
    Subscribed {
        conversation_id: &'a str,
        last_seq: i64,
    },
    Receipt {
        conversation_id: &'a str,
        account: &'a str,
        delivered_seq: i64,
        read_seq: i64,
    },
    Typing {
        conversation_id: &'a str,
        account: &'a str,
    },
    Error {
        code: &'static str,
        detail: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
    },
}

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
    let limit = state.inner.chat.settings().max_message_bytes + FRAME_OVERHEAD;
    Ok(upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            Session::new(state, me, can_write).run(socket).await;
        }))
}

/// One open socket.
struct Session {
    state: AppState,
    me: String,
    can_write: bool,
    /// Followed conversations and the last sequence delivered in each.
    last: HashMap<String, i64>,
}

impl Session {
    fn new(state: AppState, me: String, can_write: bool) -> Self {
        Self {
            state,
            me,
            can_write,
            last: HashMap::new(),
        }
    }

    fn chat(&self) -> &UseCases {
        &self.state.inner.chat
    }

    async fn run(mut self, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let capacity = self.chat().settings().outbound_queue;
        let mut conn = self.chat().live().connect(capacity);
        let shutdown = self.state.inner.shutdown.clone();
        let close = loop {
            let out = tokio::select! {
                () = shutdown.cancelled() => break Some((1001, "the server is shutting down; reconnect")),
                () = conn.overflow.cancelled() => break Some((CLOSE_SLOW, "too slow: your queue of events is full; reconnect and subscribe with after")),
                frame = stream.next() => match frame {
                    Some(Ok(Frame::Text(text))) => self.on_client(&conn, text.as_str()).await,
                    Some(Ok(Frame::Binary(_))) => vec![error_frame("bad-frame", "binary frames are not accepted; send JSON text frames".to_owned(), None, None)],
                    Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => Vec::new(),
                    Some(Ok(Frame::Close(_)) | Err(_)) | None => break None,
                },
                event = conn.events.recv() => match event {
                    Some(event) => self.on_event(event).await,
                    None => break None,
                },
            };
            let mut failed = false;
            for frame in out {
                let sent = tokio::select! {
                    sent = sink.send(frame) => sent.is_ok(),
                    () = conn.overflow.cancelled() => false,
                };
                if !sent {
                    failed = true;
                    break;
                }
            }
            if failed {
                break conn.overflow.is_cancelled().then_some((
                    CLOSE_SLOW,
                    "too slow: your queue of events is full; reconnect and subscribe with after",
                ));
            }
        };
        if let Some((code, reason)) = close {
            let frame = Frame::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }));
            let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(frame)).await;
        }
        self.chat().live().forget(conn.id, self.last.keys());
    }

    /// Answers one client frame.
    async fn on_client(&mut self, conn: &Connection, text: &str) -> Vec<Frame> {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                return vec![error_frame(
                    "bad-frame",
                    format!(
                        "not a frame this server knows ({e}); see docs/chat.md for the frame types"
                    ),
                    None,
                    None,
                )];
            }
        };
        match frame {
            ClientFrame::Subscribe {
                conversation_id,
                after,
            } => self.subscribe(conn, &conversation_id, after).await,
            ClientFrame::Send {
                conversation_id,
                client_id,
                body,
            } => {
                if !self.can_write {
                    return vec![error_frame(
                        "forbidden",
                        "sending needs the chat:write scope".to_owned(),
                        Some(&conversation_id),
                        Some(&client_id),
                    )];
                }
                let me = self.me.clone();
                match self
                    .chat()
                    .send(&me, &conversation_id, &client_id, &body)
                    .await
                {
                    // A new message of a followed conversation comes through the live path,
                    // in order; a resend or an unfollowed conversation is answered here.
                    Ok((_, true)) if self.last.contains_key(&conversation_id) => Vec::new(),
                    Ok((message, _)) => vec![message_frame(&message)],
                    Err(e) => vec![chat_error(e, Some(&conversation_id), Some(&client_id))],
                }
            }
            ClientFrame::Ack {
                conversation_id,
                seq,
            } => {
                let me = self.me.clone();
                match self.chat().mark_delivered(&me, &conversation_id, seq).await {
                    Ok(_) => Vec::new(),
                    Err(e) => vec![chat_error(e, Some(&conversation_id), None)],
                }
            }
            ClientFrame::Read {
                conversation_id,
                seq,
            } => {
                let me = self.me.clone();
                match self.chat().mark_read(&me, &conversation_id, seq).await {
                    Ok(_) => Vec::new(),
                    Err(e) => vec![chat_error(e, Some(&conversation_id), None)],
                }
            }
            ClientFrame::Typing { conversation_id } => {
                let me = self.me.clone();
                match self.chat().typing(&me, &conversation_id).await {
                    Ok(()) => Vec::new(),
                    Err(e) => vec![chat_error(e, Some(&conversation_id), None)],
                }
            }
        }
    }

    /// Follows a conversation: live events from now on, and the messages after `after`
    /// first. Following before reading means nothing falls between the two.
    async fn subscribe(
        &mut self,
        conn: &Connection,
        conversation: &str,
        after: Option<i64>,
    ) -> Vec<Frame> {
        if after.is_some_and(|a| a < 0) {
            return vec![error_frame(
                "bad-frame",
                "after must be a sequence number, 0 or more".to_owned(),
                Some(conversation),
                None,
            )];
        }
        let me = self.me.clone();
        let last_seq = match self.chat().last_seq(&me, conversation).await {
            Ok(last_seq) => last_seq,
            Err(e) => return vec![chat_error(e, Some(conversation), None)],
        };
        self.chat().live().follow(conn, conversation);
        let mut frames = Vec::new();
        let delivered = match after {
            Some(after) => match self.catch_up(conversation, after, &mut frames).await {
                Ok(delivered) => delivered,
                Err(e) => return vec![chat_error(e, Some(conversation), None)],
            },
            None => last_seq,
        };
        let known = self
            .last
            .entry(conversation.to_owned())
            .or_insert(delivered);
        *known = (*known).max(delivered);
        frames.push(json_frame(&ServerFrame::Subscribed {
            conversation_id: conversation,
            last_seq: *known,
        }));
        frames
    }

    /// Appends the stored messages after `after` (up to the newest) to `frames`; returns the
    /// last sequence appended (or `after`).
    async fn catch_up(
        &self,
        conversation: &str,
        after: i64,
        frames: &mut Vec<Frame>,
    ) -> Result<i64, ChatError> {
        let page = self.chat().settings().page_max;
        let mut last = after;
        loop {
            let (messages, _) = self
                .chat()
                .history(&self.me, conversation, Window::After(last), page)
                .await?;
            let full = messages.len() == page as usize;
            for message in &messages {
                frames.push(message_frame(message));
                last = message.seq;
            }
            if !full {
                return Ok(last);
            }
        }
    }

    /// Turns one live event into the frames this client should get.
    async fn on_event(&mut self, event: Event) -> Vec<Frame> {
        match event {
            Event::Message { message } => {
                let Some(&last) = self.last.get(&message.conversation_id) else {
                    return Vec::new();
                };
                if message.seq <= last {
                    return Vec::new();
                }
                let conversation = message.conversation_id.clone();
                let mut frames = Vec::new();
                let delivered = if message.seq == last + 1 {
                    frames.push(message_frame(&message));
                    message.seq
                } else {
                    // The broadcaster lost or reordered some: read the gap from the store.
                    match self.catch_up(&conversation, last, &mut frames).await {
                        Ok(delivered) => delivered,
                        Err(e) => return vec![chat_error(e, Some(&conversation), None)],
                    }
                };
                self.last.insert(conversation, delivered);
                frames
            }
            Event::Changed { message } => match self.last.get(&message.conversation_id) {
                Some(&last) if message.seq <= last => vec![message_frame(&message)],
                _ => Vec::new(),
            },
            Event::Receipt {
                conversation_id,
                account,
                delivered_seq,
                read_seq,
            } => vec![json_frame(&ServerFrame::Receipt {
                conversation_id: &conversation_id,
                account: &account,
                delivered_seq,
                read_seq,
            })],
            Event::Typing {
                conversation_id,
                account,
            } if account != self.me => vec![json_frame(&ServerFrame::Typing {
                conversation_id: &conversation_id,
                account: &account,
            })],
            Event::Typing { .. } => Vec::new(),
        }
    }
}

fn json_frame(frame: &ServerFrame<'_>) -> Frame {
    Frame::Text(serde_json::to_string(frame).unwrap_or_default().into())
}

fn message_frame(message: &Message) -> Frame {
    json_frame(&ServerFrame::Message {
        message: MessageView::from(message),
    })
}

fn error_frame(
    code: &'static str,
    detail: String,
    conversation_id: Option<&str>,
    client_id: Option<&str>,
) -> Frame {
    json_frame(&ServerFrame::Error {
        code,
        detail,
        conversation_id,
        client_id,
    })
}

/// A use-case error as an `error` frame (the same codes as the HTTP problems' slugs).
fn chat_error(e: ChatError, conversation_id: Option<&str>, client_id: Option<&str>) -> Frame {
    let code = match &e {
        ChatError::Invalid(_) => "invalid",
        ChatError::NotFound(_) => "not-found",
        ChatError::Forbidden(_) => "forbidden",
        ChatError::Conflict(slug, _) => slug,
        ChatError::Infra(_) => "unavailable",
    };
    let detail = match &e {
        ChatError::Infra(_) => "a dependency failed; retry later".to_owned(),
        other => other.to_string(),
    };
    error_frame(code, detail, conversation_id, client_id)
}

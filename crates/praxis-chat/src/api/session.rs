//! One client of the live chat, whatever carries it (the WebSocket, or the SSE stream): what
//! it follows, the last sequence it got in each conversation, and how client frames and live
//! events become the JSON frames it is sent.
//!
//! Per followed conversation the session remembers the last sequence it delivered: a live
//! message at or below it is a duplicate and is dropped; one beyond the next is preceded by
//! the gap, read from the store. So a client sees every message once, in order, whichever
//! process stored it and whatever the broadcaster lost.

use std::collections::HashMap;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::dto::{EncryptedBody, MessageView, content};
use crate::domain::events::Event;
use crate::domain::keys::Encrypted;
use crate::domain::model::Message;
use crate::error::ChatError;
use crate::store::Window;
use crate::store::presence::Status;
use crate::workers::UseCases;
use crate::workers::live::{Connection, Delivery};

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum ClientFrame {
    Subscribe {
        conversation_id: String,
        #[serde(default)]
        after: Option<i64>,
    },
    Send {
        conversation_id: String,
        client_id: String,
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        encrypted: Option<EncryptedBody>,
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
    Presence {
        status: String,
    },
}

/// What the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(super) enum ServerFrame<'a> {
    Message {
        message: MessageView,
    },
    Subscribed {
        conversation_id: &'a str,
        last_seq: i64,
    },
    Reset {
        conversation_id: &'a str,
        first_seq: i64,
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
    Presence {
        conversation_id: &'a str,
        account: &'a str,
        status: &'a str,
        last_seen: String,
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

/// One live client.
pub(super) struct Session {
    state: AppState,
    me: String,
    can_write: bool,
    /// What the client shows (`online` until it says `away`).
    status: Status,
    /// Followed conversations and the last sequence delivered in each.
    last: HashMap<String, i64>,
}

impl Session {
    /// A client acting as `me`; `can_write` when it may send.
    pub(super) fn new(state: AppState, me: String, can_write: bool) -> Self {
        Self {
            state,
            me,
            can_write,
            status: Status::Online,
            last: HashMap::new(),
        }
    }

    /// The use cases.
    pub(super) fn chat(&self) -> &UseCases {
        &self.state.inner.chat
    }

    /// Cancelled when the server shuts down.
    pub(super) fn shutdown(&self) -> CancellationToken {
        self.state.inner.shutdown.clone()
    }

    /// A heartbeat: the account shows this session's status for another `presence_ttl`.
    pub(super) async fn heartbeat(&self) {
        self.chat().beat(&self.me, self.status).await;
    }

    /// How often to beat: a third of `presence_ttl`.
    pub(super) fn heartbeat_every(&self) -> std::time::Duration {
        self.chat().settings().presence_ttl / 3
    }

    /// The session ended: the account may be offline now.
    pub(super) async fn close(&self) {
        self.chat().left(&self.me, self.last.keys()).await;
    }

    /// [`Session::close`] as a task of its own (for a stream dropped outside any task).
    pub(super) fn close_later(&self) {
        let chat = self.chat().clone();
        let me = self.me.clone();
        let followed: Vec<String> = self.last.keys().cloned().collect();
        tokio::spawn(async move { chat.left(&me, followed.iter()).await });
    }

    /// The conversations it follows.
    pub(super) fn followed(&self) -> impl Iterator<Item = &String> {
        self.last.keys()
    }

    /// Answers one client frame.
    pub(super) async fn on_client(&mut self, conn: &Connection, text: &str) -> Vec<String> {
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
                encrypted,
            } => {
                if !self.can_write {
                    return vec![error_frame(
                        "forbidden",
                        "sending needs the chat:write scope".to_owned(),
                        Some(&conversation_id),
                        Some(&client_id),
                    )];
                }
                let encrypted = encrypted.map(Encrypted::from);
                let sent = match content(body.as_deref(), encrypted.as_ref()) {
                    Ok(content) => {
                        self.chat()
                            .send(&self.me, &conversation_id, &client_id, content)
                            .await
                    }
                    Err(e) => Err(e),
                };
                match sent {
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
                match self
                    .chat()
                    .mark_delivered(&self.me, &conversation_id, seq)
                    .await
                {
                    Ok(_) => Vec::new(),
                    Err(e) => vec![chat_error(e, Some(&conversation_id), None)],
                }
            }
            ClientFrame::Read {
                conversation_id,
                seq,
            } => match self.chat().mark_read(&self.me, &conversation_id, seq).await {
                Ok(_) => Vec::new(),
                Err(e) => vec![chat_error(e, Some(&conversation_id), None)],
            },
            ClientFrame::Presence { status } => match Status::parse(&status) {
                Some(status @ (Status::Online | Status::Away)) => {
                    self.status = status;
                    self.heartbeat().await;
                    self.chat()
                        .announce(&self.me, status, self.last.keys())
                        .await;
                    Vec::new()
                }
                _ => vec![error_frame(
                    "bad-frame",
                    format!(
                        "status {status:?}: send online or away (offline is closing the socket)"
                    ),
                    None,
                    None,
                )],
            },
            ClientFrame::Typing { conversation_id } => {
                match self.chat().typing(&self.me, &conversation_id).await {
                    Ok(()) => Vec::new(),
                    Err(e) => vec![chat_error(e, Some(&conversation_id), None)],
                }
            }
        }
    }

    /// Follows a conversation: live events from now on, and the messages after `after`
    /// first. Following before reading means nothing falls between the two.
    pub(super) async fn subscribe(
        &mut self,
        conn: &Connection,
        conversation: &str,
        after: Option<i64>,
    ) -> Vec<String> {
        if after.is_some_and(|a| a < 0) {
            return vec![error_frame(
                "bad-frame",
                "after must be a sequence number, 0 or more".to_owned(),
                Some(conversation),
                None,
            )];
        }
        let last_seq = match self.chat().last_seq(&self.me, conversation).await {
            Ok(last_seq) => last_seq,
            Err(e) => return vec![chat_error(e, Some(conversation), None)],
        };
        self.chat().live().follow(conn, conversation);
        let mut frames = Vec::new();
        let delivered = match after {
            Some(after) => {
                // Messages after `after` were deleted by the retention: the client's copy has
                // a hole it cannot fill; it starts again from the oldest kept message.
                let first = match self.chat().first_kept(conversation, last_seq).await {
                    Ok(first) => first,
                    Err(e) => return vec![chat_error(e, Some(conversation), None)],
                };
                let from = if after + 1 < first {
                    frames.push(json_frame(&ServerFrame::Reset {
                        conversation_id: conversation,
                        first_seq: first,
                        last_seq,
                    }));
                    first - 1
                } else {
                    after
                };
                match self.catch_up(conversation, from, &mut frames).await {
                    Ok(delivered) => delivered,
                    Err(e) => return vec![chat_error(e, Some(conversation), None)],
                }
            }
            None => last_seq,
        };
        let known = self
            .last
            .entry(conversation.to_owned())
            .or_insert(delivered);
        *known = (*known).max(delivered);
        let last_seq = *known;
        self.chat()
            .announce(
                &self.me,
                self.status,
                std::iter::once(&conversation.to_owned()),
            )
            .await;
        frames.push(json_frame(&ServerFrame::Subscribed {
            conversation_id: conversation,
            last_seq,
        }));
        frames
    }

    /// Appends the stored messages after `after` (up to the newest) to `frames`; returns the
    /// last sequence appended (or `after`).
    async fn catch_up(
        &self,
        conversation: &str,
        after: i64,
        frames: &mut Vec<String>,
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

    /// The frames of a live event for this client. The frame of an event is the same for
    /// every follower, so it is encoded once ([`Delivery::frame`]); a gap found in the
    /// sequence is filled from the store first.
    pub(super) async fn on_event(&mut self, delivery: &Delivery) -> Vec<Utf8Bytes> {
        match &delivery.event {
            Event::Message { message } => {
                let Some(&last) = self.last.get(&message.conversation_id) else {
                    return Vec::new();
                };
                if message.seq <= last {
                    return Vec::new();
                }
                let conversation = message.conversation_id.clone();
                if message.seq == last + 1 {
                    self.last.insert(conversation, message.seq);
                    return vec![shared_frame(delivery)];
                }
                // The broadcaster lost or reordered some: read the gap from the store (boxed:
                // rare, and its future is large).
                let mut frames = Vec::new();
                match Box::pin(self.catch_up(&conversation, last, &mut frames)).await {
                    Ok(delivered) => {
                        self.last.insert(conversation, delivered);
                        frames.into_iter().map(Utf8Bytes::from).collect()
                    }
                    Err(e) => vec![chat_error(e, Some(&conversation), None).into()],
                }
            }
            Event::Changed { message } => match self.last.get(&message.conversation_id) {
                Some(&last) if message.seq <= last => vec![shared_frame(delivery)],
                _ => Vec::new(),
            },
            Event::Receipt { .. } => vec![shared_frame(delivery)],
            Event::Typing { account, .. } | Event::Presence { account, .. }
                if *account != self.me =>
            {
                vec![shared_frame(delivery)]
            }
            Event::Typing { .. } | Event::Presence { .. } => Vec::new(),
        }
    }
}

/// The frame of a live event, encoded once per event for all its followers.
fn shared_frame(delivery: &Delivery) -> Utf8Bytes {
    let bytes = delivery.frame(|event| Bytes::from(event_frame(event)));
    Utf8Bytes::try_from(bytes).unwrap_or_default()
}

/// The frame of a live event (the same for every follower).
fn event_frame(event: &Event) -> String {
    match event {
        Event::Message { message } | Event::Changed { message } => message_frame(message),
        Event::Receipt {
            conversation_id,
            account,
            delivered_seq,
            read_seq,
        } => json_frame(&ServerFrame::Receipt {
            conversation_id,
            account,
            delivered_seq: *delivered_seq,
            read_seq: *read_seq,
        }),
        Event::Typing {
            conversation_id,
            account,
        } => json_frame(&ServerFrame::Typing {
            conversation_id,
            account,
        }),
        Event::Presence {
            conversation_id,
            account,
            status,
            last_seen,
        } => json_frame(&ServerFrame::Presence {
            conversation_id,
            account,
            status,
            last_seen: super::dto::rfc3339(*last_seen),
        }),
    }
}

fn json_frame(frame: &ServerFrame<'_>) -> String {
    serde_json::to_string(frame).unwrap_or_default()
}

fn message_frame(message: &Message) -> String {
    json_frame(&ServerFrame::Message {
        message: MessageView::from(message),
    })
}

pub(super) fn error_frame(
    code: &'static str,
    detail: String,
    conversation_id: Option<&str>,
    client_id: Option<&str>,
) -> String {
    json_frame(&ServerFrame::Error {
        code,
        detail,
        conversation_id,
        client_id,
    })
}

/// A use-case error as an `error` frame (the same codes as the HTTP problems' slugs).
fn chat_error(e: ChatError, conversation_id: Option<&str>, client_id: Option<&str>) -> String {
    let code = match &e {
        ChatError::Invalid(_) => "invalid",
        ChatError::NotFound(_) => "not-found",
        ChatError::Forbidden(_) => "forbidden",
        ChatError::Conflict(slug, _) => slug,
        ChatError::State(_) => "conversation-state",
        ChatError::Limited(..) => "rate-limited",
        ChatError::Infra(_) => "unavailable",
    };
    let detail = match &e {
        ChatError::Infra(_) => "a dependency failed; retry later".to_owned(),
        other => other.to_string(),
    };
    error_frame(code, detail, conversation_id, client_id)
}

//! Messages: send (idempotent per client id), history by sequence, edit, delete, read marker.

use crate::domain::events::Event;
use crate::domain::keys::{Content, check_envelope};
use crate::domain::model::{Message, Role};
use crate::domain::rules::{check_body, check_client_id};
use crate::error::ChatError;
use crate::store::{Sent, Window};

use super::{UseCases, now_ms};

impl UseCases {
    /// Sends `content` from `me`: the message with its sequence number, and whether this call
    /// stored it (`false`: the first copy of a resend with the same `client_id`).
    pub async fn send(
        &self,
        me: &str,
        conversation: &str,
        client_id: &str,
        content: Content<'_>,
    ) -> Result<(Message, bool), ChatError> {
        let mut errors = Vec::new();
        if let Err(m) = check_client_id(client_id) {
            errors.push(praxis_http::FieldError::new("client_id", m));
        }
        errors.extend(self.check_content(content));
        if !errors.is_empty() {
            return Err(ChatError::Invalid(errors));
        }
        if let Content::Encrypted(e) = content {
            self.sender_device(me, &e.sender_device).await?;
        }
        self.send_allowed(me).await?;
        match self
            .store
            .send(conversation, me, client_id, content, now_ms())
            .await?
        {
            Sent::Stored(message) => {
                metrics::counter!(super::metrics::MESSAGES_TOTAL).increment(1);
                self.tell(Event::Message {
                    message: message.clone(),
                })
                .await;
                Ok((message, true))
            }
            Sent::Existing(message) if message.deleted_at.is_some() || message.holds(content) => {
                Ok((message, false))
            }
            Sent::Existing(message) => Err(ChatError::Conflict(
                "client-id-reused",
                format!(
                    "client_id {client_id} was already used for message {} with another body; \
                     use a new client_id for a new message",
                    message.seq
                ),
            )),
            Sent::NotMember => Err(ChatError::NotFound(format!(
                "no conversation {conversation} among yours"
            ))),
            Sent::WrongContent { encrypted } => Err(wrong_content(encrypted)),
        }
    }

    /// The field errors of a message's content.
    fn check_content(&self, content: Content<'_>) -> Vec<praxis_http::FieldError> {
        let max = self.settings.max_message_bytes;
        match content {
            Content::Text(body) => check_body(body, max)
                .err()
                .map(|m| praxis_http::FieldError::new("body", m))
                .into_iter()
                .collect(),
            Content::Encrypted(e) => check_envelope(e, max),
        }
    }

    /// A page of `me`'s conversation, oldest first.
    pub async fn history(
        &self,
        me: &str,
        conversation: &str,
        window: Window,
        limit: u32,
    ) -> Result<(Vec<Message>, i64), ChatError> {
        let (found, _) = self.membership(me, conversation).await?;
        let messages = self.store.history(conversation, window, limit).await?;
        Ok((messages, found.last_seq))
    }

    /// Replaces the content of `me`'s own message (ciphertext in an encrypted conversation).
    pub async fn edit(
        &self,
        me: &str,
        conversation: &str,
        seq: i64,
        content: Content<'_>,
    ) -> Result<Message, ChatError> {
        let errors = self.check_content(content);
        if !errors.is_empty() {
            return Err(ChatError::Invalid(errors));
        }
        let (found, _) = self.membership(me, conversation).await?;
        if found.encrypted != matches!(content, Content::Encrypted(_)) {
            return Err(wrong_content(found.encrypted));
        }
        if let Content::Encrypted(e) = content {
            self.sender_device(me, &e.sender_device).await?;
        }
        let message = self.message(conversation, seq).await?;
        if message.sender != me {
            return Err(ChatError::Forbidden(format!(
                "message {seq} was sent by another member; only its sender may edit it"
            )));
        }
        if !self
            .store
            .edit(conversation, seq, content, now_ms())
            .await?
        {
            return Err(deleted(seq));
        }
        let message = self.message(conversation, seq).await?;
        self.tell(Event::Changed {
            message: message.clone(),
        })
        .await;
        Ok(message)
    }

    /// Deletes a message, leaving a tombstone: its sender, or an owner of the group.
    pub async fn delete(
        &self,
        me: &str,
        conversation: &str,
        seq: i64,
    ) -> Result<Message, ChatError> {
        let (found, mine) = self.membership(me, conversation).await?;
        let message = self.message(conversation, seq).await?;
        let owner = mine.role == Role::Owner && found.kind == crate::domain::model::Kind::Group;
        if message.sender != me && !owner {
            return Err(ChatError::Forbidden(format!(
                "message {seq} was sent by another member; only its sender or a group owner may delete it"
            )));
        }
        if self.store.delete(conversation, seq, now_ms()).await? {
            let message = self.message(conversation, seq).await?;
            self.tell(Event::Changed {
                message: message.clone(),
            })
            .await;
            return Ok(message);
        }
        self.message(conversation, seq).await
    }

    /// Moves `me`'s read marker up to `seq` (capped at the newest message); returns it. The
    /// delivery marker moves with it: what was read was delivered.
    pub async fn mark_read(
        &self,
        me: &str,
        conversation: &str,
        seq: i64,
    ) -> Result<i64, ChatError> {
        Ok(self
            .move_marker(me, conversation, seq, Marker::Read)
            .await?
            .1)
    }

    /// Moves `me`'s delivery marker up to `seq` (capped at the newest message): one of its
    /// devices has every message up to it. Returns the marker.
    pub async fn mark_delivered(
        &self,
        me: &str,
        conversation: &str,
        seq: i64,
    ) -> Result<i64, ChatError> {
        Ok(self
            .move_marker(me, conversation, seq, Marker::Delivered)
            .await?
            .0)
    }

    /// Moves a marker and tells the members when it moved; returns `(delivered, read)`.
    async fn move_marker(
        &self,
        me: &str,
        conversation: &str,
        seq: i64,
        marker: Marker,
    ) -> Result<(i64, i64), ChatError> {
        if seq < 0 {
            return Err(ChatError::field(
                "seq",
                "must be a sequence number, 0 or more",
            ));
        }
        let (found, mine) = self.membership(me, conversation).await?;
        let seq = seq.min(found.last_seq);
        let (delivered_seq, read_seq) = match marker {
            Marker::Read => self.store.mark_read(conversation, me, seq).await?,
            Marker::Delivered => self.store.mark_delivered(conversation, me, seq).await?,
        };
        if delivered_seq > mine.delivered_seq || read_seq > mine.read_seq {
            self.tell(Event::Receipt {
                conversation_id: conversation.to_owned(),
                account: me.to_owned(),
                delivered_seq,
                read_seq,
            })
            .await;
        }
        Ok((delivered_seq, read_seq))
    }

    /// Tells the other members that `me` is typing (never stored).
    pub async fn typing(&self, me: &str, conversation: &str) -> Result<(), ChatError> {
        self.membership(me, conversation).await?;
        self.tell(Event::Typing {
            conversation_id: conversation.to_owned(),
            account: me.to_owned(),
        })
        .await;
        Ok(())
    }

    /// The conversation `me` follows: its newest sequence number (membership checked).
    pub async fn last_seq(&self, me: &str, conversation: &str) -> Result<i64, ChatError> {
        Ok(self.membership(me, conversation).await?.0.last_seq)
    }

    async fn message(&self, conversation: &str, seq: i64) -> Result<Message, ChatError> {
        self.store.message(conversation, seq).await?.ok_or_else(|| {
            ChatError::NotFound(format!("no message {seq} in conversation {conversation}"))
        })
    }
}

/// Text for an encrypted conversation, or ciphertext for one that is not.
fn wrong_content(encrypted: bool) -> ChatError {
    if encrypted {
        ChatError::state(
            "body",
            "the conversation is end-to-end encrypted: send `encrypted` (a ciphertext envelope), not `body`",
        )
    } else {
        ChatError::state(
            "encrypted",
            "the conversation is not end-to-end encrypted: send `body` (text); create an encrypted conversation for ciphertext",
        )
    }
}

fn deleted(seq: i64) -> ChatError {
    ChatError::Conflict(
        "message-deleted",
        format!("message {seq} is deleted; a tombstone cannot be edited"),
    )
}

/// Which of a member's markers moves.
#[derive(Debug, Clone, Copy)]
enum Marker {
    Delivered,
    Read,
}

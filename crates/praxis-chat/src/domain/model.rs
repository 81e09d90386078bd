//! What a conversation, a member and a message are.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::keys::{Content, Encrypted};

/// A direct conversation (exactly two accounts, unique per pair) or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Two accounts; nobody joins or leaves.
    Direct,
    /// Any number of accounts up to `max_members`, managed by its owners.
    Group,
}

impl Kind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Group => "group",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "direct" => Some(Kind::Direct),
            "group" => Some(Kind::Group),
            _ => None,
        }
    }
}

/// A member's role in a group (both members of a direct conversation are owners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May add and remove members, change roles and delete anyone's messages.
    Owner,
    /// May send, and edit or delete their own messages.
    Member,
}

impl Role {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }

    /// Reads a stored or wire name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Its id (a UUIDv7).
    pub id: String,
    /// Direct or group.
    pub kind: Kind,
    /// The group's title (`None` for direct conversations).
    pub title: Option<String>,
    /// The two accounts of a direct conversation, sorted, joined by a newline
    /// ([`crate::domain::rules::direct_key`]).
    pub direct_key: Option<String>,
    /// The account that created it.
    pub created_by: String,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Sequence number of its newest message (0 when it has none).
    pub last_seq: i64,
    /// Time of its newest activity, unix ms.
    pub last_at: i64,
    /// End-to-end encrypted: its messages are ciphertext envelopes, never plain text. Fixed at
    /// creation.
    pub encrypted: bool,
}

/// One member of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The account.
    pub account: String,
    /// Its role.
    pub role: Role,
    /// When it joined, unix ms.
    pub joined_at: i64,
    /// The highest sequence it has read.
    pub read_seq: i64,
    /// The highest sequence delivered to one of its devices (at least `read_seq`).
    pub delivered_seq: i64,
}

/// One message: plain text or, in an encrypted conversation, an envelope of ciphertext. A
/// deleted one is a tombstone (neither).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its conversation.
    pub conversation_id: String,
    /// Its place in the conversation: 1, 2, 3, ... with no gaps.
    pub seq: i64,
    /// Who sent it.
    pub sender: String,
    /// The sender's id for it; a resend with the same id is the same message.
    pub client_id: String,
    /// The text (`None` once deleted, and in encrypted conversations).
    pub body: Option<String>,
    /// The ciphertext envelope of an encrypted conversation's message (`None` once deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<Encrypted>,
    /// When the server stored it, unix ms.
    pub created_at: i64,
    /// When it was last edited, unix ms.
    pub edited_at: Option<i64>,
    /// When it was deleted, unix ms.
    pub deleted_at: Option<i64>,
}

impl Message {
    /// Whether the message holds exactly `content` (a resend of the same message).
    pub fn holds(&self, content: Content<'_>) -> bool {
        match content {
            Content::Text(text) => self.body.as_deref() == Some(text),
            Content::Encrypted(e) => self.encrypted.as_ref() == Some(e),
        }
    }
}

/// A conversation as one member sees it in their list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The conversation.
    pub conversation: Conversation,
    /// The viewer's read marker.
    pub read_seq: i64,
    /// The newest message, if any.
    pub last_message: Option<Message>,
}

impl Listed {
    /// Messages after the viewer's read marker.
    pub fn unread(&self) -> i64 {
        (self.conversation.last_seq - self.read_seq).max(0)
    }
}

//! What one process tells the others (and its own live connections) after a change: a stored
//! message, a moved read marker, someone typing. Carried by the platform's broadcaster, which
//! is at most once; a connection that misses a message event fills the gap from the store.

use serde::{Deserialize, Serialize};

use crate::domain::model::Message;

/// One live event of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// A message was stored under the next sequence number.
    Message {
        /// The message as stored.
        message: Message,
    },
    /// A stored message was edited or deleted (its sequence is unchanged).
    Changed {
        /// The message as it is now.
        message: Message,
    },
    /// A member's delivery or read marker moved.
    Receipt {
        /// The conversation.
        conversation_id: String,
        /// The member.
        account: String,
        /// The highest sequence delivered to one of its devices.
        delivered_seq: i64,
        /// The highest sequence it has read.
        read_seq: i64,
    },
    /// A member's presence changed (`online`, `away`, `offline`).
    Presence {
        /// The conversation whose followers are told.
        conversation_id: String,
        /// The member.
        account: String,
        /// `online`, `away` or `offline`.
        status: String,
        /// Its last heartbeat, unix ms.
        last_seen: i64,
    },
    /// A member is typing (never stored).
    Typing {
        /// The conversation.
        conversation_id: String,
        /// The member.
        account: String,
    },
}

impl Event {
    /// The conversation the event belongs to.
    pub fn conversation_id(&self) -> &str {
        match self {
            Event::Message { message } | Event::Changed { message } => &message.conversation_id,
            Event::Receipt {
                conversation_id, ..
            }
            | Event::Typing {
                conversation_id, ..
            }
            | Event::Presence {
                conversation_id, ..
            } => conversation_id,
        }
    }
}

//! The feed's records and small helpers.

use serde::{Deserialize, Serialize};

/// Whether a post is written into followers' timelines when it is created (`push`) or merged
/// into them when they are read (`pull`, for authors above the celebrity threshold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fanout {
    /// Fan-out on write.
    Push,
    /// Fan-out on read.
    Pull,
}

impl Fanout {
    /// `"push"` or `"pull"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fanout::Push => "push",
            Fanout::Pull => "pull",
        }
    }

    /// Parses [`Fanout::as_str`]; anything else is `Push`.
    pub fn parse(s: &str) -> Self {
        if s == "pull" {
            Fanout::Pull
        } else {
            Fanout::Push
        }
    }
}

/// One post, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// Database-assigned id (below 2^53); time order is id order.
    pub id: i64,
    /// The author's user id.
    pub author: String,
    /// The text (1 to 500 characters).
    pub text: String,
    /// Media references (a JSON array), if any.
    pub media: Option<serde_json::Value>,
    /// The post this one replies to.
    pub reply_to: Option<i64>,
    /// Push or pull, decided at creation.
    pub fanout: Fanout,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Deletion time, unix milliseconds.
    pub deleted_at: Option<i64>,
}

/// The `feed.posted` bus event: one per created post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedEvent {
    /// The post id.
    pub id: i64,
    /// Its author.
    pub author: String,
    /// Its fan-out mode.
    pub fanout: Fanout,
    /// Its creation time, unix milliseconds.
    pub created_at: i64,
}

/// The clock of every table: unix milliseconds (UTC).
pub use praxis_infra::sql::now_ms;

/// A unix-millisecond time as RFC 3339 (UTC, milliseconds).
pub use praxis_kit::text::rfc3339_ms as rfc3339;

/// Whether `id` is an acceptable user id: 1 to 128 visible ASCII characters without `/`.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_ids() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert!(valid_user_id("0190a-b"));
        assert!(!valid_user_id(""));
        assert!(!valid_user_id("a b"));
        assert!(!valid_user_id(&"x".repeat(129)));
        assert_eq!(Fanout::parse("pull"), Fanout::Pull);
        assert_eq!(Fanout::parse("push").as_str(), "push");
    }
}

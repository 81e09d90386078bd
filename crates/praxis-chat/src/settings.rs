//! The chat's settings: its `[chat]` config section.

use std::time::Duration;

use praxis_http::system::{Checks, Key, SettingError, Settings};
use serde::{Deserialize, Serialize};

/// Scope of the sending and managing routes for API keys. A logged-in account acts for itself
/// without it; the admin role implies it.
pub const CHAT_WRITE: &str = "chat:write";
/// Scope of the reading routes for API keys (`chat:write` implies it).
pub const CHAT_READ: &str = "chat:read";

/// Everything the chat can be tuned with: the `[chat]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSettings {
    /// Most members of one group, its creator included.
    pub max_members: usize,
    /// Largest message body, in bytes of UTF-8 (and largest encrypted envelope, in bytes of
    /// JSON).
    pub max_message_bytes: usize,
    /// Most messages in one page of history (and conversations in one page of the list).
    pub page_max: u32,
    /// Events queued for one WebSocket before it counts as too slow and is closed (4008).
    pub outbound_queue: usize,
    /// Messages one account may send per second (also its burst), across processes when the
    /// platform's limiter is Redis.
    pub send_rate: u64,
    /// Live connections (WebSockets and event streams) one account may hold in one process.
    pub connections_per_account: usize,
    /// How long an account shows online (or away) after the last heartbeat of one of its
    /// connections; connections beat every third of it.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub presence_ttl: Duration,
    /// How long messages are kept; older ones are deleted, and a client catching up from
    /// before them gets a `reset`. Zero keeps everything.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub retention: Duration,
    /// Namespace of the chat's Redis keys (`<prefix>:chat:...`): the platform's prefix, not a
    /// key of the section.
    #[serde(skip)]
    pub key_prefix: String,
}

/// The documented keys of the `[chat]` section.
pub const KEYS: &[Key] = &[
    Key::new(
        "max_members",
        "most members of one group, its creator included (2 to 100000)",
    ),
    Key::new(
        "max_message_bytes",
        "largest message body, or encrypted envelope (its JSON), in bytes (1 to 1048576)",
    ),
    Key::new(
        "page_max",
        "most messages (or conversations) in one page (1 to 1000)",
    ),
    Key::new(
        "outbound_queue",
        "events queued per WebSocket before a slow client is closed with 4008 (1 to 100000)",
    ),
    Key::new(
        "send_rate",
        "messages one account may send per second, also its burst (1 to 100000)",
    ),
    Key::new(
        "connections_per_account",
        "live connections (WebSockets, event streams) one account may hold per process (1 to 10000)",
    ),
    Key::new(
        "retention",
        "how long messages are kept; clients catching up from before get a reset (0: forever)",
    ),
    Key::new(
        "presence_ttl",
        "how long an account shows online after its connections' last heartbeat (3s to 1h)",
    ),
];

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            max_members: 1_000,
            max_message_bytes: 16 * 1024,
            page_max: 200,
            outbound_queue: 256,
            send_rate: 20,
            connections_per_account: 20,
            presence_ttl: Duration::from_secs(60),
            retention: Duration::ZERO,
            key_prefix: "praxis".to_owned(),
        }
    }
}

impl Settings for ChatSettings {
    fn validate(&self) -> Result<(), Vec<SettingError>> {
        let mut checks = Checks::new();
        checks.require(
            (2..=100_000).contains(&self.max_members),
            "max_members",
            "must be from 2 to 100000 (e.g. 1000)",
        );
        checks.require(
            (1..=1_048_576).contains(&self.max_message_bytes),
            "max_message_bytes",
            "must be from 1 to 1048576 (e.g. 16384)",
        );
        checks.require(
            (1..=1_000).contains(&self.page_max),
            "page_max",
            "must be from 1 to 1000 (e.g. 200)",
        );
        checks.require(
            (1..=100_000).contains(&self.outbound_queue),
            "outbound_queue",
            "must be from 1 to 100000 (e.g. 256)",
        );
        checks.require(
            (1..=100_000).contains(&self.send_rate),
            "send_rate",
            "must be from 1 to 100000 messages per second (e.g. 20)",
        );
        checks.require(
            (1..=10_000).contains(&self.connections_per_account),
            "connections_per_account",
            "must be from 1 to 10000 (e.g. 20)",
        );
        checks.require(
            (Duration::from_secs(3)..=Duration::from_secs(3600)).contains(&self.presence_ttl),
            "presence_ttl",
            "must be from 3s to 1h (e.g. 60s)",
        );
        checks.require(
            self.retention.is_zero() || self.retention >= Duration::from_secs(1),
            "retention",
            "must be 0 (keep everything) or at least 1s (e.g. 90d)",
        );
        checks.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_named() {
        assert_eq!(ChatSettings::default().validate(), Ok(()));
        let s = ChatSettings {
            max_members: 1,
            page_max: 0,
            ..ChatSettings::default()
        };
        let keys: Vec<&str> = s
            .validate()
            .expect_err("members and page")
            .iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["max_members", "page_max"]);
    }
}

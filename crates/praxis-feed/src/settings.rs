//! The feed's settings: its `[feed]` config section.

use std::time::Duration;

use praxis_http::system::{Checks, Key, SettingError, Settings};
use serde::{Deserialize, Serialize};

/// Scope of the writing routes (posts, follows, blocks, mutes) for API keys. A logged-in
/// account acts on its own feed without it; the admin role implies it.
pub const FEED_WRITE: &str = "feed:write";
/// Scope of the reading routes (timelines, posts, the stream) for API keys. A logged-in
/// account reads without it; the admin role implies it.
pub const FEED_READ: &str = "feed:read";

/// Everything the feed can be tuned with: the `[feed]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedSettings {
    /// An author with at least this many followers when posting makes a `pull` post (merged
    /// into followers' timelines when they read) instead of a `push` post (written into each
    /// active follower's timeline).
    pub celebrity_threshold: u64,
    /// Most entries kept in one user's timeline in the timeline store; older pages come from
    /// the database.
    pub timeline_cap: usize,
    /// A user who read their home timeline within this window is active: their timeline is
    /// kept in the store (it expires after this much idleness) and gets fan-out.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub active_window: Duration,
    /// Followers written per pipelined round trip of the fan-out.
    pub fanout_batch: usize,
    /// Namespace of the feed's Redis keys (`<prefix>:feed:...`): the platform's prefix, not a
    /// key of the section.
    #[serde(skip)]
    pub key_prefix: String,
    /// Most follows in one admin bulk import.
    pub import_max: usize,
    /// Recent posts of a newly followed author written into the follower's timeline.
    pub backfill: usize,
    /// How long `Idempotency-Key` answers of post creation are kept.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub idempotency_ttl: Duration,
    /// Most posts kept in each process's post cache (home pages are hydrated from it).
    pub post_cache_capacity: u64,
    /// Most users' relations (follows, blocks, mutes) kept in each process's cache.
    pub relations_cache_capacity: u64,
}

/// The documented keys of the `[feed]` section.
pub const KEYS: &[Key] = &[
    Key::new(
        "celebrity_threshold",
        "authors with at least this many followers make pull posts (merged when followers read)",
    ),
    Key::new(
        "timeline_cap",
        "entries kept per user timeline (40 to 100000)",
    ),
    Key::new(
        "active_window",
        "users who read within this window get fan-out; idle timelines expire after it",
    ),
    Key::new(
        "fanout_batch",
        "followers written per pipelined round trip of the fan-out",
    ),
    Key::new("import_max", "most follows in one admin bulk import"),
    Key::new(
        "backfill",
        "recent posts of a newly followed author written into the follower's timeline",
    ),
    Key::new(
        "idempotency_ttl",
        "how long Idempotency-Key answers of post creation are kept",
    ),
    Key::new(
        "post_cache_capacity",
        "most posts in each process's post cache that hydrates home pages (1 to 100000000)",
    ),
    Key::new(
        "relations_cache_capacity",
        "most users' follows, blocks and mutes in each process's cache (1 to 100000000)",
    ),
];

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            celebrity_threshold: 10_000,
            timeline_cap: 800,
            active_window: Duration::from_secs(7 * 24 * 3600),
            fanout_batch: 500,
            key_prefix: "praxis".to_owned(),
            import_max: 10_000,
            backfill: 40,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            post_cache_capacity: 200_000,
            relations_cache_capacity: 100_000,
        }
    }
}

impl Settings for FeedSettings {
    fn validate(&self) -> Result<(), Vec<SettingError>> {
        let mut checks = Checks::new();
        checks.require(
            (1..=1_000_000_000).contains(&self.celebrity_threshold),
            "celebrity_threshold",
            "must be from 1 to 1000000000 (e.g. 10000)",
        );
        checks.require(
            (40..=100_000).contains(&self.timeline_cap),
            "timeline_cap",
            "must be from 40 (one full page) to 100000 (e.g. 800)",
        );
        checks.require(
            self.active_window >= Duration::from_secs(1),
            "active_window",
            "must be at least 1s (e.g. 168h)",
        );
        checks.require(
            (1..=100_000).contains(&self.fanout_batch),
            "fanout_batch",
            "must be from 1 to 100000 (e.g. 500)",
        );
        checks.require(
            (1..=100_000_000).contains(&self.post_cache_capacity),
            "post_cache_capacity",
            "must be from 1 to 100000000 (e.g. 200000; about 1 KiB per post)",
        );
        checks.require(
            (1..=100_000_000).contains(&self.relations_cache_capacity),
            "relations_cache_capacity",
            "must be from 1 to 100000000 (e.g. 100000)",
        );
        checks.require(self.import_max >= 1, "import_max", "must be at least 1");
        checks.require(
            !self.key_prefix.is_empty(),
            "key_prefix",
            "must not be empty",
        );
        checks.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_named() {
        assert_eq!(FeedSettings::default().validate(), Ok(()));
        let s = FeedSettings {
            timeline_cap: 3,
            fanout_batch: 0,
            ..FeedSettings::default()
        };
        let keys: Vec<&str> = s
            .validate()
            .expect_err("cap and batch")
            .iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["timeline_cap", "fanout_batch"]);
    }
}

//! The feed's settings; the binary maps its `feed_*` configuration keys onto
//! [`FeedSettings`].

use std::time::Duration;

/// Scope of the writing routes (posts, follows, blocks, mutes) for API keys. A logged-in
/// account acts on its own feed without it; the admin role implies it.
pub const FEED_WRITE: &str = "feed:write";
/// Scope of the reading routes (timelines, posts, the stream) for API keys. A logged-in
/// account reads without it; the admin role implies it.
pub const FEED_READ: &str = "feed:read";

/// Everything the feed can be tuned with.
#[derive(Debug, Clone)]
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
    pub active_window: Duration,
    /// Followers written per pipelined round trip of the fan-out.
    pub fanout_batch: usize,
    /// Namespace of the feed's Redis keys (`<prefix>:feed:...`): the platform's prefix.
    pub key_prefix: String,
    /// Most follows in one admin bulk import.
    pub import_max: usize,
    /// Recent posts of a newly followed author written into the follower's timeline.
    pub backfill: usize,
    /// How long `Idempotency-Key` answers of post creation are kept.
    pub idempotency_ttl: Duration,
}

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
        }
    }
}

impl FeedSettings {
    /// Checks values that would make the service misbehave; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.celebrity_threshold == 0 {
            return Err("celebrity_threshold must be at least 1".into());
        }
        if self.timeline_cap < 40 {
            return Err("timeline_cap must be at least 40 (one full page)".into());
        }
        if self.active_window < Duration::from_secs(1) {
            return Err("active_window must be at least 1s".into());
        }
        if self.fanout_batch == 0 {
            return Err("fanout_batch must be at least 1".into());
        }
        if self.import_max == 0 {
            return Err("import_max must be at least 1".into());
        }
        if self.key_prefix.is_empty() {
            return Err("key_prefix must not be empty".into());
        }
        Ok(())
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
            ..FeedSettings::default()
        };
        assert!(s.validate().expect_err("cap").starts_with("timeline_cap"));
        let s = FeedSettings {
            fanout_batch: 0,
            ..FeedSettings::default()
        };
        assert!(s.validate().expect_err("batch").starts_with("fanout_batch"));
    }
}

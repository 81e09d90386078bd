//! The shortener's settings: its `[shortener]` config section.

use std::time::Duration;

use praxis_http::system::{Checks, Key, SettingError, Settings};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::codes::{MAX_CODE_LENGTH, MIN_CODE_LENGTH};
use crate::domain::url_rules::DEFAULT_MAX_URL_LENGTH;

/// Everything the shortener can be tuned with: the `[shortener]` section. [`Default`] gives a
/// working local setup.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShortenerSettings {
    /// Public base URL of short links (`short_url = base_url + code`). Its host is also the
    /// "own domain" that links may not point to. Default `http://localhost:8080/`; the binary
    /// sets the deployment's `base_url` (not a key of the section).
    #[serde(skip, default = "default_base_url")]
    pub base_url: Url,
    /// Redirect status of links that do not choose one: 301 (default), 302 or 307.
    pub default_redirect: u16,
    /// Whether links forward the short URL's query string to the target unless they say
    /// otherwise. Default false: the target is exactly what the owner stored.
    pub forward_query: bool,
    /// Length of generated codes, 4..=10 base62 characters. Default 7 (62^7 ≈ 3.5e12 codes).
    pub code_length: u32,
    /// How many sequence numbers a process reserves at once. Default 1000: one database
    /// write per 1000 generated codes; a crash wastes at most that many numbers.
    pub block_size: u32,
    /// Most links kept in each process's redirect cache (L1). Default 100 000.
    pub cache_capacity: u64,
    /// How long a cached link lives before it is reloaded. Default 10 minutes (writes
    /// invalidate at once; the TTL only bounds staleness if an invalidation is lost).
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub cache_ttl: Duration,
    /// How long "no such code" is cached. Default 30 s (creates invalidate it at once).
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub negative_ttl: Duration,
    /// Whether the redirect cache also uses the shared L2 (Redis) when one is configured.
    /// Default true.
    pub cache_use_l2: bool,
    /// Number of codes the Bloom filter is sized for at start; it is rebuilt twice as big
    /// when the number of links passes it. Default 1 000 000 (about 1.2 MB at 1 %).
    pub bloom_capacity: u64,
    /// Target false-positive rate of the Bloom filter. Default 0.01.
    pub bloom_false_positive_rate: f64,
    /// How often the Bloom filter is rebuilt from the database anyway (repairs the effect of
    /// a lost `shortener.created` broadcast). Default 15 minutes.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub bloom_rebuild_interval: Duration,
    /// Whether redirects are counted for the statistics API (per day, agent class and
    /// referrer). Default true; false serves redirects without recording anything (visit
    /// limits, `max_visits`, are still enforced: they are not statistics).
    pub visit_stats: bool,
    /// Most distinct (code, day, agent, referrer) counters held in memory, batches waiting
    /// for the database included; a visit to a further new counter is dropped and counted.
    /// Default 65 536.
    pub visit_buffer: usize,
    /// Most distinct counters in one stored batch (holding that many stores at once); visits
    /// of the same key are summed before storing. Default 5000.
    pub visit_batch_max: usize,
    /// Longest a visit waits in memory before its batch is stored. Default 1 s; this is also
    /// what a `kill -9` can lose.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub visit_flush_interval: Duration,
    /// Longest target URL in bytes. Default 2048.
    pub max_url_length: usize,
    /// Lets callers without the admin key create links (owner "anonymous"). Default false.
    /// Managing links always needs a caller allowed to write.
    pub anonymous_create: bool,
    /// How long an `Idempotency-Key` answer is kept. Default 24 h.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub idempotency_ttl: Duration,
    /// Most items in one bulk create. Default 1000.
    pub bulk_max: usize,
}

fn default_base_url() -> Url {
    Url::parse("http://localhost:8080/").expect("constant URL parses")
}

/// The documented keys of the `[shortener]` section; the six keys that existed before sections
/// keep their flat names.
pub const KEYS: &[Key] = &[
    Key::new(
        "default_redirect",
        "redirect status used when a link does not choose one: 301, 302 or 307",
    )
    .legacy("default_redirect"),
    Key::new(
        "forward_query",
        "whether the short link's query string is appended to the target",
    )
    .legacy("forward_query"),
    Key::new(
        "code_length",
        "length of generated codes, 4 to 10 base62 characters",
    ),
    Key::new(
        "block_size",
        "sequence numbers a process reserves at once (one database write per block)",
    ),
    Key::new(
        "cache_capacity",
        "most links in the in-process redirect cache (L1)",
    )
    .legacy("cache_capacity"),
    Key::new(
        "cache_ttl",
        "how long a cached link is served before it is reloaded",
    )
    .legacy("cache_ttl"),
    Key::new("negative_ttl", "how long \"no such code\" is cached"),
    Key::new(
        "cache_use_l2",
        "whether the redirect cache also uses Redis (L2) when redis_url is set",
    ),
    Key::new(
        "bloom_capacity",
        "codes the Bloom filter is sized for at start",
    ),
    Key::new(
        "bloom_false_positive_rate",
        "target false-positive rate of the Bloom filter (between 0 and 0.5)",
    ),
    Key::new(
        "bloom_rebuild_interval",
        "how often the Bloom filter is rebuilt from the database",
    ),
    Key::new(
        "visit_stats",
        "whether redirects are counted for the statistics API",
    )
    .legacy("visit_stats"),
    Key::new(
        "visit_buffer",
        "most distinct visit counters held in memory (visits to further new ones are dropped and counted)",
    ),
    Key::new(
        "visit_batch_max",
        "most distinct counters in one stored visit batch",
    ),
    Key::new(
        "visit_flush_interval",
        "longest a visit waits in memory before its batch is stored (what kill -9 can lose)",
    ),
    Key::new("max_url_length", "longest target URL in bytes"),
    Key::new(
        "anonymous_create",
        "whether callers without credentials may create links (owner anonymous)",
    )
    .legacy("anonymous_create"),
    Key::new(
        "idempotency_ttl",
        "how long an Idempotency-Key answer is kept",
    ),
    Key::new("bulk_max", "most items in one bulk create"),
];

impl Default for ShortenerSettings {
    fn default() -> Self {
        Self {
            base_url: default_base_url(),
            default_redirect: 301,
            forward_query: false,
            code_length: 7,
            block_size: 1000,
            cache_capacity: 100_000,
            cache_ttl: Duration::from_secs(600),
            negative_ttl: Duration::from_secs(30),
            cache_use_l2: true,
            bloom_capacity: 1_000_000,
            bloom_false_positive_rate: 0.01,
            bloom_rebuild_interval: Duration::from_secs(900),
            visit_stats: true,
            visit_buffer: 65_536,
            visit_batch_max: 5000,
            visit_flush_interval: Duration::from_secs(1),
            max_url_length: DEFAULT_MAX_URL_LENGTH,
            anonymous_create: false,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            bulk_max: 1000,
        }
    }
}

impl Settings for ShortenerSettings {
    fn validate(&self) -> Result<(), Vec<SettingError>> {
        let mut checks = Checks::new();
        checks.require(
            matches!(self.base_url.scheme(), "http" | "https")
                && self.base_url.host_str().is_some(),
            "base_url",
            format!("`{}` must be an http(s) URL with a host", self.base_url),
        );
        checks.require(
            matches!(self.default_redirect, 301 | 302 | 307),
            "default_redirect",
            format!(
                "\"{}\" is not a redirect status (expected 301, 302 or 307)",
                self.default_redirect
            ),
        );
        checks.require(
            (MIN_CODE_LENGTH..=MAX_CODE_LENGTH).contains(&self.code_length),
            "code_length",
            format!(
                "must be {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH}, got {}",
                self.code_length
            ),
        );
        checks.require(
            (1..=1_000_000).contains(&self.block_size),
            "block_size",
            format!("must be 1 to 1000000, got {}", self.block_size),
        );
        checks.require(
            self.cache_capacity >= 1,
            "cache_capacity",
            "must be at least 1 (e.g. 1000000)".to_owned(),
        );
        checks.require(
            !self.cache_ttl.is_zero(),
            "cache_ttl",
            "must be longer than zero (e.g. 10m)".to_owned(),
        );
        checks.require(
            self.bloom_capacity >= 1,
            "bloom_capacity",
            "must be at least 1".to_owned(),
        );
        checks.require(
            self.bloom_false_positive_rate > 0.0 && self.bloom_false_positive_rate < 0.5,
            "bloom_false_positive_rate",
            format!(
                "must be between 0 and 0.5, got {}",
                self.bloom_false_positive_rate
            ),
        );
        checks.require(
            self.visit_buffer >= 1,
            "visit_buffer",
            "must be at least 1".to_owned(),
        );
        checks.require(
            self.visit_batch_max >= 1,
            "visit_batch_max",
            "must be at least 1".to_owned(),
        );
        checks.require(
            !self.visit_flush_interval.is_zero(),
            "visit_flush_interval",
            "must be longer than zero".to_owned(),
        );
        checks.require(
            !self.bloom_rebuild_interval.is_zero(),
            "bloom_rebuild_interval",
            "must be longer than zero".to_owned(),
        );
        checks.require(
            self.max_url_length >= 16,
            "max_url_length",
            format!("must be at least 16, got {}", self.max_url_length),
        );
        checks.require(self.bulk_max >= 1, "bulk_max", "must be at least 1");
        checks.finish()
    }
}

impl ShortenerSettings {
    /// The host links may not point to (the short domain itself).
    pub fn own_host(&self) -> Option<&str> {
        self.base_url.host_str()
    }

    /// The public short URL of `code`.
    pub fn short_url(&self, code: &str) -> String {
        let base = self.base_url.as_str();
        if base.ends_with('/') {
            format!("{base}{code}")
        } else {
            format!("{base}/{code}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ShortenerSettings::default().validate(), Ok(()));
        assert_eq!(
            ShortenerSettings::default().short_url("abc"),
            "http://localhost:8080/abc"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let s = ShortenerSettings {
            default_redirect: 308,
            ..ShortenerSettings::default()
        };
        let keys = |s: &ShortenerSettings| -> Vec<&str> {
            s.validate()
                .expect_err("invalid")
                .iter()
                .map(|e| e.key)
                .collect()
        };
        assert_eq!(keys(&s), ["default_redirect"]);
        let s = ShortenerSettings {
            code_length: 3,
            cache_ttl: Duration::ZERO,
            ..ShortenerSettings::default()
        };
        assert_eq!(keys(&s), ["code_length", "cache_ttl"]);
    }
}

//! The shortener's settings; the binary maps its configuration onto [`ShortenerSettings`].

use std::time::Duration;

use url::Url;

use crate::domain::codes::{MAX_CODE_LENGTH, MIN_CODE_LENGTH};
use crate::domain::url_rules::DEFAULT_MAX_URL_LENGTH;

/// Everything the shortener can be tuned with. [`Default`] gives a working local setup.
#[derive(Debug, Clone)]
pub struct ShortenerSettings {
    /// Public base URL of short links (`short_url = base_url + code`). Its host is also the
    /// "own domain" that links may not point to. Default `http://localhost:8080/`.
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
    pub cache_ttl: Duration,
    /// How long "no such code" is cached. Default 30 s (creates invalidate it at once).
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
    pub bloom_rebuild_interval: Duration,
    /// Whether redirects are counted for the statistics API (per day, agent class and
    /// referrer). Default true; false serves redirects without recording anything (visit
    /// limits, `max_visits`, are still enforced: they are not statistics).
    pub visit_stats: bool,
    /// Capacity of the in-memory visit channel; visits beyond it are dropped and counted.
    /// Default 65 536.
    pub visit_buffer: usize,
    /// Most distinct (code, day, agent, referrer) counters in one published batch; visits of
    /// the same key are summed before publishing. Default 5000.
    pub visit_batch_max: usize,
    /// Longest a visit waits in memory before its batch is published. Default 1 s; this is
    /// also what a `kill -9` can lose.
    pub visit_flush_interval: Duration,
    /// Longest target URL in bytes. Default 2048.
    pub max_url_length: usize,
    /// Lets callers without the admin key create links (owner "anonymous"). Default false.
    /// Managing links always needs a caller allowed to write.
    pub anonymous_create: bool,
    /// How long an `Idempotency-Key` answer is kept. Default 24 h.
    pub idempotency_ttl: Duration,
    /// Most items in one bulk create. Default 1000.
    pub bulk_max: usize,
}

impl Default for ShortenerSettings {
    fn default() -> Self {
        Self {
            base_url: Url::parse("http://localhost:8080/").expect("constant URL parses"),
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

/// A setting with a value the shortener cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shortener setting {key}: {message}")]
pub struct SettingsError {
    /// The setting's name.
    pub key: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ShortenerSettings {
    /// Checks every value; the error names the setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let err = |key, message: String| Err(SettingsError { key, message });
        if !matches!(self.base_url.scheme(), "http" | "https") || self.base_url.host_str().is_none()
        {
            return err(
                "base_url",
                format!("`{}` must be an http(s) URL with a host", self.base_url),
            );
        }
        if !matches!(self.default_redirect, 301 | 302 | 307) {
            return err(
                "default_redirect",
                format!("must be 301, 302 or 307, got {}", self.default_redirect),
            );
        }
        if !(MIN_CODE_LENGTH..=MAX_CODE_LENGTH).contains(&self.code_length) {
            return err(
                "code_length",
                format!(
                    "must be {MIN_CODE_LENGTH}..={MAX_CODE_LENGTH}, got {}",
                    self.code_length
                ),
            );
        }
        if self.block_size == 0 || self.block_size > 1_000_000 {
            return err(
                "block_size",
                format!("must be 1..=1000000, got {}", self.block_size),
            );
        }
        if self.cache_capacity == 0 {
            return err("cache_capacity", "must be at least 1".into());
        }
        if self.bloom_capacity == 0 {
            return err("bloom_capacity", "must be at least 1".into());
        }
        if !(self.bloom_false_positive_rate > 0.0 && self.bloom_false_positive_rate < 0.5) {
            return err(
                "bloom_false_positive_rate",
                format!(
                    "must be between 0 and 0.5, got {}",
                    self.bloom_false_positive_rate
                ),
            );
        }
        if self.visit_buffer == 0 || self.visit_batch_max == 0 {
            return err(
                "visit_buffer",
                "visit_buffer and visit_batch_max must be at least 1".into(),
            );
        }
        if self.visit_flush_interval.is_zero() || self.bloom_rebuild_interval.is_zero() {
            return err(
                "visit_flush_interval",
                "intervals must be longer than zero".into(),
            );
        }
        if self.max_url_length < 16 {
            return err(
                "max_url_length",
                format!("must be at least 16, got {}", self.max_url_length),
            );
        }
        if self.bulk_max == 0 {
            return err("bulk_max", "must be at least 1".into());
        }
        Ok(())
    }

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
        assert_eq!(s.validate().map_err(|e| e.key), Err("default_redirect"));
        let s = ShortenerSettings {
            code_length: 3,
            ..ShortenerSettings::default()
        };
        assert_eq!(s.validate().map_err(|e| e.key), Err("code_length"));
    }
}

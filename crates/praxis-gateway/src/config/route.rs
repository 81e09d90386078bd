//! Routes and tiers in the gateway file.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// A route: requests whose host and path match go to `pool`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// Its name in metrics and logs (default: `host` + `path_prefix`).
    pub name: Option<String>,
    /// The `Host` it matches (case-insensitive, port ignored); unset matches any host.
    pub host: Option<String>,
    /// The start of the paths it matches.
    pub path_prefix: String,
    /// The pool it sends to.
    pub pool: String,
    /// How long a request may take in all, retries included; the client gets 504 after it.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub timeout: Duration,
    /// How long one attempt may take (at most what is left of `timeout`); unset: `timeout`.
    #[serde(with = "option_duration")]
    pub per_try_timeout: Option<Duration>,
    /// Send a second attempt to another instance when the first has not answered after this
    /// long (requests that may be retried only; a hedge spends the retry budget). Unset: no
    /// hedging.
    #[serde(with = "option_duration")]
    pub hedge_after: Option<Duration>,
    /// Whether failed requests that may be retried (idempotent methods, or an
    /// `Idempotency-Key`) are retried within the pool's budget.
    pub retries: bool,
    /// Request bodies up to this size are kept for a retry; larger ones are streamed and not
    /// retried.
    #[serde(with = "praxis_kit::text::serde_with::size")]
    pub retry_body_limit: usize,
    /// A canary: a share of the route's traffic (or the requests with a header) goes to
    /// another pool, rolled back automatically when it does worse than the route's pool.
    pub canary: Option<CanarySettings>,
}

/// A route's canary (see [`praxis_kit::canary`] for the verdict).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CanarySettings {
    /// The pool of the new version.
    pub pool: String,
    /// Share of the route's requests sent to it, in percent (0 to 100).
    pub percent: f64,
    /// Requests carrying this header (any value) always go to it.
    pub header: Option<String>,
    /// How far back responses are compared.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub window: Duration,
    /// Canary responses in the window before any verdict.
    pub min_requests: u32,
    /// Roll back when the canary's error rate (5xx) exceeds the baseline's by more than this
    /// (0 to 1: 0.05 is five points).
    pub max_error_rate_increase: f64,
    /// Roll back when the canary's p99 exceeds this many times the baseline's (0: no latency
    /// rule)...
    pub max_p99_ratio: f64,
    /// ...and exceeds it by at least this much.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub min_p99_gap: Duration,
}

impl Default for CanarySettings {
    fn default() -> Self {
        let k = praxis_kit::canary::CanaryConfig::default();
        Self {
            pool: String::new(),
            percent: 0.0,
            header: None,
            window: Duration::from_millis(k.window_ms),
            min_requests: k.min_requests,
            max_error_rate_increase: k.max_error_rate_increase,
            max_p99_ratio: k.max_p99_ratio,
            min_p99_gap: Duration::from_millis(k.min_p99_gap_ms as u64),
        }
    }
}

impl CanarySettings {
    /// The kit's configuration.
    pub fn to_kit(&self) -> praxis_kit::canary::CanaryConfig {
        praxis_kit::canary::CanaryConfig {
            window_ms: self.window.as_millis() as u64,
            min_requests: self.min_requests,
            max_error_rate_increase: self.max_error_rate_increase,
            max_p99_ratio: self.max_p99_ratio,
            min_p99_gap_ms: self.min_p99_gap.as_secs_f64() * 1000.0,
            max_samples: praxis_kit::canary::CanaryConfig::default().max_samples,
        }
    }
}

impl Default for RouteConfig {
    fn default() -> Self {
        Self {
            name: None,
            host: None,
            path_prefix: "/".to_owned(),
            pool: String::new(),
            timeout: Duration::from_secs(15),
            per_try_timeout: None,
            hedge_after: None,
            retries: true,
            retry_body_limit: 64 * 1024,
            canary: None,
        }
    }
}

impl RouteConfig {
    /// Checks the route; errors are prefixed with `at` (`routes[0]`).
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if !self.path_prefix.starts_with('/') {
            return Err(ConfigError::new(
                format!("{at}.path_prefix"),
                format!("{:?} must start with /", self.path_prefix),
            ));
        }
        if self.pool.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.pool"),
                "a route needs a pool (pool = \"NAME\")",
            ));
        }
        if let Some(c) = &self.canary {
            let at = format!("{at}.canary");
            if c.pool.is_empty() || c.pool == self.pool {
                return Err(ConfigError::new(
                    format!("{at}.pool"),
                    "a canary needs a pool of its own (pool = \"NAME\"), not the route's",
                ));
            }
            if !(0.0..=100.0).contains(&c.percent) {
                return Err(ConfigError::new(
                    format!("{at}.percent"),
                    "must be 0 to 100",
                ));
            }
            if c.window.is_zero() {
                return Err(ConfigError::new(
                    format!("{at}.window"),
                    "must be longer than zero (e.g. 60s)",
                ));
            }
            if !(0.0..=1.0).contains(&c.max_error_rate_increase) {
                return Err(ConfigError::new(
                    format!("{at}.max_error_rate_increase"),
                    "must be a share from 0 to 1 (e.g. 0.05)",
                ));
            }
        }
        if self.timeout.is_zero() || self.per_try_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::new(
                format!("{at}.timeout"),
                "timeouts must be longer than zero (e.g. 15s)",
            ));
        }
        Ok(())
    }

    /// Its name in metrics and logs.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            format!("{}{}", self.host.as_deref().unwrap_or(""), self.path_prefix)
        })
    }
}

/// How requests of the premium tier are recognised; every other request is best effort.
/// Premium requests may use a pool's `premium_reserve`; best-effort ones are shed first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TierConfig {
    /// A header whose value `premium` marks the request premium. Set it from a trusted layer
    /// (an authenticating proxy) or leave it unset: a client could send it itself.
    pub header: Option<String>,
    /// The header that carries an API key.
    pub api_key_header: String,
    /// BLAKE3 hashes (hex) of the API keys of premium plans; the keys themselves are never
    /// stored.
    pub premium_key_hashes: Vec<String>,
}

impl Default for TierConfig {
    fn default() -> Self {
        Self {
            header: None,
            api_key_header: "x-api-key".to_owned(),
            premium_key_hashes: Vec::new(),
        }
    }
}

/// An optional duration written as text (`500ms`); absent or empty is unset.
mod option_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Writes the duration as text, or nothing.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&praxis_kit::text::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads the duration from text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        match text.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => praxis_kit::text::parse_duration(t)
                .map(Some)
                .map_err(de::Error::custom),
        }
    }
}

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
    /// The pool it sends to (unset for a blue/green route: its active side's pool).
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
    /// another pool, rolled back automatically when it does worse than the route's pool, and
    /// (with `steps` or `promote_after`) stepped up and promoted when it does not.
    pub canary: Option<CanarySettings>,
    /// Blue/green: two pools, one of them active; a switch (the admin API, or `active` changed
    /// in the file) moves new requests at once and is checked, and switched back when the new
    /// side does worse than the old one did.
    pub blue_green: Option<BlueGreenSettings>,
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
    /// Automatic promotion through these shares, in percent, increasing (`[5, 25, 50, 100]`):
    /// the canary starts at the first and moves to the next after `promote_after` healthy
    /// checks; after the last one's it is promoted (it takes all of the route's traffic).
    /// Empty: one step at `percent`.
    pub steps: Vec<f64>,
    /// Healthy checks in a row (each at least `window` long with at least `min_requests`
    /// canary responses) at each step before the next step or the promotion. Unset: 1 with
    /// `steps`, no automatic promotion without.
    pub promote_after: Option<u32>,
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
            steps: Vec::new(),
            promote_after: None,
        }
    }
}

fn kit_config(
    window: Duration,
    min_requests: u32,
    max_error_rate_increase: f64,
    max_p99_ratio: f64,
    min_p99_gap: Duration,
) -> praxis_kit::canary::CanaryConfig {
    praxis_kit::canary::CanaryConfig {
        window_ms: window.as_millis() as u64,
        min_requests,
        max_error_rate_increase,
        max_p99_ratio,
        min_p99_gap_ms: min_p99_gap.as_secs_f64() * 1000.0,
        max_samples: praxis_kit::canary::CanaryConfig::default().max_samples,
    }
}

/// Checks the judge's settings shared by canaries and blue/green routes.
fn validate_judge(
    at: &str,
    window: Duration,
    max_error_rate_increase: f64,
    max_p99_ratio: f64,
) -> Result<(), ConfigError> {
    if window.is_zero() {
        return Err(ConfigError::new(
            format!("{at}.window"),
            "must be longer than zero (e.g. 60s)",
        ));
    }
    if !(0.0..=1.0).contains(&max_error_rate_increase) {
        return Err(ConfigError::new(
            format!("{at}.max_error_rate_increase"),
            "must be a share from 0 to 1 (e.g. 0.05)",
        ));
    }
    if !max_p99_ratio.is_finite() || max_p99_ratio < 0.0 {
        return Err(ConfigError::new(
            format!("{at}.max_p99_ratio"),
            "must be 0 (no latency rule) or more (e.g. 1.5)",
        ));
    }
    Ok(())
}

impl CanarySettings {
    /// The kit's configuration.
    pub fn to_kit(&self) -> praxis_kit::canary::CanaryConfig {
        kit_config(
            self.window,
            self.min_requests,
            self.max_error_rate_increase,
            self.max_p99_ratio,
            self.min_p99_gap,
        )
    }

    /// How it is promoted, if it is: `steps` (or `percent` alone) and `promote_after`.
    pub fn promotion(&self) -> Option<praxis_kit::canary::Promotion> {
        if self.steps.is_empty() && self.promote_after.is_none() {
            return None;
        }
        let steps = if self.steps.is_empty() {
            vec![self.percent]
        } else {
            self.steps.clone()
        };
        Some(praxis_kit::canary::Promotion {
            steps,
            checks: self.promote_after.unwrap_or(1),
        })
    }

    fn validate(&self, at: &str, route_pool: &str) -> Result<(), ConfigError> {
        if self.pool.is_empty() || self.pool == route_pool {
            return Err(ConfigError::new(
                format!("{at}.pool"),
                "a canary needs a pool of its own (pool = \"NAME\"), not the route's",
            ));
        }
        if !(0.0..=100.0).contains(&self.percent) {
            return Err(ConfigError::new(
                format!("{at}.percent"),
                "must be 0 to 100",
            ));
        }
        for (i, step) in self.steps.iter().enumerate() {
            if !(*step > 0.0 && *step <= 100.0) {
                return Err(ConfigError::new(
                    format!("{at}.steps[{i}]"),
                    "each step is a share above 0 and at most 100 (e.g. [5, 25, 50, 100])",
                ));
            }
            if i > 0 && *step <= self.steps[i - 1] {
                return Err(ConfigError::new(
                    format!("{at}.steps[{i}]"),
                    "steps must increase (e.g. [5, 25, 50, 100])",
                ));
            }
        }
        if let Some(first) = self.steps.first()
            && self.percent != 0.0
            && self.percent != *first
        {
            return Err(ConfigError::new(
                format!("{at}.percent"),
                format!(
                    "with steps the canary starts at steps[0] ({first}); leave percent unset or equal to it"
                ),
            ));
        }
        if self.promote_after == Some(0) {
            return Err(ConfigError::new(
                format!("{at}.promote_after"),
                "must be at least 1 (healthy checks per step); leave it unset for no automatic promotion",
            ));
        }
        validate_judge(
            at,
            self.window,
            self.max_error_rate_increase,
            self.max_p99_ratio,
        )
    }
}

/// A side of a blue/green route.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[schema(as = GatewaySide)]
pub enum Side {
    /// The `blue` pool.
    #[default]
    Blue,
    /// The `green` pool.
    Green,
}

impl Side {
    /// `blue` or `green`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Blue => "blue",
            Side::Green => "green",
        }
    }

    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Blue => Side::Green,
            Side::Green => Side::Blue,
        }
    }

    /// 0 for blue, 1 for green.
    pub fn index(self) -> usize {
        match self {
            Side::Blue => 0,
            Side::Green => 1,
        }
    }

    /// The side of an index (0 blue, anything else green).
    pub fn from_index(i: usize) -> Side {
        if i == 0 { Side::Blue } else { Side::Green }
    }
}

/// A blue/green route: two pools, one active. A switch moves new requests to the other side
/// at once (those in flight finish where they are) and starts a check of `window`: the new
/// side's responses against the old side's over the `window` before the switch, by the
/// canary's rules; worse is switched back (`switch_back`), else confirmed
/// (`switch_confirmed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlueGreenSettings {
    /// The blue side's pool.
    pub blue: String,
    /// The green side's pool.
    pub green: String,
    /// The side that takes the traffic. Changing it in the file is a switch (with its check);
    /// a reload that leaves it as the file had it keeps the side the gateway has.
    pub active: Side,
    /// How long a switch is checked, and how far back the old side's responses count.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub window: Duration,
    /// Responses of the new side before any verdict.
    pub min_requests: u32,
    /// Switch back when the new side's error rate (5xx) exceeds the old side's by more than
    /// this (0 to 1).
    pub max_error_rate_increase: f64,
    /// Switch back when the new side's p99 exceeds this many times the old side's (0: no
    /// latency rule)...
    pub max_p99_ratio: f64,
    /// ...and exceeds it by at least this much.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub min_p99_gap: Duration,
}

impl Default for BlueGreenSettings {
    fn default() -> Self {
        let c = CanarySettings::default();
        Self {
            blue: String::new(),
            green: String::new(),
            active: Side::Blue,
            window: c.window,
            min_requests: c.min_requests,
            max_error_rate_increase: c.max_error_rate_increase,
            max_p99_ratio: c.max_p99_ratio,
            min_p99_gap: c.min_p99_gap,
        }
    }
}

impl BlueGreenSettings {
    /// The kit's configuration of the check.
    pub fn to_kit(&self) -> praxis_kit::canary::CanaryConfig {
        kit_config(
            self.window,
            self.min_requests,
            self.max_error_rate_increase,
            self.max_p99_ratio,
            self.min_p99_gap,
        )
    }

    /// The pool of `side`.
    pub fn pool(&self, side: Side) -> &str {
        match side {
            Side::Blue => &self.blue,
            Side::Green => &self.green,
        }
    }

    /// Whether the two are the same but for `active`.
    pub fn same_but_active(&self, other: &BlueGreenSettings) -> bool {
        let mut a = self.clone();
        a.active = other.active;
        a == *other
    }

    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        for (side, name) in [("blue", &self.blue), ("green", &self.green)] {
            if name.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.{side}"),
                    format!("a blue/green route names both pools ({side} = \"NAME\")"),
                ));
            }
        }
        if self.blue == self.green {
            return Err(ConfigError::new(
                format!("{at}.green"),
                "the green pool must be another pool than the blue one",
            ));
        }
        validate_judge(
            at,
            self.window,
            self.max_error_rate_increase,
            self.max_p99_ratio,
        )
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
            blue_green: None,
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
        match (&self.blue_green, self.pool.is_empty()) {
            (None, true) => {
                return Err(ConfigError::new(
                    format!("{at}.pool"),
                    "a route needs a pool (pool = \"NAME\") or a blue_green section",
                ));
            }
            (Some(_), false) => {
                return Err(ConfigError::new(
                    format!("{at}.pool"),
                    "a blue/green route sends to its active side's pool; leave pool unset",
                ));
            }
            _ => {}
        }
        if let Some(bg) = &self.blue_green {
            if self.canary.is_some() {
                return Err(ConfigError::new(
                    format!("{at}.canary"),
                    "a route has a canary or a blue_green section, not both",
                ));
            }
            bg.validate(&format!("{at}.blue_green"))?;
        }
        if let Some(c) = &self.canary {
            c.validate(&format!("{at}.canary"), &self.pool)?;
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

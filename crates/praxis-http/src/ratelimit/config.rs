//! Rate-limit configuration: serde types as written in `praxis.toml`, and their validation
//! into the compiled [`RateLimits`] the request stack checks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::{HeaderValue, Method};
use praxis_infra::ratelimit::{Algorithm, Limiter, OnStoreFailure, Quota, Rule};
use serde::{Deserialize, Serialize};

use super::counters::PolicyMetrics;
use crate::client_ip::Cidr;

/// The rate-limit section of the configuration.
///
/// ```toml
/// [rate_limit]
/// trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]
///
/// [[rate_limit.policies]]
/// name = "api"
/// match = { path_prefix = "/api/" }
/// key = "api_key"
/// algorithm = "gcra"
/// limit = 100
/// period = "1m"
/// burst = 20
///
/// [rate_limit.plans.pro]
/// multiplier = 10.0
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Peers whose `X-Forwarded-For` is believed: IP addresses or CIDR blocks
    /// (`10.0.0.0/8`, `::1`). Empty: the socket peer is always the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// IPv6 clients are keyed by this prefix of their address (one customer usually holds a
    /// whole /64). 64 by default; 128 keys each address.
    #[serde(default = "default_ipv6_subnet")]
    pub ipv6_subnet: u8,
    /// The policies, checked in this order; a request is limited by every policy it matches.
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
    /// Plan tiers (the principal's `plan`) and how they change the limits of `account` and
    /// `api_key` policies. Principals whose plan is not listed get the policies' limits.
    #[serde(default)]
    pub plans: BTreeMap<String, PlanConfig>,
}

fn default_ipv6_subnet() -> u8 {
    64
}

/// One policy: which requests, keyed how, limited how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Name shown in headers, problems and metrics: 1-64 characters of `A-Z a-z 0-9 _ - .`.
    pub name: String,
    /// Which requests the policy applies to (every request by default).
    #[serde(rename = "match", default)]
    pub matches: MatchConfig,
    /// What one counter is shared by: `ip` (client IP), `account` (the principal's account;
    /// anonymous callers by IP), `api_key` (the API key, else the account, else the IP),
    /// `route` (method and route, every client together) or `global` (everything matched).
    pub key: String,
    /// `token-bucket`, `gcra` (default), `fixed-window`, `sliding-log` or `sliding-window`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Requests allowed per `period`.
    pub limit: u64,
    /// The period: an integer and a unit `ms`, `s`, `m`, `h` or `d` (`1s`, `1m`, `1h30m`).
    pub period: String,
    /// Requests allowed at one instant (token bucket and GCRA only; `limit` by default).
    #[serde(default)]
    pub burst: Option<u64>,
    /// Count, never block: decisions are recorded in metrics (`shadow_limited`) and the request
    /// always proceeds, without `RateLimit` headers.
    #[serde(default)]
    pub shadow: bool,
    /// When the shared store (Redis) fails: `open` (allow), `closed` (answer 503) or `local`
    /// (decide in-process; the default).
    #[serde(default)]
    pub on_store_failure: Option<String>,
    /// Which responses carry the policy's `RateLimit-Policy` and `RateLimit` fields:
    /// `always` (every response; the default), `near_limit` (when less than 10 % of the
    /// capacity (the burst for token bucket and GCRA) is left, and on denials) or `denied`
    /// (only on the 429/503 answer). Not for shadow policies, which send no fields.
    #[serde(default)]
    pub headers: Option<String>,
}

/// Which requests a policy applies to. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// HTTP methods (`GET`, `POST`, ...); any method when empty.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Paths under this prefix, segment-wise: `/api/v1` matches `/api/v1` and `/api/v1/x`,
    /// not `/api/v10`.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Exactly this route template, as registered (`/api/v1/links/{code}`).
    #[serde(default)]
    pub route: Option<String>,
}

/// How a plan tier changes the limits of `account` and `api_key` policies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    /// Multiplies `limit` and `burst` of every such policy (rounded, at least 1).
    #[serde(default)]
    pub multiplier: Option<f64>,
    /// Per-policy limits (policy name -> limit), taking precedence over `multiplier`; the
    /// burst scales by the same ratio.
    #[serde(default)]
    pub limits: BTreeMap<String, u64>,
}

/// An invalid rate-limit setting: where, which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate_limit {location}: {field}: {message}")]
pub struct RateLimitConfigError {
    /// `policy "api"`, `policies[2]`, `plan "pro"` or `trusted_proxies[0]`.
    pub location: String,
    /// The failing field.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl RateLimitConfigError {
    fn new(location: impl Into<String>, field: &str, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// What one counter of a policy is shared by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The client IP (IPv6 by subnet).
    Ip,
    /// The principal's account; anonymous callers by client IP.
    Account,
    /// The principal's API key, else its account, else the client IP.
    ApiKey,
    /// Method and route template: every client together.
    Route,
    /// One counter for everything the policy matches.
    Global,
}

impl KeyKind {
    /// The configuration spelling.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Ip => "ip",
            KeyKind::Account => "account",
            KeyKind::ApiKey => "api_key",
            KeyKind::Route => "route",
            KeyKind::Global => "global",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            KeyKind::Ip,
            KeyKind::Account,
            KeyKind::ApiKey,
            KeyKind::Route,
            KeyKind::Global,
        ]
        .into_iter()
        .find(|k| k.name() == s.trim())
    }

    /// Whether the key identifies a principal (so plans apply).
    pub(crate) fn uses_principal(self) -> bool {
        matches!(self, KeyKind::Account | KeyKind::ApiKey)
    }
}

/// Which responses carry a policy's `RateLimit-Policy` and `RateLimit` fields.
///
/// The draft lets a server send them on any response and warns about redirects: a low
/// remaining quota on a 3xx can make a client wait before following `Location` (so redirects
/// want `Denied`). Sending them costs about as much as the decision itself (two fields per
/// response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeadersMode {
    /// Every response of a matched request (the default).
    #[default]
    Always,
    /// Responses that leave less than 10 % of the capacity (the burst for token bucket and
    /// GCRA; the same line as the `near_limit` metric), and denials.
    NearLimit,
    /// Only the denial (429, or 503 when failing closed).
    Denied,
}

impl HeadersMode {
    /// The configuration spelling.
    pub fn name(self) -> &'static str {
        match self {
            HeadersMode::Always => "always",
            HeadersMode::NearLimit => "near_limit",
            HeadersMode::Denied => "denied",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            HeadersMode::Always,
            HeadersMode::NearLimit,
            HeadersMode::Denied,
        ]
        .into_iter()
        .find(|m| m.name() == s.trim())
    }

    /// Whether an allowed response carries the fields (`near`: less than 10 % left).
    pub(crate) fn on_allowed(self, near: bool) -> bool {
        match self {
            HeadersMode::Always => true,
            HeadersMode::NearLimit => near,
            HeadersMode::Denied => false,
        }
    }
}

/// Where a policy applies in the URL space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Any,
    Prefix(String),
    Route(String),
}

/// A rule as applied to one plan, with its `RateLimit-Policy` item.
#[derive(Debug, Clone)]
pub(crate) struct PlanRule {
    pub(crate) rule: Rule,
    /// `"name";q=100;w=60`
    pub(crate) policy_item: String,
    /// [`PlanRule::policy_item`] as a header value, cloned (not rebuilt) per response.
    pub(crate) policy_header: HeaderValue,
}

/// A validated policy.
#[derive(Debug)]
pub(crate) struct Policy {
    pub(crate) name: String,
    /// `http:<name>:`, the start of every limiter key of the policy.
    pub(crate) key_prefix: String,
    /// `http:<name>:ip:`, the start of the policy's keys by client IP.
    pub(crate) ip_key_prefix: String,
    /// `"<name>";r=`, the start of the policy's `RateLimit` item.
    pub(crate) remaining_prefix: String,
    pub(crate) methods: Vec<Method>,
    pub(crate) target: Target,
    pub(crate) key: KeyKind,
    pub(crate) shadow: bool,
    pub(crate) on_failure: OnStoreFailure,
    pub(crate) headers: HeadersMode,
    /// The rule for principals without a listed plan (and for non-principal keys).
    pub(crate) base: PlanRule,
    /// Rules of listed plans (`account` and `api_key` policies only).
    pub(crate) plans: HashMap<String, PlanRule>,
    pub(crate) metrics: OnceLock<PolicyMetrics>,
}

impl Policy {
    /// Whether the policy applies to `method` on `path`, whose matched route template is
    /// `route`.
    pub(crate) fn matches(&self, method: &Method, path: &str, route: Option<&str>) -> bool {
        if !self.methods.is_empty() && !self.methods.contains(method) {
            return false;
        }
        match &self.target {
            Target::Any => true,
            Target::Route(r) => route == Some(r.as_str()),
            Target::Prefix(p) => under_prefix(path, p),
        }
    }

    /// The rule for a principal on `plan` (`None`: no principal).
    pub(crate) fn rule_for(&self, plan: Option<&str>) -> &PlanRule {
        plan.and_then(|p| self.plans.get(p)).unwrap_or(&self.base)
    }
}

/// Segment-wise prefix: `/api` covers `/api` and `/api/x`, not `/apix`.
fn under_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Validated rate limits, ready for the request stack: what [`crate::HttpOptions::rate_limit`] holds.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct RateLimits {
    pub(crate) policies: Arc<[Policy]>,
    pub(crate) trusted: Arc<[Cidr]>,
    pub(crate) ipv6_subnet: u8,
    pub(crate) limiter: Option<Limiter>,
    /// Whether any policy is keyed by a principal (which may take a database read).
    pub(crate) any_principal: bool,
}

impl RateLimits {
    /// Validates `cfg`. Errors name the policy (or plan, or proxy entry) and the field.
    pub fn new(cfg: &RateLimitConfig) -> Result<Self, RateLimitConfigError> {
        let mut trusted = Vec::with_capacity(cfg.trusted_proxies.len());
        for (i, text) in cfg.trusted_proxies.iter().enumerate() {
            let cidr = text.parse::<Cidr>().map_err(|e| {
                RateLimitConfigError::new(format!("trusted_proxies[{i}]"), "trusted_proxies", e)
            })?;
            trusted.push(cidr);
        }
        if !(1..=128).contains(&cfg.ipv6_subnet) {
            return Err(RateLimitConfigError::new(
                "settings",
                "ipv6_subnet",
                format!(
                    "{} is not a prefix length; use 1..=128 (64 by default)",
                    cfg.ipv6_subnet
                ),
            ));
        }
        let mut names = HashSet::new();
        let mut policies = Vec::with_capacity(cfg.policies.len());
        for (i, p) in cfg.policies.iter().enumerate() {
            let policy = compile_policy(i, p, &cfg.plans)?;
            if !names.insert(policy.name.clone()) {
                return Err(RateLimitConfigError::new(
                    format!("policies[{i}]"),
                    "name",
                    format!(
                        "{:?} is used by an earlier policy; names must be unique",
                        p.name
                    ),
                ));
            }
            policies.push(policy);
        }
        for (plan, pc) in &cfg.plans {
            let location = format!("plan {plan:?}");
            if plan.trim().is_empty() {
                return Err(RateLimitConfigError::new(
                    location,
                    "name",
                    "a plan name must not be empty",
                ));
            }
            if let Some(m) = pc.multiplier
                && !(m.is_finite() && m > 0.0)
            {
                return Err(RateLimitConfigError::new(
                    location,
                    "multiplier",
                    format!("{m} is not a positive finite number"),
                ));
            }
            for (name, limit) in &pc.limits {
                let Some(p) = policies.iter().find(|p| &p.name == name) else {
                    return Err(RateLimitConfigError::new(
                        location,
                        &format!("limits.{name}"),
                        "no policy has this name",
                    ));
                };
                if !p.key.uses_principal() {
                    return Err(RateLimitConfigError::new(
                        location,
                        &format!("limits.{name}"),
                        format!(
                            "policy {name:?} is keyed by {}; plans apply to account and api_key policies only",
                            p.key.name()
                        ),
                    ));
                }
                if *limit == 0 {
                    return Err(RateLimitConfigError::new(
                        location,
                        &format!("limits.{name}"),
                        "a limit must be at least 1",
                    ));
                }
            }
        }
        Ok(Self {
            any_principal: policies.iter().any(|p| p.key.uses_principal()),
            policies: policies.into(),
            trusted: trusted.into(),
            ipv6_subnet: cfg.ipv6_subnet,
            limiter: None,
        })
    }

    /// Decides with `limiter` instead of the platform's (tests, or a dedicated Redis).
    pub fn with_limiter(mut self, limiter: Limiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The proxies whose `X-Forwarded-For` is believed (`trusted_proxies`): other systems
    /// that need the client IP (identity's login limits) use the same list.
    pub fn trusted_proxies(&self) -> &[Cidr] {
        &self.trusted
    }

    /// Whether there is no policy (the stack then checks nothing).
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The policy names, in checking order.
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.name.as_str())
    }

    /// The request stack's rate limiting, deciding with the limiter set by
    /// [`with_limiter`](Self::with_limiter) or else with `limiter` (the platform's).
    pub(crate) fn limiting(&self, limiter: Limiter) -> super::RateLimiting {
        super::RateLimiting::new(self.clone(), self.limiter.clone().unwrap_or(limiter))
    }
}

fn is_valid_policy_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn compile_policy(
    index: usize,
    p: &PolicyConfig,
    plans: &BTreeMap<String, PlanConfig>,
) -> Result<Policy, RateLimitConfigError> {
    if !is_valid_policy_name(&p.name) {
        return Err(RateLimitConfigError::new(
            format!("policies[{index}]"),
            "name",
            format!(
                "{:?} is not a policy name; use 1-64 characters from A-Z a-z 0-9 _ - .",
                p.name
            ),
        ));
    }
    let at = format!("policy {:?}", p.name);
    let err = |field: &str, message: String| RateLimitConfigError::new(at.clone(), field, message);

    let mut methods = Vec::with_capacity(p.matches.methods.len());
    for m in &p.matches.methods {
        let upper = m.trim().to_ascii_uppercase();
        let method = Method::from_bytes(upper.as_bytes())
            .map_err(|_| err("match.methods", format!("{m:?} is not an HTTP method")))?;
        methods.push(method);
    }
    let target = match (&p.matches.path_prefix, &p.matches.route) {
        (Some(_), Some(_)) => {
            return Err(err(
                "match",
                "set path_prefix or route, not both".to_owned(),
            ));
        }
        (Some(prefix), None) => {
            if !prefix.starts_with('/') {
                return Err(err(
                    "match.path_prefix",
                    format!("{prefix:?} must start with /"),
                ));
            }
            Target::Prefix(prefix.clone())
        }
        (None, Some(route)) => {
            if !route.starts_with('/') {
                return Err(err("match.route", format!("{route:?} must start with /")));
            }
            Target::Route(route.clone())
        }
        (None, None) => Target::Any,
    };
    let key = KeyKind::parse(&p.key).ok_or_else(|| {
        err(
            "key",
            format!(
                "{:?} is not a key; expected one of ip, account, api_key, route, global",
                p.key
            ),
        )
    })?;
    let algorithm = match &p.algorithm {
        None => Algorithm::Gcra,
        Some(a) => a
            .parse::<Algorithm>()
            .map_err(|e| err("algorithm", e.to_string()))?,
    };
    if p.limit == 0 {
        return Err(err("limit", "must be at least 1".to_owned()));
    }
    let period = parse_period(&p.period).map_err(|m| err("period", m))?;
    if p.burst.is_some() && !matches!(algorithm, Algorithm::TokenBucket | Algorithm::Gcra) {
        return Err(err(
            "burst",
            format!("applies to token-bucket and gcra only, not {algorithm}"),
        ));
    }
    if p.burst == Some(0) {
        return Err(err("burst", "must be at least 1".to_owned()));
    }
    let on_failure = match &p.on_store_failure {
        None => OnStoreFailure::Local,
        Some(m) => m
            .parse::<OnStoreFailure>()
            .map_err(|e| err("on_store_failure", e.to_string()))?,
    };
    let headers = match &p.headers {
        None => HeadersMode::Always,
        Some(h) => HeadersMode::parse(h).ok_or_else(|| {
            err(
                "headers",
                format!("{h:?} is not a headers mode; expected one of always, near_limit, denied"),
            )
        })?,
    };
    if p.shadow && p.headers.is_some() {
        return Err(err(
            "headers",
            "a shadow policy sends no RateLimit fields; remove headers or shadow".to_owned(),
        ));
    }
    let burst = p.burst.unwrap_or(p.limit);
    let plan_rule = |limit: u64, burst: u64| -> Result<PlanRule, RateLimitConfigError> {
        let quota = Quota::new(limit, period)
            .and_then(|q| q.with_burst(burst))
            .map_err(|e| err("limit", e.to_string()))?;
        let item = policy_item(&p.name, limit, period);
        let policy_header = HeaderValue::from_str(&item)
            .map_err(|_| err("name", "must be printable ASCII".to_owned()))?;
        Ok(PlanRule {
            rule: Rule::new(algorithm, quota),
            policy_item: item,
            policy_header,
        })
    };
    let base = plan_rule(p.limit, burst)?;
    let mut plan_rules = HashMap::new();
    if key.uses_principal() {
        for (plan, pc) in plans {
            let (limit, burst) = if let Some(&limit) = pc.limits.get(&p.name) {
                (limit.max(1), scale(burst, limit as f64 / p.limit as f64))
            } else if let Some(m) = pc.multiplier {
                (scale(p.limit, m), scale(burst, m))
            } else {
                continue;
            };
            plan_rules.insert(plan.clone(), plan_rule(limit, burst)?);
        }
    }
    Ok(Policy {
        name: p.name.clone(),
        key_prefix: format!("http:{}:", p.name),
        ip_key_prefix: format!("http:{}:ip:", p.name),
        remaining_prefix: format!("\"{}\";r=", p.name),
        methods,
        target,
        key,
        shadow: p.shadow,
        on_failure,
        headers,
        base,
        plans: plan_rules,
        metrics: OnceLock::new(),
    })
}

/// `n * factor`, rounded, at least 1 (a non-finite or non-positive factor is rejected earlier).
fn scale(n: u64, factor: f64) -> u64 {
    let scaled = (n as f64 * factor).round();
    if scaled >= u64::MAX as f64 {
        u64::MAX
    } else {
        (scaled as u64).max(1)
    }
}

/// The `RateLimit-Policy` item of a policy: `"name";q=<limit>;w=<period in whole seconds,
/// rounded up>` (the draft has no sub-second windows).
fn policy_item(name: &str, limit: u64, period: Duration) -> String {
    let w = period.as_secs() + u64::from(period.subsec_nanos() > 0);
    let mut s = String::with_capacity(name.len() + 24);
    let _ = write!(s, "\"{name}\";q={limit};w={}", w.max(1));
    s
}

/// Parses a period in praxis's one duration grammar (`500ms`, `1m`, `1h30m`, `1d`); it must be
/// positive.
pub(crate) fn parse_period(text: &str) -> Result<Duration, String> {
    match praxis_kit::text::parse_duration(text) {
        Ok(period) if !period.is_zero() => Ok(period),
        _ => Err(format!(
            "{text:?} is not a period; write a positive duration with a unit ms, s, m, h or d \
             (e.g. 1s, 1m, 1h30m)"
        )),
    }
}

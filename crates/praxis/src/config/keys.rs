//! The table of configuration keys: one row per key, with its default and documentation. The
//! CLI help, the environment variable names, `praxis config` and the unknown-key check all read
//! this table, so adding a key starts here.

/// What a key is when nothing sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// A fixed default, written as it would be in `praxis.toml`.
    Value(&'static str),
    /// Computed from other keys; the text says from what.
    Derived(&'static str),
    /// Unset unless configured; the text says what unset means.
    Unset(&'static str),
}

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Name in `praxis.toml`; the environment variable is `PRAXIS_<NAME>`, the flag `--<name>`.
    pub name: &'static str,
    /// What the key is when nothing sets it.
    pub default: Default,
    /// Secrets are never printed or logged; they are not accepted in `praxis.toml` nor as a flag
    /// (command lines are visible to every local user), only from the environment.
    pub secret: bool,
    /// One-line description (shown by `praxis config --help` and in the example file).
    pub doc: &'static str,
}

impl KeySpec {
    /// The environment variable that sets this key (`PRAXIS_LISTEN`).
    pub fn env_var(&self) -> String {
        format!("PRAXIS_{}", self.name.to_ascii_uppercase())
    }

    /// The command-line flag that sets this key (`--data-dir`), `None` for secrets.
    pub fn flag(&self) -> Option<String> {
        (!self.secret).then(|| format!("--{}", self.name.replace('_', "-")))
    }
}

/// Every key, in the order `praxis config` prints them.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "listen",
        default: Default::Value("127.0.0.1:8080"),
        secret: false,
        doc: "address the HTTP server binds (HOST:PORT; port 0 picks a free one)",
    },
    KeySpec {
        name: "data_dir",
        default: Default::Value("./data"),
        secret: false,
        doc: "folder for the embedded SQLite database, the generated admin key and local files",
    },
    KeySpec {
        name: "database_url",
        default: Default::Derived("sqlite file <data_dir>/praxis.db"),
        secret: false,
        doc: "sqlite:///ABS/PATH.db, sqlite://REL/PATH.db or postgres://USER@HOST:PORT/DB",
    },
    KeySpec {
        name: "redis_url",
        default: Default::Unset("in-process cache and broadcast"),
        secret: false,
        doc: "redis://HOST:PORT for the shared cache (L2) and cross-process invalidation",
    },
    KeySpec {
        name: "nats_url",
        default: Default::Unset("embedded bus: outbox table dispatched in-process"),
        secret: false,
        doc: "nats://HOST:PORT of a NATS server with JetStream, for the event bus",
    },
    KeySpec {
        name: "admin_key",
        default: Default::Unset("embedded mode generates one into <data_dir>/admin.key"),
        secret: true,
        doc: "bearer token for admin writes (secret: environment only, at least 16 characters)",
    },
    KeySpec {
        name: "admin_key_file",
        default: Default::Unset("see admin_key"),
        secret: false,
        doc: "file holding the admin key (trailing whitespace ignored); excludes admin_key",
    },
    KeySpec {
        name: "jwt_secret",
        default: Default::Unset("embedded mode generates one into <data_dir>/jwt.secret"),
        secret: true,
        doc: "HS256 secret signing access tokens (secret: environment only, at least 32 characters)",
    },
    KeySpec {
        name: "jwt_secret_file",
        default: Default::Unset("see jwt_secret"),
        secret: false,
        doc: "file holding the JWT secret (trailing whitespace ignored); excludes jwt_secret",
    },
    KeySpec {
        name: "jwt_issuer",
        default: Default::Value("praxis"),
        secret: false,
        doc: "iss claim of the access tokens praxis issues and accepts",
    },
    KeySpec {
        name: "jwt_audience",
        default: Default::Value("praxis"),
        secret: false,
        doc: "aud claim of the access tokens praxis issues and accepts",
    },
    KeySpec {
        name: "access_token_ttl",
        default: Default::Value("15m"),
        secret: false,
        doc: "lifetime of access tokens (a stolen one works this long)",
    },
    KeySpec {
        name: "refresh_token_ttl",
        default: Default::Value("720h"),
        secret: false,
        doc: "lifetime of a login's refresh tokens (rotation does not extend it)",
    },
    KeySpec {
        name: "jwks_url",
        default: Default::Unset("only praxis's own HS256 tokens are accepted"),
        secret: false,
        doc: "JWKS URL of an external identity provider whose RS256 tokens are accepted",
    },
    KeySpec {
        name: "jwks_issuer",
        default: Default::Unset("required with jwks_url"),
        secret: false,
        doc: "iss claim of the external identity provider's tokens",
    },
    KeySpec {
        name: "jwks_audience",
        default: Default::Derived("jwt_audience"),
        secret: false,
        doc: "aud claim the external identity provider's tokens must carry",
    },
    KeySpec {
        name: "login_limit_account",
        default: Default::Value("10/15m"),
        secret: false,
        doc: "login attempts allowed per account, COUNT/DURATION (429 beyond it)",
    },
    KeySpec {
        name: "login_limit_ip",
        default: Default::Value("50/15m"),
        secret: false,
        doc: "login attempts allowed per client IP, COUNT/DURATION (429 beyond it)",
    },
    KeySpec {
        name: "rate_limit_file",
        default: Default::Unset("the [rate_limit] table of the config file, if any"),
        secret: false,
        doc: "TOML file holding the [rate_limit] table of HTTP rate-limit policies; excludes the table in the config file",
    },
    KeySpec {
        name: "ratelimit_limits",
        default: Default::Unset("the decision service answers OK to every descriptor"),
        secret: false,
        doc: "limits of the rate-limit decision service: a domain file (TOML in envoyproxy/ratelimit's structure) or a folder of them, reloaded when changed",
    },
    KeySpec {
        name: "ratelimit_grpc_listen",
        default: Default::Unset("no gRPC server"),
        secret: false,
        doc: "HOST:PORT of the decision service's Envoy RateLimitService v3 gRPC API (port 0 picks a free one)",
    },
    KeySpec {
        name: "notify_smtp_url",
        default: Default::Unset("emails are written as .eml files under <data_dir>/notify/outbox"),
        secret: false,
        doc: "SMTP relay of the notify system: smtp://USER:PASSWORD@HOST:587 (STARTTLS), smtps://HOST:465 (implicit TLS) or smtp://HOST:25?tls=none",
    },
    KeySpec {
        name: "notify_smtp_ca_file",
        default: Default::Unset("the relay's certificate must chain to the public web PKI roots"),
        secret: false,
        doc: "PEM file of CA certificates trusted for the SMTP relay's certificate, besides the public roots (a private relay); needs TLS",
    },
    KeySpec {
        name: "notify_email_from",
        default: Default::Value("praxis <notify@localhost>"),
        secret: false,
        doc: "sender of notification emails: addr@example.com or Name <addr@example.com>",
    },
    KeySpec {
        name: "notify_webhook_secret",
        default: Default::Unset("generated into <data_dir>/notify-webhook.secret"),
        secret: true,
        doc: "Standard Webhooks signing secret of webhooks and gateways, whsec_ + base64 of 24 to 64 bytes (secret: environment only)",
    },
    KeySpec {
        name: "notify_webhook_secret_file",
        default: Default::Unset("see notify_webhook_secret"),
        secret: false,
        doc: "file holding the webhook signing secret (whsec_...); excludes notify_webhook_secret",
    },
    KeySpec {
        name: "notify_sms_url",
        default: Default::Unset("the sms channel is off"),
        secret: false,
        doc: "URL of the SMS gateway: SMS are signed JSON POSTs {to, title, text, data} to it",
    },
    KeySpec {
        name: "notify_push_url",
        default: Default::Unset("the push channel is off"),
        secret: false,
        doc: "URL of the push gateway: pushes are signed JSON POSTs {to, title, text, data} to it",
    },
    KeySpec {
        name: "notify_concurrency",
        default: Default::Value("16"),
        secret: false,
        doc: "sends in flight at once per channel and process: N, or N,channel=N (16,webhook=64)",
    },
    KeySpec {
        name: "notify_max_attempts",
        default: Default::Value("8"),
        secret: false,
        doc: "attempts per delivery before it becomes a dead letter: N, or N,channel=N (8,email=5)",
    },
    KeySpec {
        name: "notify_retry_base",
        default: Default::Value("1s"),
        secret: false,
        doc: "first retry delay ceiling; it doubles per attempt (full jitter) up to notify_retry_max",
    },
    KeySpec {
        name: "notify_retry_max",
        default: Default::Value("10m"),
        secret: false,
        doc: "largest retry delay ceiling (a receiver's longer Retry-After is honoured, up to 24h)",
    },
    KeySpec {
        name: "notify_lease",
        default: Default::Value("60s"),
        secret: false,
        doc: "how long a claimed delivery belongs to its process; after a crash it is sent again once this passed",
    },
    KeySpec {
        name: "notify_provider_timeout",
        default: Default::Value("10s"),
        secret: false,
        doc: "timeout of one webhook or gateway request (and of each SMTP command); below notify_lease",
    },
    KeySpec {
        name: "notify_rate_limits",
        default: Default::Value(""),
        secret: false,
        doc: "per-provider limits, PROVIDER=COUNT/DURATION,... (smtp=10/1s,webhook=100/1s; webhooks per receiver); empty: none",
    },
    KeySpec {
        name: "notify_breaker_failures",
        default: Default::Value("5"),
        secret: false,
        doc: "consecutive transient failures that open a provider's circuit breaker (per webhook receiver)",
    },
    KeySpec {
        name: "notify_breaker_open",
        default: Default::Value("5s"),
        secret: false,
        doc: "first open period of a breaker: then one probe; it doubles on each failed probe",
    },
    KeySpec {
        name: "notify_breaker_max_open",
        default: Default::Value("5m"),
        secret: false,
        doc: "longest open period of a breaker",
    },
    KeySpec {
        name: "notify_webhook_allow_private",
        default: Default::Value("false"),
        secret: false,
        doc: "let webhooks reach any address: turns off the SSRF guard that refuses loopback, private, link-local (cloud metadata), CGNAT and other reserved addresses",
    },
    KeySpec {
        name: "notify_webhook_allow_cidrs",
        default: Default::Value(""),
        secret: false,
        doc: "address ranges webhooks may reach although the SSRF guard refuses them, comma-separated CIDRs (10.20.0.0/16,fd00::/8); empty: none",
    },
    KeySpec {
        name: "notify_retention",
        default: Default::Value("720h"),
        secret: false,
        doc: "how long messages whose deliveries are all final are kept (with deliveries and attempts; inbox rows stay); 0 keeps them forever",
    },
    KeySpec {
        name: "notify_retention_interval",
        default: Default::Value("1h"),
        secret: false,
        doc: "how often old messages are pruned (see notify_retention)",
    },
    KeySpec {
        name: "feed_celebrity_threshold",
        default: Default::Value("10000"),
        secret: false,
        doc: "authors with at least this many followers make pull posts (merged into timelines at read)",
    },
    KeySpec {
        name: "feed_timeline_cap",
        default: Default::Value("800"),
        secret: false,
        doc: "posts kept per home timeline in the timeline store; older pages come from the database",
    },
    KeySpec {
        name: "feed_active_window",
        default: Default::Value("168h"),
        secret: false,
        doc: "users who read their home timeline within this window get fan-out; idle timelines expire",
    },
    KeySpec {
        name: "feed_fanout_batch",
        default: Default::Value("500"),
        secret: false,
        doc: "followers written per pipelined round trip of the fan-out",
    },
    KeySpec {
        name: "base_url",
        default: Default::Derived("http://<bound listen address>"),
        secret: false,
        doc: "public base URL of this deployment: short links (https://sho.rt) and the unsubscribe links of notification emails",
    },
    KeySpec {
        name: "anonymous_create",
        default: Default::Value("false"),
        secret: false,
        doc: "let anonymous callers (no credentials) create links, owned by \"anonymous\"",
    },
    KeySpec {
        name: "default_redirect",
        default: Default::Value("301"),
        secret: false,
        doc: "HTTP status of redirects when a link does not choose one: 301, 302 or 307",
    },
    KeySpec {
        name: "forward_query",
        default: Default::Value("false"),
        secret: false,
        doc: "append the short link's query string to the target URL",
    },
    KeySpec {
        name: "cache_capacity",
        default: Default::Value("100000"),
        secret: false,
        doc: "most links kept in the shortener's in-process redirect cache (L1)",
    },
    KeySpec {
        name: "cache_ttl",
        default: Default::Value("10m"),
        secret: false,
        doc: "how long a cached link is served before it is reloaded (edits invalidate at once)",
    },
    KeySpec {
        name: "visit_stats",
        default: Default::Value("true"),
        secret: false,
        doc: "count visits per link for the stats API (false: redirect without recording them)",
    },
    KeySpec {
        name: "body_limit",
        default: Default::Value("2MiB"),
        secret: false,
        doc: "largest accepted request body (bytes, or with a unit: 512KiB, 2MiB)",
    },
    KeySpec {
        name: "request_timeout",
        default: Default::Value("10s"),
        secret: false,
        doc: "longest a request may run before it is answered 503 (500ms, 10s, 1m)",
    },
    KeySpec {
        name: "shutdown_grace",
        default: Default::Value("10s"),
        secret: false,
        doc: "on SIGTERM/SIGINT, how long in-flight requests and bus flushes may take",
    },
    KeySpec {
        name: "log_format",
        default: Default::Value("json"),
        secret: false,
        doc: "json (one object per line) or pretty (for a terminal)",
    },
    KeySpec {
        name: "log_level",
        default: Default::Value("info"),
        secret: false,
        doc: "tracing filter: a level (info) or directives (info,praxis_shortener=debug)",
    },
    KeySpec {
        name: "access_log",
        default: Default::Value("true"),
        secret: false,
        doc: "log one line per request (target \"access\")",
    },
    KeySpec {
        name: "metrics",
        default: Default::Value("true"),
        secret: false,
        doc: "record Prometheus metrics and serve them at /metrics",
    },
    KeySpec {
        name: "prefix",
        default: Default::Value("praxis"),
        secret: false,
        doc: "prefix of Redis keys and NATS streams/subjects, so deployments can share servers",
    },
    KeySpec {
        name: "only",
        default: Default::Value("all"),
        secret: false,
        doc: "systems to run, comma-separated (all = every system)",
    },
];

/// The row of `name`, if it is a key.
pub fn find(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name == name)
}

/// Every key name, comma-separated (for error messages).
pub fn names() -> String {
    KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_env_vars_and_flags() {
        let data_dir = find("data_dir").expect("data_dir is a key");
        assert_eq!(data_dir.env_var(), "PRAXIS_DATA_DIR");
        assert_eq!(data_dir.flag().as_deref(), Some("--data-dir"));
        let admin_key = find("admin_key").expect("admin_key is a key");
        assert_eq!(admin_key.flag(), None);
        assert!(find("nope").is_none());
    }

    #[test]
    fn key_names_are_unique_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for key in KEYS {
            assert!(seen.insert(key.name), "duplicate key {}", key.name);
            assert!(
                key.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                key.name
            );
        }
    }
}

//! The table of configuration keys: the server's own keys (one row each here) and every
//! system's section (its keys, defaults and docs come from the system itself, see
//! [`praxis_http::system::System`]). The CLI flags, the environment variable names,
//! `praxis config`, the example-file check and the unknown-key check all read this table.
//!
//! A server key `listen` is `listen` in `praxis.toml`, `PRAXIS_LISTEN` and `--listen`. A
//! system key `celebrity_threshold` of `feed` is `[feed] celebrity_threshold` in the file, or
//! the flat `feed_celebrity_threshold` (file, `PRAXIS_FEED_CELEBRITY_THRESHOLD`,
//! `--feed-celebrity-threshold`), or its legacy name when it had one before sections
//! (`cache_capacity` for the shortener's).

use praxis_http::system::Plugin;

/// What a key is when nothing sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Default {
    /// A fixed default, written as it would be in `praxis.toml`.
    Value(String),
    /// Computed from other keys; the text says from what.
    Derived(&'static str),
    /// Unset unless configured; the text says what unset means.
    Unset(&'static str),
}

/// One configuration key.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// The system whose section holds the key; `None` for the server's own keys.
    pub section: Option<&'static str>,
    /// Name in its section (or at the top of `praxis.toml` for server keys).
    pub name: &'static str,
    /// The flat name it had before sections, when not `<section>_<name>`.
    pub legacy: Option<&'static str>,
    /// What the key is when nothing sets it.
    pub default: Default,
    /// Secrets are never printed or logged; they are not accepted in `praxis.toml` nor as a
    /// flag (command lines are visible to every local user), only from the environment.
    pub secret: bool,
    /// One-line description (shown by `--help`, `praxis config` and in the example file).
    pub doc: &'static str,
}

impl KeySpec {
    /// Its identity: `listen`, or `feed.celebrity_threshold`.
    pub fn id(&self) -> String {
        match self.section {
            Some(section) => format!("{section}.{}", self.name),
            None => self.name.to_owned(),
        }
    }

    /// Its flat name: `listen`, or `feed_celebrity_threshold`.
    pub fn flat(&self) -> String {
        match self.section {
            Some(section) => format!("{section}_{}", self.name),
            None => self.name.to_owned(),
        }
    }

    /// Every flat name it is read under: the legacy one first, then [`KeySpec::flat`].
    pub fn flat_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.legacy.map(str::to_owned).into_iter().collect();
        let flat = self.flat();
        if !names.contains(&flat) {
            names.push(flat);
        }
        names
    }

    /// The environment variables that set it (`PRAXIS_LISTEN`), legacy first: when both are
    /// set, the section's own name wins.
    pub fn env_vars(&self) -> Vec<String> {
        self.flat_names()
            .iter()
            .map(|n| format!("PRAXIS_{}", n.to_ascii_uppercase()))
            .collect()
    }

    /// The environment variable named in docs and messages (the flat name's).
    pub fn env_var(&self) -> String {
        format!("PRAXIS_{}", self.flat().to_ascii_uppercase())
    }

    /// The command-line flags that set it (`--data-dir`), none for secrets.
    pub fn flags(&self) -> Vec<String> {
        if self.secret {
            return Vec::new();
        }
        self.flat_names()
            .iter()
            .map(|n| format!("--{}", n.replace('_', "-")))
            .collect()
    }
}

/// The server's own keys, in the order `praxis config` prints them.
fn server_keys() -> Vec<KeySpec> {
    let key = |name, default, secret, doc| KeySpec {
        section: None,
        name,
        legacy: None,
        default,
        secret,
        doc,
    };
    vec![
        key(
            "listen",
            Default::Value(String::from("127.0.0.1:8080")),
            false,
            "address the HTTP server binds (HOST:PORT; port 0 picks a free one)",
        ),
        key(
            "data_dir",
            Default::Value(String::from("./data")),
            false,
            "folder for the embedded SQLite database, the generated admin key and local files",
        ),
        key(
            "database_url",
            Default::Derived("sqlite file <data_dir>/praxis.db"),
            false,
            "sqlite:///ABS/PATH.db, sqlite://REL/PATH.db or postgres://USER@HOST:PORT/DB",
        ),
        key(
            "redis_url",
            Default::Unset("in-process cache and broadcast"),
            false,
            "redis://HOST:PORT (rediss:// for TLS) for the shared cache (L2) and cross-process invalidation",
        ),
        key(
            "nats_url",
            Default::Unset("embedded bus: outbox table dispatched in-process"),
            false,
            "nats://HOST:PORT (tls:// for TLS) of a NATS server with JetStream, for the event bus",
        ),
        key(
            "blobs_url",
            Default::Unset("local files under <data_dir>/blobs"),
            false,
            "where files are stored: s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT&region=..&part_size=BYTES (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or file:///ABS/DIR",
        ),
        key(
            "tls_ca_file",
            Default::Unset("TLS connections trust the OS store alone"),
            false,
            "PEM file of CA certificates that every outgoing TLS connection (PostgreSQL, Redis, NATS, SMTP, webhooks, JWKS) trusts in addition to the OS store",
        ),
        key(
            "admin_key",
            Default::Unset("embedded mode generates one into <data_dir>/admin.key"),
            true,
            "bearer token for admin writes (secret: environment only, at least 16 characters)",
        ),
        key(
            "admin_key_file",
            Default::Unset("see admin_key"),
            false,
            "file holding the admin key (trailing whitespace ignored); excludes admin_key",
        ),
        key(
            "jwt_secret",
            Default::Unset("embedded mode generates one into <data_dir>/jwt.secret"),
            true,
            "HS256 secret signing access tokens (secret: environment only, at least 32 characters)",
        ),
        key(
            "jwt_secret_file",
            Default::Unset("see jwt_secret"),
            false,
            "file holding the JWT secret (trailing whitespace ignored); excludes jwt_secret",
        ),
        key(
            "rate_limit_file",
            Default::Unset("the [rate_limit] table of the config file, if any"),
            false,
            "TOML file holding the [rate_limit] table of HTTP rate-limit policies; excludes the table in the config file",
        ),
        key(
            "base_url",
            Default::Derived("http://<bound listen address>"),
            false,
            "public base URL of this deployment: short links (https://sho.rt) and the unsubscribe links of notification emails",
        ),
        key(
            "body_limit",
            Default::Value(String::from("2MiB")),
            false,
            "largest accepted request body (bytes, or with a unit: 512KiB, 2MiB)",
        ),
        key(
            "request_timeout",
            Default::Value(String::from("10s")),
            false,
            "longest a request may run before it is answered 503 (500ms, 10s, 1m)",
        ),
        key(
            "shutdown_grace",
            Default::Value(String::from("10s")),
            false,
            "on SIGTERM/SIGINT, how long in-flight requests and bus flushes may take",
        ),
        key(
            "log_format",
            Default::Value(String::from("auto")),
            false,
            "auto (pretty on a terminal, JSON otherwise), json (one object per line) or pretty",
        ),
        key(
            "log_level",
            Default::Value(String::from("info")),
            false,
            "tracing filter: a level (info) or directives (info,praxis_shortener=debug); RUST_LOG is used when this is not set",
        ),
        key(
            "access_log",
            Default::Value(String::from("true")),
            false,
            "log one line per request (target \"access\")",
        ),
        key(
            "metrics",
            Default::Value(String::from("true")),
            false,
            "record Prometheus metrics and serve them at /metrics",
        ),
        key(
            "admin_listen",
            Default::Unset("/metrics is served on listen"),
            false,
            "HOST:PORT of an admin listener serving /metrics, /healthz and /readyz; /metrics then leaves the public listener",
        ),
        key(
            "otel_endpoint",
            Default::Unset("spans are not exported"),
            false,
            "base URL of an OTLP/HTTP collector (e.g. http://otel-collector:4318); spans of requests, bus events and deliveries go to its /v1/traces",
        ),
        key(
            "prefix",
            Default::Value(String::from("praxis")),
            false,
            "prefix of Redis keys and NATS streams/subjects, so deployments can share servers",
        ),
        key(
            "only",
            Default::Value(String::from("all")),
            false,
            "systems to run, comma-separated (all = every system)",
        ),
    ]
}

/// Every key: the server's, then each system's section in registry order (its keys, then its
/// secrets and their `_file` keys).
#[derive(Debug, Clone)]
pub struct KeyTable {
    keys: Vec<KeySpec>,
}

impl KeyTable {
    /// The table of the server's keys and of `systems`.
    pub fn new(systems: &[&'static dyn Plugin]) -> Self {
        let mut keys = server_keys();
        for system in systems {
            let section = system.name();
            let defaults = system.defaults();
            for key in system.keys() {
                let default = defaults
                    .iter()
                    .find(|(name, _)| name == key.name)
                    .and_then(|(_, value)| text_of(value))
                    .map_or(Default::Unset(key.unset.unwrap_or("unset")), Default::Value);
                keys.push(KeySpec {
                    section: Some(section),
                    name: key.name,
                    legacy: key.legacy,
                    default,
                    secret: false,
                    doc: key.doc,
                });
            }
            for secret in system.secrets() {
                keys.push(KeySpec {
                    section: Some(section),
                    name: secret.name,
                    legacy: None,
                    default: Default::Unset("generated into <data_dir> on first start"),
                    secret: true,
                    doc: secret.doc,
                });
                keys.push(KeySpec {
                    section: Some(section),
                    name: secret.file_key,
                    legacy: None,
                    default: Default::Unset("see the secret"),
                    secret: false,
                    doc: "file holding the secret (trailing whitespace ignored); excludes the secret itself",
                });
            }
        }
        Self { keys }
    }

    /// Every key, in order.
    pub fn iter(&self) -> impl Iterator<Item = &KeySpec> {
        self.keys.iter()
    }

    /// The key with this identity (`listen`, `feed.celebrity_threshold`).
    pub fn get(&self, id: &str) -> Option<&KeySpec> {
        self.keys.iter().find(|k| k.id() == id)
    }

    /// The key read under this flat name (`feed_celebrity_threshold`, `cache_capacity`).
    pub fn by_flat_name(&self, name: &str) -> Option<&KeySpec> {
        self.keys
            .iter()
            .find(|k| k.flat_names().iter().any(|n| n == name))
    }

    /// The key `name` of section `section`.
    pub fn in_section(&self, section: &str, name: &str) -> Option<&KeySpec> {
        self.keys
            .iter()
            .find(|k| k.section == Some(section) && k.name == name)
    }

    /// Whether `name` is a system's section.
    pub fn is_section(&self, name: &str) -> bool {
        self.keys.iter().any(|k| k.section == Some(name))
    }

    /// Every server key and flat name, comma-separated (for error messages).
    pub fn names(&self) -> String {
        self.keys
            .iter()
            .filter(|k| k.section.is_none())
            .map(|k| k.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The text a value is read from (`None`: unset): strings as they are, numbers and booleans
/// written out, lists comma-separated.
pub fn text_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => Some(
            items
                .iter()
                .filter_map(text_of)
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_env_vars_and_flags() {
        let table = KeyTable::new(crate::systems::SYSTEMS);
        let data_dir = table.get("data_dir").expect("data_dir is a key");
        assert_eq!(data_dir.env_vars(), ["PRAXIS_DATA_DIR"]);
        assert_eq!(data_dir.flags(), ["--data-dir"]);
        let admin_key = table.get("admin_key").expect("admin_key is a key");
        assert!(admin_key.flags().is_empty());
        let cap = table
            .get("shortener.cache_capacity")
            .expect("a section key");
        assert_eq!(
            cap.env_vars(),
            ["PRAXIS_CACHE_CAPACITY", "PRAXIS_SHORTENER_CACHE_CAPACITY"]
        );
        assert_eq!(
            cap.flags(),
            ["--cache-capacity", "--shortener-cache-capacity"]
        );
        let threshold = table
            .get("feed.celebrity_threshold")
            .expect("a section key");
        assert_eq!(threshold.env_vars(), ["PRAXIS_FEED_CELEBRITY_THRESHOLD"]);
        assert_eq!(
            table
                .by_flat_name("notify_webhook_secret_file")
                .map(KeySpec::id),
            Some("notify.webhook_secret_file".to_owned())
        );
        assert!(table.get("nope").is_none());
    }

    #[test]
    fn flat_names_are_unique_and_lowercase() {
        let table = KeyTable::new(crate::systems::SYSTEMS);
        let mut seen = std::collections::HashSet::new();
        for key in table.iter() {
            for name in key.flat_names() {
                assert!(seen.insert(name.clone()), "two keys read as {name}");
                assert!(
                    name.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn every_field_of_every_section_is_documented() {
        for system in crate::systems::SYSTEMS {
            let mut fields: Vec<String> = system.defaults().into_iter().map(|(k, _)| k).collect();
            let mut documented: Vec<String> =
                system.keys().iter().map(|k| k.name.to_owned()).collect();
            fields.sort();
            documented.sort();
            assert_eq!(fields, documented, "the keys of [{}]", system.name());
        }
    }
}

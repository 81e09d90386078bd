//! Configuration of the binary: defaults < `praxis.toml` < `PRAXIS_*` environment < flags,
//! parsed into one typed [`Config`] at start. A bad value stops the start with a message that
//! names the key, where the value came from and what was expected.
//!
//! The environment is read through [`EnvSource`], so tests hand in a map instead of touching the
//! process environment.

pub mod feed;
pub mod identity;
pub mod keys;
pub mod layers;
pub mod notify;
pub mod rate_limit;
pub mod render;
pub mod source;
pub mod units;
pub mod values;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use layers::Origin;
pub use source::{EnvSource, ProcessEnv};
pub use values::{DatabaseKind, LogFormat};

use keys::Default as KeyDefault;
use layers::Layers;

/// Shortest admin key accepted (characters).
pub const MIN_ADMIN_KEY_LEN: usize = 16;

/// One problem with one configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key as its source names it: `PRAXIS_LISTEN`, `--listen`, `listen in /etc/praxis.toml`.
    pub locator: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error about the value found at `locator`.
    pub fn new(locator: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            locator: locator.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.locator, self.message)
    }
}

/// Every problem found while loading the configuration, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A secret value: never printed by `Debug`, only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// How the process runs, as decided by the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// SQLite, in-process cache and bus: one process, nothing else to run.
    Embedded,
    /// PostgreSQL and/or Redis and/or NATS: several processes may share them.
    Scaled,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Embedded => "embedded",
            Mode::Scaled => "scaled",
        })
    }
}

/// The effective, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Folder for the SQLite file, the generated admin key and local files.
    pub data_dir: PathBuf,
    /// Database URL (SQLite file or PostgreSQL).
    pub database_url: String,
    /// Which engine `database_url` names.
    pub database: DatabaseKind,
    /// Redis URL; `None` = in-process cache and broadcast.
    pub redis_url: Option<String>,
    /// NATS URL; `None` = embedded bus.
    pub nats_url: Option<String>,
    /// The configured admin key (from `PRAXIS_ADMIN_KEY` or `admin_key_file`), if any.
    pub admin_key: Option<Secret>,
    /// The file the admin key was read from, if configured that way.
    pub admin_key_file: Option<PathBuf>,
    /// Public base URL of this deployment (short links, the unsubscribe links of notification
    /// emails); `None` = `http://<bound address>`.
    pub base_url: Option<url::Url>,
    /// Whether callers without the admin key may create links.
    pub anonymous_create: bool,
    /// Redirect status used when a link does not choose one.
    pub default_redirect: u16,
    /// Whether the short link's query string is appended to the target.
    pub forward_query: bool,
    /// Most links in the shortener's in-process redirect cache (L1).
    pub cache_capacity: u64,
    /// How long a cached link is served before it is reloaded.
    pub cache_ttl: Duration,
    /// Whether the shortener records visits for its statistics.
    pub visit_stats: bool,
    /// Largest accepted request body in bytes.
    pub body_limit: usize,
    /// Longest a request may run.
    pub request_timeout: Duration,
    /// Time allowed for draining requests and flushing on shutdown.
    pub shutdown_grace: Duration,
    /// Log line format.
    pub log_format: LogFormat,
    /// Tracing filter.
    pub log_level: String,
    /// Whether one line per request is logged.
    pub access_log: bool,
    /// Whether Prometheus metrics are recorded and served.
    pub metrics: bool,
    /// Prefix for Redis keys and NATS streams/subjects.
    pub prefix: String,
    /// Systems to run, in registry order.
    pub only: Vec<String>,
    /// Identity: JWT secret, token lifetimes, external identity provider, login limits.
    pub identity: identity::IdentityConfig,
    /// The HTTP rate-limit policies (`[rate_limit]` or `rate_limit_file`), validated.
    pub rate_limit: Option<rate_limit::HttpRateLimit>,
    /// The rate-limit decision service: its limits and gRPC address.
    pub ratelimit: rate_limit::ServiceConfig,
    /// The notification system: SMTP, webhook secret, gateways, delivery tuning.
    pub notify: notify::NotifyConfig,
    /// The news feed: celebrity threshold, timeline cap, active window, fan-out batch.
    pub feed: feed::FeedConfig,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    origins: HashMap<&'static str, Origin>,
}

impl Config {
    /// Embedded when the database is SQLite and neither Redis nor NATS is configured.
    pub fn mode(&self) -> Mode {
        if self.database == DatabaseKind::Sqlite
            && self.redis_url.is_none()
            && self.nats_url.is_none()
        {
            Mode::Embedded
        } else {
            Mode::Scaled
        }
    }

    /// Where the effective value of `key` came from.
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// The path of the admin key generated in embedded mode.
    pub fn generated_admin_key_path(&self) -> PathBuf {
        self.data_dir.join("admin.key")
    }

    /// The path of the JWT secret generated in embedded mode.
    pub fn generated_jwt_secret_path(&self) -> PathBuf {
        self.data_dir.join("jwt.secret")
    }

    /// The path of the webhook signing secret generated when none is configured.
    pub fn generated_webhook_secret_path(&self) -> PathBuf {
        self.data_dir.join("notify-webhook.secret")
    }
}

/// Everything [`load`] reads.
pub struct LoadOptions<'a> {
    /// Environment variables.
    pub env: &'a dyn EnvSource,
    /// Flag values given on the command line, as (key name, text).
    pub flags: Vec<(&'static str, String)>,
    /// The `--config` path, if given.
    pub config_flag: Option<PathBuf>,
    /// The file read when neither `--config` nor `PRAXIS_CONFIG` names one (`./praxis.toml`).
    pub default_file: PathBuf,
    /// Names of the systems this binary knows, in registry order.
    pub known_systems: &'a [&'a str],
}

/// Reads every layer and validates every key; reports all problems at once.
pub fn load(opts: &LoadOptions<'_>) -> Result<Config, ConfigErrors> {
    let choice = layers::choose_file(opts.config_flag.as_deref(), opts.env, &opts.default_file)
        .map_err(|e| ConfigErrors(vec![e]))?;
    let layers = layers::collect(&choice, opts.env, &opts.flags).map_err(ConfigErrors)?;
    build(&layers, opts.known_systems)
}

/// Reads one key at a time from the layers, remembering origins and collecting errors.
struct Reader<'a> {
    layers: &'a Layers,
    errors: Vec<ConfigError>,
    origins: HashMap<&'static str, Origin>,
}

impl Reader<'_> {
    /// The winning text and origin of `key`: `Ok(None)` when unset (or set empty) and the key
    /// has no fixed default.
    fn text(&mut self, key: &'static str) -> Option<(String, Origin)> {
        let spec = keys::find(key)?;
        match self.layers.get(key) {
            Some(raw) => {
                self.origins.insert(key, raw.origin.clone());
                raw.text.clone().map(|t| (t, raw.origin.clone()))
            }
            None => match spec.default {
                KeyDefault::Value(v) => Some((v.to_owned(), Origin::Default)),
                KeyDefault::Derived(_) | KeyDefault::Unset(_) => None,
            },
        }
    }

    /// A key that always has a value (its default when unset; an empty value is an error).
    fn required<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let (text, origin) = match self.text(key) {
            Some(found) => found,
            None => {
                let origin = self.origin(key);
                (String::new(), origin)
            }
        };
        self.check(key, &origin, parse(&text))
    }

    /// A key that may be unset (empty = unset).
    fn optional<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match self.text(key) {
            None => Some(None),
            Some((text, origin)) => self.check(key, &origin, parse(&text)).map(Some),
        }
    }

    fn origin(&self, key: &'static str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    fn check<T>(&mut self, key: &str, origin: &Origin, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(message) => {
                self.errors
                    .push(ConfigError::new(origin.locate(key), message));
                None
            }
        }
    }
}

fn build(layers: &Layers, known_systems: &[&str]) -> Result<Config, ConfigErrors> {
    let mut r = Reader {
        layers,
        errors: Vec::new(),
        origins: HashMap::new(),
    };
    let listen = r.required("listen", values::socket_addr);
    let data_dir = r.required("data_dir", |t| {
        if t.trim().is_empty() {
            Err("is empty (expected a folder path, e.g. ./data)".to_owned())
        } else {
            Ok(PathBuf::from(t))
        }
    });
    let database_url = r.optional("database_url", |t| {
        values::database_url(t).map(|kind| (t.trim().to_owned(), kind))
    });
    let redis_url = r.optional("redis_url", |t| {
        values::server_url(t, &["redis", "rediss"], "redis://127.0.0.1:6379")
    });
    let nats_url = r.optional("nats_url", |t| {
        values::server_url(t, &["nats", "tls"], "nats://127.0.0.1:4222")
    });
    let admin_key = r.optional("admin_key", |t| admin_key(t).map(Secret));
    let admin_key_file = r.optional("admin_key_file", |t| Ok(PathBuf::from(t.trim())));
    let base_url = r.optional("base_url", values::base_url);
    let anonymous_create = r.required("anonymous_create", values::boolean);
    let default_redirect = r.required("default_redirect", values::redirect_status);
    let forward_query = r.required("forward_query", values::boolean);
    let cache_capacity = r.required("cache_capacity", values::cache_capacity);
    let cache_ttl = r.required("cache_ttl", |t| {
        let d = units::parse_duration(t)?;
        if d.is_zero() {
            return Err(format!(
                "{t:?} is zero (expected a positive duration, e.g. 10m)"
            ));
        }
        Ok(d)
    });
    let visit_stats = r.required("visit_stats", values::boolean);
    let body_limit = r.required("body_limit", |t| {
        let n = units::parse_size(t)?;
        if n == 0 || n > 1 << 30 {
            return Err(format!(
                "{t:?} is out of range (expected between 1B and 1GiB, e.g. 2MiB)"
            ));
        }
        usize::try_from(n).map_err(|_| format!("{t:?} is too large for this machine"))
    });
    let request_timeout = r.required("request_timeout", |t| {
        let d = units::parse_duration(t)?;
        if d.is_zero() {
            return Err(format!(
                "{t:?} is zero (expected a positive duration, e.g. 10s)"
            ));
        }
        Ok(d)
    });
    let shutdown_grace = r.required("shutdown_grace", units::parse_duration);
    let log_format = r.required("log_format", values::log_format);
    let log_level = r.required("log_level", values::log_level);
    let access_log = r.required("access_log", values::boolean);
    let metrics = r.required("metrics", values::boolean);
    let prefix = r.required("prefix", values::prefix);
    let only = r.required("only", |t| values::systems(t, known_systems));
    let identity = identity::read(&mut r);
    let rate_limits = rate_limit::read(&mut r, layers);
    let notify = notify::read(&mut r);
    let feed = feed::read(&mut r);

    // The admin key comes from exactly one place, and a key file must be readable.
    let admin_key = match (admin_key, admin_key_file.clone()) {
        (Some(Some(_)), Some(Some(_))) => {
            let key = r.origin("admin_key").locate("admin_key");
            let file = r.origin("admin_key_file").locate("admin_key_file");
            r.errors.push(ConfigError::new(
                key,
                format!("is set and so is {file}; set only one of them"),
            ));
            None
        }
        (Some(None), Some(Some(path))) => {
            let origin = r.origin("admin_key_file");
            let read = read_admin_key_file(&path);
            r.check("admin_key_file", &origin, read).map(Some)
        }
        (key, Some(None)) => key,
        (None, Some(Some(_))) | (_, None) => None,
    };

    let (
        Some(listen),
        Some(data_dir),
        Some(database_url),
        Some(redis_url),
        Some(nats_url),
        Some(admin_key),
        Some(admin_key_file),
        Some(base_url),
        Some(anonymous_create),
        Some(default_redirect),
        Some(forward_query),
        Some(cache_capacity),
        Some(cache_ttl),
        Some(visit_stats),
        Some(body_limit),
        Some(request_timeout),
        Some(shutdown_grace),
        Some(log_format),
        Some(log_level),
        Some(access_log),
        Some(metrics),
        Some(prefix),
        Some(only),
    ) = (
        listen,
        data_dir,
        database_url,
        redis_url,
        nats_url,
        admin_key,
        admin_key_file,
        base_url,
        anonymous_create,
        default_redirect,
        forward_query,
        cache_capacity,
        cache_ttl,
        visit_stats,
        body_limit,
        request_timeout,
        shutdown_grace,
        log_format,
        log_level,
        access_log,
        metrics,
        prefix,
        only,
    )
    else {
        return Err(ConfigErrors(r.errors));
    };
    let (Some(identity), Some((rate_limit, ratelimit)), Some(notify)) =
        (identity, rate_limits, notify)
    else {
        return Err(ConfigErrors(r.errors));
    };
    let Some(feed) = feed else {
        return Err(ConfigErrors(r.errors));
    };
    if !r.errors.is_empty() {
        return Err(ConfigErrors(r.errors));
    }

    let (database_url, database) =
        database_url.unwrap_or_else(|| (default_database_url(&data_dir), DatabaseKind::Sqlite));
    Ok(Config {
        listen,
        data_dir,
        database_url,
        database,
        redis_url,
        nats_url,
        admin_key,
        admin_key_file,
        base_url,
        anonymous_create,
        default_redirect,
        forward_query,
        cache_capacity,
        cache_ttl,
        visit_stats,
        body_limit,
        request_timeout,
        shutdown_grace,
        log_format,
        log_level,
        access_log,
        metrics,
        prefix,
        only,
        identity,
        rate_limit,
        ratelimit,
        notify,
        feed,
        file: layers.file.clone(),
        origins: r.origins,
    })
}

/// `sqlite:///<absolute data_dir>/praxis.db`.
fn default_database_url(data_dir: &Path) -> String {
    let file = data_dir.join("praxis.db");
    let abs = std::path::absolute(&file).unwrap_or(file);
    format!("sqlite://{}", abs.display())
}

/// Checks an admin key without ever echoing it.
fn admin_key(text: &str) -> Result<String, String> {
    let key = text.trim();
    if key.chars().count() < MIN_ADMIN_KEY_LEN {
        return Err(format!(
            "is {} characters long (expected at least {MIN_ADMIN_KEY_LEN} visible ASCII characters)",
            key.chars().count()
        ));
    }
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(
            "contains spaces, control or non-ASCII characters (expected visible ASCII only)"
                .to_owned(),
        );
    }
    Ok(key.to_owned())
}

/// Reads and checks the admin key held in `path`.
pub fn read_admin_key_file(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    admin_key(&text)
        .map(Secret)
        .map_err(|msg| format!("the key in {} {msg}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEMS: &[&str] = &["shortener"];

    fn load_with(
        env: &[(&str, &str)],
        flags: &[(&'static str, &str)],
        file: Option<&str>,
    ) -> Result<Config, ConfigErrors> {
        let dir = tempfile::tempdir().expect("tempdir");
        let default_file = dir.path().join("praxis.toml");
        if let Some(text) = file {
            std::fs::write(&default_file, text).expect("write");
        }
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        load(&LoadOptions {
            env: &env,
            flags: flags.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            config_flag: None,
            default_file,
            known_systems: SYSTEMS,
        })
    }

    #[test]
    fn defaults_are_embedded_and_sensible() {
        let cfg = load_with(&[], &[], None).expect("defaults load");
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.data_dir, PathBuf::from("./data"));
        assert!(
            cfg.database_url.starts_with("sqlite:///"),
            "{}",
            cfg.database_url
        );
        assert!(
            cfg.database_url.ends_with("/data/praxis.db"),
            "{}",
            cfg.database_url
        );
        assert_eq!(cfg.mode(), Mode::Embedded);
        assert_eq!(cfg.body_limit, 2 << 20);
        assert_eq!(cfg.request_timeout, Duration::from_secs(10));
        assert_eq!(cfg.shutdown_grace, Duration::from_secs(10));
        assert_eq!(cfg.default_redirect, 301);
        assert_eq!(cfg.log_format, LogFormat::Json);
        assert!(cfg.access_log && cfg.metrics);
        assert!(!cfg.anonymous_create && !cfg.forward_query);
        assert_eq!(cfg.prefix, "praxis");
        assert_eq!(cfg.only, vec!["shortener".to_owned()]);
        assert!(cfg.admin_key.is_none() && cfg.base_url.is_none());
        assert_eq!(cfg.origin("listen"), Origin::Default);
    }

    #[test]
    fn precedence_is_file_then_env_then_flag() {
        let file = "listen = \"10.0.0.1:1\"\nprefix = \"fromfile\"\nlog_level = \"warn\"\n";
        let cfg = load_with(
            &[
                ("PRAXIS_LISTEN", "10.0.0.2:2"),
                ("PRAXIS_PREFIX", "fromenv"),
            ],
            &[("listen", "10.0.0.3:3")],
            Some(file),
        )
        .expect("loads");
        assert_eq!(cfg.listen.to_string(), "10.0.0.3:3");
        assert_eq!(cfg.origin("listen"), Origin::Flag("--listen".into()));
        assert_eq!(cfg.prefix, "fromenv");
        assert_eq!(cfg.origin("prefix"), Origin::Env("PRAXIS_PREFIX".into()));
        assert_eq!(cfg.log_level, "warn");
        assert!(matches!(cfg.origin("log_level"), Origin::File(_)));
        assert!(cfg.file.is_some());
    }

    #[test]
    fn bad_values_name_key_source_and_expectation() {
        let errs = load_with(&[("PRAXIS_LISTEN", "abc")], &[], None).expect_err("bad");
        assert_eq!(
            errs.to_string(),
            "PRAXIS_LISTEN: \"abc\" is not a socket address (expected HOST:PORT, e.g. 0.0.0.0:8080)"
        );
        let errs = load_with(&[], &[("request_timeout", "soon")], None).expect_err("bad");
        assert!(
            errs.to_string()
                .starts_with("--request-timeout: \"soon\" is not a duration")
        );
        let errs = load_with(&[], &[], Some("default_redirect = 303\n")).expect_err("bad");
        let msg = errs.to_string();
        assert!(msg.starts_with("default_redirect in "), "{msg}");
        assert!(
            msg.ends_with("\"303\" is not a redirect status (expected 301, 302 or 307)"),
            "{msg}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errs = load_with(
            &[("PRAXIS_METRICS", "perhaps"), ("PRAXIS_PREFIX", "a.b")],
            &[("only", "chat")],
            None,
        )
        .expect_err("bad");
        assert_eq!(errs.0.len(), 3, "{errs}");
        assert!(
            errs.to_string()
                .contains("--only: \"chat\" is not a system (known systems: shortener, or all)")
        );
    }

    #[test]
    fn empty_means_unset_for_optional_keys_and_error_for_required_ones() {
        let cfg = load_with(
            &[("PRAXIS_REDIS_URL", "")],
            &[],
            Some("redis_url = \"redis://h:1\"\n"),
        )
        .expect("loads");
        assert_eq!(cfg.redis_url, None);
        let errs = load_with(&[("PRAXIS_LISTEN", "")], &[], None).expect_err("empty");
        assert!(
            errs.to_string()
                .starts_with("PRAXIS_LISTEN: \"\" is not a socket address")
        );
    }

    #[test]
    fn scaled_mode_follows_the_urls() {
        let cfg = load_with(
            &[(
                "PRAXIS_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/x",
            )],
            &[],
            None,
        )
        .expect("loads");
        assert_eq!(cfg.database, DatabaseKind::Postgres);
        assert_eq!(cfg.mode(), Mode::Scaled);
        let cfg =
            load_with(&[("PRAXIS_NATS_URL", "nats://127.0.0.1:4222")], &[], None).expect("loads");
        assert_eq!(cfg.mode(), Mode::Scaled);
    }

    #[test]
    fn database_url_defaults_under_data_dir() {
        let cfg = load_with(&[], &[("data_dir", "/srv/praxis")], None).expect("loads");
        assert_eq!(cfg.database_url, "sqlite:///srv/praxis/praxis.db");
        assert_eq!(cfg.origin("database_url"), Origin::Default);
    }

    #[test]
    fn admin_key_from_env_is_checked_but_never_echoed() {
        let cfg =
            load_with(&[("PRAXIS_ADMIN_KEY", "0123456789abcdefXYZ")], &[], None).expect("loads");
        assert_eq!(
            cfg.admin_key.as_ref().map(Secret::expose),
            Some("0123456789abcdefXYZ")
        );
        assert_eq!(format!("{:?}", cfg.admin_key), "Some(Secret(****))");
        let errs = load_with(&[("PRAXIS_ADMIN_KEY", "short-key")], &[], None).expect_err("short");
        let msg = errs.to_string();
        assert!(
            msg.starts_with("PRAXIS_ADMIN_KEY: is 9 characters long"),
            "{msg}"
        );
        assert!(!msg.contains("short-key"), "{msg}");
    }

    #[test]
    fn admin_key_file_is_read_and_excludes_admin_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        std::fs::write(&path, "fedcba9876543210fedc\n").expect("write");
        let path_text = path.display().to_string();
        let cfg = load_with(&[("PRAXIS_ADMIN_KEY_FILE", &path_text)], &[], None).expect("loads");
        assert_eq!(
            cfg.admin_key.as_ref().map(Secret::expose),
            Some("fedcba9876543210fedc")
        );
        assert_eq!(cfg.admin_key_file.as_deref(), Some(path.as_path()));

        let errs = load_with(
            &[("PRAXIS_ADMIN_KEY", "0123456789abcdefXYZ")],
            &[("admin_key_file", &path_text)],
            None,
        )
        .expect_err("both");
        assert!(errs.to_string().contains("set only one of them"), "{errs}");

        let errs = load_with(&[], &[("admin_key_file", "/nonexistent/key")], None)
            .expect_err("missing file");
        assert!(
            errs.to_string()
                .starts_with("--admin-key-file: cannot read /nonexistent/key")
        );
    }

    #[test]
    fn the_example_file_loads_and_documents_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../praxis.example.toml");
        let text = std::fs::read_to_string(&path).expect("praxis.example.toml exists");
        let env: HashMap<String, String> = HashMap::new();
        let cfg = load(&LoadOptions {
            env: &env,
            flags: vec![],
            config_flag: Some(path),
            default_file: PathBuf::from("/nonexistent/default.toml"),
            known_systems: SYSTEMS,
        })
        .expect("the example file is a valid config");
        assert!(cfg.file.is_some());
        for key in keys::KEYS {
            assert!(
                text.contains(&format!("{} = ", key.name))
                    || text.contains(&format!("# {} ", key.name)),
                "praxis.example.toml does not document {}",
                key.name
            );
        }
    }

    #[test]
    fn identity_keys_are_read_and_cross_checked() {
        let cfg = load_with(&[], &[], None).expect("defaults");
        assert_eq!(cfg.identity.jwt_issuer, "praxis");
        assert_eq!(cfg.identity.access_token_ttl, Duration::from_secs(900));
        assert_eq!(
            cfg.identity.refresh_token_ttl,
            Duration::from_secs(720 * 3600)
        );
        assert_eq!(cfg.identity.login_limit_account.limit, 10);
        assert!(cfg.identity.jwt_secret.is_none() && cfg.identity.jwks_url.is_none());

        let secret = "0123456789abcdef0123456789abcdefXY";
        let cfg = load_with(
            &[
                ("PRAXIS_JWT_SECRET", secret),
                ("PRAXIS_JWKS_URL", "https://idp.example.com/jwks.json"),
                ("PRAXIS_JWKS_ISSUER", "https://idp.example.com/"),
            ],
            &[("access_token_ttl", "5m"), ("login_limit_ip", "3/1m")],
            None,
        )
        .expect("loads");
        assert_eq!(
            cfg.identity.jwt_secret.as_ref().map(Secret::expose),
            Some(secret)
        );
        assert_eq!(cfg.identity.effective_jwks_audience(), "praxis");
        assert_eq!(cfg.identity.login_limit_ip.limit, 3);

        let errs = load_with(&[("PRAXIS_JWT_SECRET", "too-short")], &[], None).expect_err("short");
        assert!(
            errs.to_string()
                .starts_with("PRAXIS_JWT_SECRET: is 9 bytes long"),
            "{errs}"
        );
        assert!(!errs.to_string().contains("too-short"));
        let errs = load_with(
            &[("PRAXIS_JWKS_URL", "https://idp.example.com/jwks.json")],
            &[],
            None,
        )
        .expect_err("no issuer");
        assert!(
            errs.to_string()
                .starts_with("jwks_issuer (default): is unset"),
            "{errs}"
        );
        let errs = load_with(&[], &[("refresh_token_ttl", "1m")], None).expect_err("ttl");
        assert!(
            errs.to_string()
                .starts_with("--refresh-token-ttl: 1m is not longer"),
            "{errs}"
        );
        let errs = load_with(&[], &[("login_limit_account", "ten")], None).expect_err("limit");
        assert!(
            errs.to_string()
                .starts_with("--login-limit-account: \"ten\" is not a limit"),
            "{errs}"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwt");
        std::fs::write(&path, format!("{secret}\n")).expect("write");
        let path_text = path.display().to_string();
        let cfg = load_with(&[], &[("jwt_secret_file", &path_text)], None).expect("file");
        assert_eq!(
            cfg.identity.jwt_secret.as_ref().map(Secret::expose),
            Some(secret)
        );
        let errs = load_with(
            &[("PRAXIS_JWT_SECRET", secret)],
            &[("jwt_secret_file", &path_text)],
            None,
        )
        .expect_err("both");
        assert!(errs.to_string().contains("set only one of them"), "{errs}");
    }

    #[test]
    fn the_rate_limit_table_is_read_and_validated() {
        let file = "listen = \"127.0.0.1:1\"\n[rate_limit]\ntrusted_proxies = [\"10.0.0.0/8\"]\n\n[[rate_limit.policies]]\nname = \"login\"\nmatch = { methods = [\"POST\"], route = \"/api/v1/identity/login\" }\nkey = \"ip\"\nlimit = 5\nperiod = \"1m\"\n";
        let cfg = load_with(&[], &[], Some(file)).expect("loads");
        let rl = cfg.rate_limit.as_ref().expect("policies");
        assert_eq!(rl.limits.policy_names().collect::<Vec<_>>(), ["login"]);
        assert!(rl.source.ends_with("praxis.toml"));
        assert!(matches!(cfg.origin("rate_limit"), Origin::File(_)));

        let bad = file.replace("period = \"1m\"", "period = \"soon\"");
        let errs = load_with(&[], &[], Some(&bad)).expect_err("bad period");
        let msg = errs.to_string();
        assert!(msg.starts_with("rate_limit in "), "{msg}");
        assert!(
            msg.contains("praxis.toml: policy \"login\": period: \"soon\" is not a period"),
            "{msg}"
        );

        let bad = file.replace("key = \"ip\"", "key = \"ip\"\nshadow = \"yes\"");
        let errs = load_with(&[], &[], Some(&bad)).expect_err("bad type");
        assert!(
            errs.to_string()
                .contains("policy \"login\" (policies[0]).shadow: invalid type"),
            "{errs}"
        );

        let errs = load_with(&[], &[], Some("rate_limit = 3\n")).expect_err("not a table");
        assert!(errs.to_string().contains("expected a table"), "{errs}");
        assert!(
            load_with(&[], &[], None)
                .expect("defaults")
                .rate_limit
                .is_none()
        );
    }

    #[test]
    fn rate_limit_file_replaces_the_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("limits.toml");
        std::fs::write(
            &path,
            "[rate_limit]\n[[rate_limit.policies]]\nname = \"all\"\nkey = \"global\"\nlimit = 100\nperiod = \"1s\"\n",
        )
        .expect("write");
        let path_text = path.display().to_string();
        let cfg = load_with(&[("PRAXIS_RATE_LIMIT_FILE", &path_text)], &[], None).expect("loads");
        let rl = cfg.rate_limit.expect("policies");
        assert_eq!(rl.source, path);

        let table = "[rate_limit]\n[[rate_limit.policies]]\nname = \"x\"\nkey = \"ip\"\nlimit = 1\nperiod = \"1s\"\n";
        let errs = load_with(&[("PRAXIS_RATE_LIMIT_FILE", &path_text)], &[], Some(table))
            .expect_err("both");
        assert!(
            errs.to_string()
                .starts_with("PRAXIS_RATE_LIMIT_FILE: is set to"),
            "{errs}"
        );
        assert!(errs.to_string().contains("set only one of them"), "{errs}");

        std::fs::write(
            &path,
            "[rate_limit]\n[[rate_limit.policies]]\nname = \"all\"\nkey = \"everyone\"\nlimit = 100\nperiod = \"1s\"\n",
        )
        .expect("write");
        let errs = load_with(&[], &[("rate_limit_file", &path_text)], None).expect_err("bad key");
        let msg = errs.to_string();
        assert!(
            msg.starts_with(&format!(
                "--rate-limit-file: {path_text}: policy \"all\": key: "
            )),
            "{msg}"
        );
    }

    #[test]
    fn decision_service_keys_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("edge.toml");
        std::fs::write(
            &path,
            "domain = \"edge\"\n[[descriptors]]\nkey = \"ip\"\nrate_limit = { unit = \"second\", requests_per_unit = 10 }\n",
        )
        .expect("write");
        let path_text = path.display().to_string();
        let cfg = load_with(
            &[("PRAXIS_RATELIMIT_LIMITS", &path_text)],
            &[("ratelimit_grpc_listen", "127.0.0.1:0")],
            None,
        )
        .expect("loads");
        assert_eq!(cfg.ratelimit.limits.as_deref(), Some(path.as_path()));
        assert_eq!(
            cfg.ratelimit.limits_version.as_deref().map(str::len),
            Some(16)
        );
        assert_eq!(cfg.ratelimit.grpc_listen.map(|a| a.port()), Some(0));

        std::fs::write(
            &path,
            "domain = \"edge\"\n[[descriptors]]\nkey = \"ip\"\nrate_limit = { unit = \"fortnight\", requests_per_unit = 10 }\n",
        )
        .expect("write");
        let errs =
            load_with(&[("PRAXIS_RATELIMIT_LIMITS", &path_text)], &[], None).expect_err("bad unit");
        let msg = errs.to_string();
        assert!(
            msg.starts_with(&format!(
                "PRAXIS_RATELIMIT_LIMITS: the limits do not load: {path_text}: descriptors[0].rate_limit.unit: \"fortnight\" is not a unit"
            )),
            "{msg}"
        );
        let errs = load_with(&[], &[("ratelimit_grpc_listen", "everywhere")], None)
            .expect_err("bad address");
        assert!(
            errs.to_string().starts_with("--ratelimit-grpc-listen: "),
            "{errs}"
        );
    }

    #[test]
    fn the_commented_rate_limit_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../praxis.example.toml");
        let text = std::fs::read_to_string(&path).expect("praxis.example.toml exists");
        let start = text
            .find("# [rate_limit]\n")
            .expect("the example documents a [rate_limit] table");
        let block: String = text[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
            .filter(|l| !l.starts_with("---"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut table: toml::Table = toml::from_str(&block).unwrap_or_else(|e| {
            panic!("the commented [rate_limit] example is not TOML: {e}\n{block}")
        });
        let value = table.remove(rate_limit::TABLE).expect("rate_limit table");
        let rl = rate_limit::from_table(value, &path)
            .unwrap_or_else(|e| panic!("the commented [rate_limit] example is invalid: {e}"));
        assert!(rl.config.policies.len() >= 3, "{:?}", rl.config.policies);
        assert!(rl.config.policies.iter().any(|p| p.shadow));
        assert!(!rl.config.plans.is_empty());
    }

    #[test]
    fn notify_ssrf_and_retention_keys() {
        let cfg = load_with(&[], &[], None).expect("defaults");
        let n = &cfg.notify;
        assert!(!n.webhook_allow_private && n.webhook_allow_cidrs.is_empty());
        assert_eq!(n.retention, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(n.retention_interval, Duration::from_secs(3600));
        let cfg = load_with(
            &[(
                "PRAXIS_NOTIFY_WEBHOOK_ALLOW_CIDRS",
                "10.20.0.0/16, fd00::/8",
            )],
            &[
                ("notify_webhook_allow_private", "true"),
                ("notify_retention", "0"),
            ],
            None,
        )
        .expect("loads");
        let n = &cfg.notify;
        assert!(n.webhook_allow_private && n.webhook_allow_cidrs.len() == 2);
        assert!(n.retention.is_zero());
        let errs = load_with(
            &[("PRAXIS_NOTIFY_WEBHOOK_ALLOW_CIDRS", "10.0.0.0/40")],
            &[],
            None,
        )
        .expect_err("bad cidr");
        assert!(
            errs.to_string()
                .starts_with("PRAXIS_NOTIFY_WEBHOOK_ALLOW_CIDRS: \"10.0.0.0/40\" is not"),
            "{errs}"
        );
        let errs = load_with(&[], &[("notify_retention_interval", "0")], None).expect_err("zero");
        assert!(
            errs.to_string()
                .starts_with("--notify-retention-interval: "),
            "{errs}"
        );
    }

    #[test]
    fn notify_keys_are_read_and_checked() {
        let cfg = load_with(&[], &[], None).expect("defaults");
        let n = &cfg.notify;
        assert!(n.smtp.is_none() && n.webhook_secret.is_none() && n.sms_url.is_none());
        assert_eq!(n.concurrency.default, 16);
        assert_eq!(n.max_attempts.default, 8);
        assert_eq!(n.lease, Duration::from_secs(60));
        assert!(n.rate_limits.is_empty());
        assert_eq!(n.breaker_failures, 5);

        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let cfg = load_with(
            &[
                (
                    "PRAXIS_NOTIFY_SMTP_URL",
                    "smtp://u:pw@mail.example.com:2525?tls=none",
                ),
                ("PRAXIS_NOTIFY_WEBHOOK_SECRET", secret),
            ],
            &[
                ("notify_concurrency", "4,webhook=32"),
                ("notify_rate_limits", "webhook=100/1s"),
                ("notify_sms_url", "https://sms.example.com/send"),
            ],
            None,
        )
        .expect("loads");
        let n = &cfg.notify;
        let smtp = n.smtp.as_ref().expect("smtp");
        assert_eq!((smtp.host.as_str(), smtp.port), ("mail.example.com", 2525));
        assert_eq!(n.webhook_secret.as_ref().map(Secret::expose), Some(secret));
        assert_eq!(
            n.concurrency
                .overrides
                .get(&praxis_notify::channels::Channel::Webhook),
            Some(&32)
        );
        assert_eq!(n.rate_limits["webhook"].limit, 100);
        assert_eq!(n.sms_url.as_deref(), Some("https://sms.example.com/send"));

        let errs = load_with(&[("PRAXIS_NOTIFY_CONCURRENCY", "0")], &[], None).expect_err("zero");
        assert!(
            errs.to_string()
                .starts_with("PRAXIS_NOTIFY_CONCURRENCY: \"0\" is not a per-channel value"),
            "{errs}"
        );
        let errs = load_with(&[], &[("notify_lease", "5s")], None).expect_err("lease");
        assert!(
            errs.to_string()
                .starts_with("--notify-lease: 5s is not longer than notify_provider_timeout"),
            "{errs}"
        );
        let errs = load_with(&[], &[("notify_rate_limits", "fax=1/1s")], None).expect_err("fax");
        assert!(
            errs.to_string().starts_with("--notify-rate-limits: "),
            "{errs}"
        );
        let errs = load_with(
            &[("PRAXIS_NOTIFY_WEBHOOK_SECRET", "whsec_c2hvcnQ=")],
            &[],
            None,
        )
        .expect_err("short");
        assert!(
            errs.to_string()
                .starts_with("PRAXIS_NOTIFY_WEBHOOK_SECRET: "),
            "{errs}"
        );
        assert!(!errs.to_string().contains("c2hvcnQ"), "{errs}");
        let errs = load_with(&[], &[], Some("notify_webhook_secret = \"x\"\n")).expect_err("file");
        assert!(
            errs.to_string()
                .contains("secrets are not read from the config file"),
            "{errs}"
        );
        let errs = load_with(
            &[("PRAXIS_NOTIFY_SMTP_URL", "smtp://u:hunter2@h?tls=maybe")],
            &[],
            None,
        )
        .expect_err("tls");
        assert!(!errs.to_string().contains("hunter2"), "{errs}");
    }

    #[test]
    fn notify_smtp_ca_file_needs_a_tls_relay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let ca_text = ca.display().to_string();
        let flags = [("notify_smtp_ca_file", ca_text.as_str())];
        let cfg = load_with(
            &[("PRAXIS_NOTIFY_SMTP_URL", "smtps://relay.internal")],
            &flags,
            None,
        )
        .expect("loads");
        assert_eq!(cfg.notify.smtp_ca_file.as_deref(), Some(ca.as_path()));
        for env in [
            &[(
                "PRAXIS_NOTIFY_SMTP_URL",
                "smtp://relay.internal:25?tls=none",
            )][..],
            &[][..],
        ] {
            let errs = load_with(env, &flags, None).expect_err("no TLS relay");
            assert!(
                errs.to_string()
                    .starts_with("--notify-smtp-ca-file: is set"),
                "{errs}"
            );
        }
    }

    #[test]
    fn config_flag_file_must_exist() {
        let env: HashMap<String, String> = HashMap::new();
        let errs = load(&LoadOptions {
            env: &env,
            flags: vec![],
            config_flag: Some(PathBuf::from("/nonexistent/praxis.toml")),
            default_file: PathBuf::from("/nonexistent/default.toml"),
            known_systems: SYSTEMS,
        })
        .expect_err("missing");
        assert_eq!(
            errs.to_string(),
            "--config: config file /nonexistent/praxis.toml does not exist"
        );
    }
}

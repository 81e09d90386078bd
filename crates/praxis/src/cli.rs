//! The command line: `praxis serve | migrate | config`, one flag per configuration key.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::keys::{self, Default as KeyDefault};

/// praxis: classic distributed-system designs as real, tested services.
#[derive(Debug, Parser)]
#[command(
    name = "praxis",
    version,
    about = "praxis: classic distributed-system designs as real, tested services",
    long_about = "praxis: classic distributed-system designs as real, tested services.\n\n\
        One binary runs every system (today: identity, the URL shortener, the rate-limit \
        decision service and notifications). By default it is embedded: an \
        SQLite file under ./data, an in-process cache and an in-process event bus, nothing else \
        to install. Point it at PostgreSQL (database_url), Redis (redis_url) and NATS JetStream \
        (nats_url) and it runs scaled: many processes share them, and `serve --only` runs a \
        subset of the systems per process.\n\n\
        Configuration is layered: built-in defaults < praxis.toml (--config, PRAXIS_CONFIG, or \
        ./praxis.toml when present) < PRAXIS_* environment variables < command-line flags. \
        Every value is checked at start; `praxis config` shows the effective values and where \
        each came from. The admin key and the JWT secret are secrets: set them with \
        PRAXIS_ADMIN_KEY / PRAXIS_JWT_SECRET or admin_key_file / jwt_secret_file, never in \
        praxis.toml or on the command line."
)]
pub struct Cli {
    /// Config file to read (default: ./praxis.toml when present; env PRAXIS_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server with the selected systems.
    #[command(
        long_about = "Run the HTTP server with the selected systems (default: all).\n\n\
        Applies pending migrations, serves every system's routes plus /healthz, /readyz, \
        /metrics and /api/openapi.json, and logs one line per request. On SIGTERM or SIGINT it \
        stops accepting connections, lets in-flight requests finish, flushes buffered work and \
        pending bus events within shutdown_grace, then exits 0; a second signal exits at once.\n\n\
        In embedded mode without a configured admin key, the first start generates one into \
        <data_dir>/admin.key (mode 0600) and logs its path, never the key."
    )]
    Serve(ConfigFlags),

    /// Apply the database migrations of every selected system, then exit.
    #[command(
        long_about = "Apply the database migrations of the shared infrastructure (event \
        bus outbox, idempotency keys) and of every selected system (default: all) to \
        database_url, then exit. Safe to run again and from several processes at once. \
        `praxis serve` applies them too; this is for deployments that migrate before rolling \
        out."
    )]
    Migrate(ConfigFlags),

    /// Print the effective configuration (secrets masked) and where each value came from.
    #[command(
        long_about = "Print the effective configuration as TOML: every key with its \
        value, secrets masked (admin_key = \"****\", URL passwords ****), and a trailing \
        comment saying where the value came from (default, file, env or flag). Exits 2 with \
        one line per problem when a value is invalid, naming the key, its source and what was \
        expected."
    )]
    Config(ConfigFlags),

    /// Measure a running server with the open-loop load generator (no coordinated omission).
    #[command(
        long_about = "Measure an HTTP endpoint or a scenario (scenarios/*.toml) at a \
        constant arrival rate, wrk2-style: each request is scheduled at its intended time \
        whatever the server does, and latency is measured from that time, so a stalled server \
        shows in the tail. `praxis bench reference` serves a bare axum redirect to measure \
        beside a service; `praxis bench compare A.json B.json` prints the differences. Does \
        not read the praxis configuration."
    )]
    Bench(praxis_bench::BenchArgs),
}

/// One flag per configuration key (the admin key, a secret, has none: use PRAXIS_ADMIN_KEY or
/// --admin-key-file). An empty value unsets an optional key.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFlags {
    /// Systems to run, comma-separated, or all [env: PRAXIS_ONLY] [default: all].
    #[arg(long, value_name = "SYSTEMS")]
    pub only: Option<String>,

    /// Address to bind, HOST:PORT; port 0 picks a free one [env: PRAXIS_LISTEN] [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Folder for the SQLite file, generated admin key and local files [env: PRAXIS_DATA_DIR] [default: ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,

    /// sqlite:///ABS/PATH.db or postgres://USER@HOST:PORT/DB [env: PRAXIS_DATABASE_URL] [default: sqlite file <data_dir>/praxis.db].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// redis://HOST:PORT for the shared cache and invalidation; unset = in-process [env: PRAXIS_REDIS_URL].
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,

    /// nats://HOST:PORT of NATS JetStream for the event bus; unset = embedded bus [env: PRAXIS_NATS_URL].
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,

    /// File holding the admin key (the key itself: env PRAXIS_ADMIN_KEY only) [env: PRAXIS_ADMIN_KEY_FILE].
    #[arg(long, value_name = "FILE")]
    pub admin_key_file: Option<String>,

    /// File holding the JWT secret (the secret itself: env PRAXIS_JWT_SECRET only) [env: PRAXIS_JWT_SECRET_FILE].
    #[arg(long, value_name = "FILE")]
    pub jwt_secret_file: Option<String>,

    /// iss claim of access tokens [env: PRAXIS_JWT_ISSUER] [default: praxis].
    #[arg(long, value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,

    /// aud claim of access tokens [env: PRAXIS_JWT_AUDIENCE] [default: praxis].
    #[arg(long, value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Lifetime of access tokens (10s to 24h) [env: PRAXIS_ACCESS_TOKEN_TTL] [default: 15m].
    #[arg(long, value_name = "DURATION")]
    pub access_token_ttl: Option<String>,

    /// Lifetime of a login's refresh tokens [env: PRAXIS_REFRESH_TOKEN_TTL] [default: 720h].
    #[arg(long, value_name = "DURATION")]
    pub refresh_token_ttl: Option<String>,

    /// JWKS URL of an external identity provider (RS256 tokens) [env: PRAXIS_JWKS_URL].
    #[arg(long, value_name = "URL")]
    pub jwks_url: Option<String>,

    /// iss claim of the external provider's tokens; required with --jwks-url [env: PRAXIS_JWKS_ISSUER].
    #[arg(long, value_name = "ISSUER")]
    pub jwks_issuer: Option<String>,

    /// aud claim the external provider's tokens must carry [env: PRAXIS_JWKS_AUDIENCE] [default: jwt_audience].
    #[arg(long, value_name = "AUDIENCE")]
    pub jwks_audience: Option<String>,

    /// Login attempts per account, COUNT/DURATION [env: PRAXIS_LOGIN_LIMIT_ACCOUNT] [default: 10/15m].
    #[arg(long, value_name = "LIMIT")]
    pub login_limit_account: Option<String>,

    /// Login attempts per client IP, COUNT/DURATION [env: PRAXIS_LOGIN_LIMIT_IP] [default: 50/15m].
    #[arg(long, value_name = "LIMIT")]
    pub login_limit_ip: Option<String>,

    /// TOML file holding the [rate_limit] table of HTTP rate-limit policies (instead of the config file's) [env: PRAXIS_RATE_LIMIT_FILE].
    #[arg(long, value_name = "FILE")]
    pub rate_limit_file: Option<String>,

    /// Limits of the rate-limit decision service: a domain file or a folder of them, reloaded when changed [env: PRAXIS_RATELIMIT_LIMITS].
    #[arg(long, value_name = "PATH")]
    pub ratelimit_limits: Option<String>,

    /// HOST:PORT of the decision service's Envoy RateLimitService gRPC API; unset = off [env: PRAXIS_RATELIMIT_GRPC_LISTEN].
    #[arg(long, value_name = "ADDR")]
    pub ratelimit_grpc_listen: Option<String>,

    /// SMTP relay of notifications: smtp://USER:PASSWORD@HOST:587, smtps://HOST:465 or smtp://HOST:25?tls=none; unset = .eml files under <data_dir>/notify/outbox [env: PRAXIS_NOTIFY_SMTP_URL].
    #[arg(long, value_name = "URL")]
    pub notify_smtp_url: Option<String>,

    /// PEM file of CA certificates trusted for the SMTP relay, besides the public roots (a private relay) [env: PRAXIS_NOTIFY_SMTP_CA_FILE].
    #[arg(long, value_name = "FILE")]
    pub notify_smtp_ca_file: Option<String>,

    /// Sender of notification emails [env: PRAXIS_NOTIFY_EMAIL_FROM] [default: praxis <notify@localhost>].
    #[arg(long, value_name = "ADDRESS")]
    pub notify_email_from: Option<String>,

    /// File holding the webhook signing secret whsec_... (the secret itself: env PRAXIS_NOTIFY_WEBHOOK_SECRET only) [env: PRAXIS_NOTIFY_WEBHOOK_SECRET_FILE].
    #[arg(long, value_name = "FILE")]
    pub notify_webhook_secret_file: Option<String>,

    /// SMS gateway URL (signed JSON POSTs); unset = no sms channel [env: PRAXIS_NOTIFY_SMS_URL].
    #[arg(long, value_name = "URL")]
    pub notify_sms_url: Option<String>,

    /// Push gateway URL (signed JSON POSTs); unset = no push channel [env: PRAXIS_NOTIFY_PUSH_URL].
    #[arg(long, value_name = "URL")]
    pub notify_push_url: Option<String>,

    /// Sends in flight per channel and process: N or N,channel=N [env: PRAXIS_NOTIFY_CONCURRENCY] [default: 16].
    #[arg(long, value_name = "N")]
    pub notify_concurrency: Option<String>,

    /// Attempts per delivery before it becomes a dead letter: N or N,channel=N [env: PRAXIS_NOTIFY_MAX_ATTEMPTS] [default: 8].
    #[arg(long, value_name = "N")]
    pub notify_max_attempts: Option<String>,

    /// First retry delay ceiling (doubles per attempt, full jitter) [env: PRAXIS_NOTIFY_RETRY_BASE] [default: 1s].
    #[arg(long, value_name = "DURATION")]
    pub notify_retry_base: Option<String>,

    /// Largest retry delay ceiling [env: PRAXIS_NOTIFY_RETRY_MAX] [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub notify_retry_max: Option<String>,

    /// How long a claimed delivery belongs to its process [env: PRAXIS_NOTIFY_LEASE] [default: 60s].
    #[arg(long, value_name = "DURATION")]
    pub notify_lease: Option<String>,

    /// Timeout of one webhook or gateway request [env: PRAXIS_NOTIFY_PROVIDER_TIMEOUT] [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub notify_provider_timeout: Option<String>,

    /// Per-provider limits, PROVIDER=COUNT/DURATION,... (smtp=10/1s,webhook=100/1s) [env: PRAXIS_NOTIFY_RATE_LIMITS].
    #[arg(long, value_name = "LIMITS")]
    pub notify_rate_limits: Option<String>,

    /// Consecutive failures that open a provider's circuit breaker [env: PRAXIS_NOTIFY_BREAKER_FAILURES] [default: 5].
    #[arg(long, value_name = "N")]
    pub notify_breaker_failures: Option<String>,

    /// First open period of a circuit breaker [env: PRAXIS_NOTIFY_BREAKER_OPEN] [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub notify_breaker_open: Option<String>,

    /// Longest open period of a circuit breaker [env: PRAXIS_NOTIFY_BREAKER_MAX_OPEN] [default: 5m].
    #[arg(long, value_name = "DURATION")]
    pub notify_breaker_max_open: Option<String>,

    /// Followers from which an author's posts are merged at read instead of fanned out [env: PRAXIS_FEED_CELEBRITY_THRESHOLD] [default: 10000].
    #[arg(long, value_name = "N")]
    pub feed_celebrity_threshold: Option<String>,

    /// Posts kept per home timeline in the timeline store [env: PRAXIS_FEED_TIMELINE_CAP] [default: 800].
    #[arg(long, value_name = "N")]
    pub feed_timeline_cap: Option<String>,

    /// Users who read within this window get fan-out; idle timelines expire [env: PRAXIS_FEED_ACTIVE_WINDOW] [default: 168h].
    #[arg(long, value_name = "DURATION")]
    pub feed_active_window: Option<String>,

    /// Followers written per pipelined round trip of the fan-out [env: PRAXIS_FEED_FANOUT_BATCH] [default: 500].
    #[arg(long, value_name = "N")]
    pub feed_fanout_batch: Option<String>,

    /// Let webhooks reach any address (turns the SSRF guard off) [env: PRAXIS_NOTIFY_WEBHOOK_ALLOW_PRIVATE] [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub notify_webhook_allow_private: Option<String>,

    /// Address ranges webhooks may reach although the SSRF guard refuses them, comma-separated CIDRs [env: PRAXIS_NOTIFY_WEBHOOK_ALLOW_CIDRS] [default: none].
    #[arg(long, value_name = "CIDRS")]
    pub notify_webhook_allow_cidrs: Option<String>,

    /// How long messages whose deliveries are all final are kept; 0 keeps them forever [env: PRAXIS_NOTIFY_RETENTION] [default: 720h].
    #[arg(long, value_name = "DURATION")]
    pub notify_retention: Option<String>,

    /// How often old messages are pruned [env: PRAXIS_NOTIFY_RETENTION_INTERVAL] [default: 1h].
    #[arg(long, value_name = "DURATION")]
    pub notify_retention_interval: Option<String>,

    /// Public base URL of this deployment (short links, unsubscribe links of emails), e.g. https://sho.rt [env: PRAXIS_BASE_URL] [default: http://<bound address>].
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Let anonymous callers (no credentials) create links [env: PRAXIS_ANONYMOUS_CREATE] [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub anonymous_create: Option<String>,

    /// Redirect status when a link does not choose one: 301, 302 or 307 [env: PRAXIS_DEFAULT_REDIRECT] [default: 302].
    #[arg(long, value_name = "STATUS")]
    pub default_redirect: Option<String>,

    /// Append the short link's query string to the target URL [env: PRAXIS_FORWARD_QUERY] [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub forward_query: Option<String>,

    /// Most links in the shortener's redirect cache (L1) [env: PRAXIS_CACHE_CAPACITY] [default: 100000].
    #[arg(long, value_name = "N")]
    pub cache_capacity: Option<String>,

    /// How long a cached link is served before it is reloaded [env: PRAXIS_CACHE_TTL] [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub cache_ttl: Option<String>,

    /// Count visits per link for the stats API [env: PRAXIS_VISIT_STATS] [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub visit_stats: Option<String>,

    /// Largest request body, bytes or with a unit (512KiB, 2MiB) [env: PRAXIS_BODY_LIMIT] [default: 2MiB].
    #[arg(long, value_name = "SIZE")]
    pub body_limit: Option<String>,

    /// Longest a request may run before a 503 (500ms, 10s, 1m) [env: PRAXIS_REQUEST_TIMEOUT] [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub request_timeout: Option<String>,

    /// Time for draining requests and flushing on shutdown [env: PRAXIS_SHUTDOWN_GRACE] [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub shutdown_grace: Option<String>,

    /// Log format: json or pretty [env: PRAXIS_LOG_FORMAT] [default: json].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Log filter: a level or directives (info,praxis_shortener=debug) [env: PRAXIS_LOG_LEVEL] [default: info].
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Log one line per request [env: PRAXIS_ACCESS_LOG] [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub access_log: Option<String>,

    /// Record Prometheus metrics and serve /metrics [env: PRAXIS_METRICS] [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub metrics: Option<String>,

    /// Prefix of Redis keys and NATS streams/subjects [env: PRAXIS_PREFIX] [default: praxis].
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
}

impl Cli {
    /// Parses the process arguments (exits with usage help on error). `praxis config --help`
    /// also lists every key, built from the key table.
    pub fn parse_args() -> Self {
        let matches = Self::command()
            .mut_subcommand("config", |c| c.after_long_help(keys_help()))
            .get_matches();
        match Self::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        }
    }
}

/// Every configuration key with its environment variable, flag, default and meaning.
pub fn keys_help() -> String {
    let mut out = String::from("Keys (praxis.toml key, environment variable, flag):\n");
    for key in keys::KEYS {
        let flag = key.flag().unwrap_or_else(|| "(no flag: secret)".to_owned());
        let default = match key.default {
            KeyDefault::Value(v) => format!("default {v}"),
            KeyDefault::Derived(how) => format!("default {how}"),
            KeyDefault::Unset(what) => format!("unset: {what}"),
        };
        out.push_str(&format!(
            "  {}  {}  {}\n      {}; {}\n",
            key.name,
            key.env_var(),
            flag,
            key.doc,
            default
        ));
    }
    out
}

impl ConfigFlags {
    /// The flags that were given, as (configuration key, text).
    pub fn values(&self) -> Vec<(&'static str, String)> {
        let all: &[(&'static str, &Option<String>)] = &[
            ("only", &self.only),
            ("listen", &self.listen),
            ("data_dir", &self.data_dir),
            ("database_url", &self.database_url),
            ("redis_url", &self.redis_url),
            ("nats_url", &self.nats_url),
            ("admin_key_file", &self.admin_key_file),
            ("jwt_secret_file", &self.jwt_secret_file),
            ("jwt_issuer", &self.jwt_issuer),
            ("jwt_audience", &self.jwt_audience),
            ("access_token_ttl", &self.access_token_ttl),
            ("refresh_token_ttl", &self.refresh_token_ttl),
            ("jwks_url", &self.jwks_url),
            ("jwks_issuer", &self.jwks_issuer),
            ("jwks_audience", &self.jwks_audience),
            ("login_limit_account", &self.login_limit_account),
            ("login_limit_ip", &self.login_limit_ip),
            ("rate_limit_file", &self.rate_limit_file),
            ("ratelimit_limits", &self.ratelimit_limits),
            ("ratelimit_grpc_listen", &self.ratelimit_grpc_listen),
            ("notify_smtp_url", &self.notify_smtp_url),
            ("notify_smtp_ca_file", &self.notify_smtp_ca_file),
            ("notify_email_from", &self.notify_email_from),
            (
                "notify_webhook_secret_file",
                &self.notify_webhook_secret_file,
            ),
            ("notify_sms_url", &self.notify_sms_url),
            ("notify_push_url", &self.notify_push_url),
            ("notify_concurrency", &self.notify_concurrency),
            ("notify_max_attempts", &self.notify_max_attempts),
            ("notify_retry_base", &self.notify_retry_base),
            ("notify_retry_max", &self.notify_retry_max),
            ("notify_lease", &self.notify_lease),
            ("notify_provider_timeout", &self.notify_provider_timeout),
            ("notify_rate_limits", &self.notify_rate_limits),
            ("notify_breaker_failures", &self.notify_breaker_failures),
            ("notify_breaker_open", &self.notify_breaker_open),
            ("notify_breaker_max_open", &self.notify_breaker_max_open),
            ("feed_celebrity_threshold", &self.feed_celebrity_threshold),
            ("feed_timeline_cap", &self.feed_timeline_cap),
            ("feed_active_window", &self.feed_active_window),
            ("feed_fanout_batch", &self.feed_fanout_batch),
            (
                "notify_webhook_allow_private",
                &self.notify_webhook_allow_private,
            ),
            (
                "notify_webhook_allow_cidrs",
                &self.notify_webhook_allow_cidrs,
            ),
            ("notify_retention", &self.notify_retention),
            ("notify_retention_interval", &self.notify_retention_interval),
            ("base_url", &self.base_url),
            ("anonymous_create", &self.anonymous_create),
            ("default_redirect", &self.default_redirect),
            ("forward_query", &self.forward_query),
            ("cache_capacity", &self.cache_capacity),
            ("cache_ttl", &self.cache_ttl),
            ("visit_stats", &self.visit_stats),
            ("body_limit", &self.body_limit),
            ("request_timeout", &self.request_timeout),
            ("shutdown_grace", &self.shutdown_grace),
            ("log_format", &self.log_format),
            ("log_level", &self.log_level),
            ("access_log", &self.access_log),
            ("metrics", &self.metrics),
            ("prefix", &self.prefix),
        ];
        all.iter()
            .filter_map(|(key, value)| value.as_ref().map(|v| (*key, v.clone())))
            .collect()
    }
}

impl Command {
    /// The configuration flags of whichever subcommand was chosen (`bench` has none: it
    /// measures a server and does not read the praxis configuration).
    pub fn flags(&self) -> Option<&ConfigFlags> {
        match self {
            Command::Serve(flags) | Command::Migrate(flags) | Command::Config(flags) => Some(flags),
            Command::Bench(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::config::keys;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_non_secret_key_has_a_documented_flag() {
        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").expect("serve exists");
        for key in keys::KEYS {
            let id = key.name;
            let arg = serve.get_arguments().find(|a| a.get_id() == id);
            if key.secret {
                assert!(arg.is_none(), "secret {id} must have no flag");
                continue;
            }
            let arg = arg.unwrap_or_else(|| panic!("no flag for key {id}"));
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(
                help.contains(&format!("[env: {}]", key.env_var())),
                "help of --{id} must name {}: {help}",
                key.env_var()
            );
        }
    }

    #[test]
    fn flags_map_to_keys() {
        let cli = Cli::try_parse_from([
            "praxis",
            "serve",
            "--listen",
            "0.0.0.0:1",
            "--metrics",
            "--only",
            "shortener",
            "--config",
            "x.toml",
        ])
        .expect("parses");
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
        let mut values = cli.command.flags().expect("serve has flags").values();
        values.sort();
        assert_eq!(
            values,
            vec![
                ("listen", "0.0.0.0:1".to_owned()),
                ("metrics", "true".to_owned()),
                ("only", "shortener".to_owned()),
            ]
        );
        let keys_in_values: Vec<_> = ConfigFlags::default().values();
        assert!(keys_in_values.is_empty());
    }

    #[test]
    fn flag_values_cover_every_flag() {
        // Every flag set must come back from values(), so none is silently ignored.
        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").expect("serve exists");
        let mut argv = vec!["praxis".to_owned(), "serve".to_owned()];
        let mut expected = 0;
        for arg in serve.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "config" || long == "help" {
                continue;
            }
            argv.push(format!("--{long}=v"));
            expected += 1;
        }
        let cli = Cli::try_parse_from(argv).expect("parses");
        assert_eq!(
            cli.command.flags().expect("serve has flags").values().len(),
            expected
        );
    }

    #[test]
    fn keys_help_lists_every_key() {
        let help = keys_help();
        for key in keys::KEYS {
            assert!(help.contains(&key.env_var()), "{}", key.name);
        }
    }

    #[test]
    fn admin_key_is_not_a_flag() {
        assert!(Cli::try_parse_from(["praxis", "serve", "--admin-key", "x"]).is_err());
    }
}

//! The command line: `praxis serve | migrate | config | bench`; `serve`, `migrate` and
//! `config` take one flag per configuration key, generated from the key table (the server's
//! keys and every system's section), so a new key needs no code here.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::keys::{Default as KeyDefault, KeySpec, KeyTable};
use crate::systems::SYSTEMS;

/// praxis: classic distributed-system designs as real, tested services.
#[derive(Debug, Parser)]
#[command(
    name = "praxis",
    version,
    about = "praxis: classic distributed-system designs as real, tested services",
    long_about = "praxis: classic distributed-system designs as real, tested services.\n\n\
        One binary runs every system (today: identity, the URL shortener, the rate-limit \
        decision service, notifications and the news feed). By default it is embedded: an \
        SQLite file under ./data, an in-process cache and an in-process event bus, nothing else \
        to install. Point it at PostgreSQL (database_url), Redis (redis_url) and NATS JetStream \
        (nats_url) and it runs scaled: many processes share them, and `serve --only` runs a \
        subset of the systems per process.\n\n\
        Configuration is layered: built-in defaults < praxis.toml (--config, PRAXIS_CONFIG, or \
        ./praxis.toml when present; one [section] per system) < PRAXIS_* environment variables \
        < command-line flags. \
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

    /// Run the gateway alone: `serve --only gateway`.
    #[command(
        long_about = "Run the load-balancing gateway (docs/gateway.md) alone: the same as \
        `praxis serve --only gateway`, with every flag of serve. The gateway proxies on \
        gateway_listen to the pools and routes of the file named by gateway_routes \
        (PRAXIS_GATEWAY_ROUTES), reloaded when it changes; the API listener serves /healthz, \
        /readyz, /metrics and the gateway's admin routes. --only names other systems to run \
        beside it."
    )]
    Gateway(ConfigFlags),

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

    /// Copy the embedded database (online) and the generated secrets into a new directory.
    #[command(
        long_about = "Back up an embedded (SQLite) deployment while it runs: writes a \
        consistent snapshot of the database (SQLite's VACUUM INTO, which readers and writers \
        do not wait for) as <DIR>/praxis.db, and copies the secrets generated into the data \
        dir (admin.key, jwt.secret, notify-webhook.secret), so access tokens and webhook \
        signatures stay valid after a restore. DIR must not exist. Restore: stop the server and \
        start it with --data-dir DIR (or copy DIR's files into the data dir). Scaled \
        deployments back up PostgreSQL with its own tools (pg_dump, or the provider's \
        snapshots); this command refuses them."
    )]
    Backup(BackupArgs),

    /// List the secrets the server uses, or print one for whoever must hold it too.
    #[command(
        subcommand,
        long_about = "List the secrets the server uses (the admin key, the access tokens' \
        signing secret, each system's own: notify's webhook secret), with where each comes \
        from, or print one on stdout for whoever must hold it too: `praxis secrets show \
        notify-webhook` prints the whsec_... secret webhook receivers verify signatures with \
        (Standard Webhooks libraries take it as is). Reads the same configuration as `serve`; \
        in embedded mode a secret not configured and not yet generated is generated into the \
        data dir now, exactly as the first `serve` would."
    )]
    Secrets(SecretsCommand),

    /// The order shards of a running server: status, add a shard, rebalance, abort, verify.
    #[command(
        long_about = "Operate the order shards (docs/sharding.md) of a running server through \
        its admin routes: `status` shows every region's ring, shards and move in progress \
        (progress, rate, ETA); `add REGION SHARD` and `rebalance REGION --target s1:128,s2:128` \
        begin an online move (or, with --dry-run, say what would move); `abort REGION MOVE` \
        undoes a move before its switch; `verify REGION` checks every document's shard. \
        Reads the same configuration as `serve` for the server's address and the admin key; \
        --url names another server."
    )]
    #[command(subcommand)]
    Shards(ShardsCommand),

    /// Measure a running server with the open-loop load generator (no coordinated omission).
    #[command(
        long_about = "Measure an HTTP endpoint or a scenario (scenarios/*.toml) at a \
        constant arrival rate, wrk2-style: each request is scheduled at its intended time \
        whatever the server does, and latency is measured from that time, so a stalled server \
        shows in the tail. `praxis bench reference` serves a bare axum redirect to measure \
        beside a service; `praxis bench compare A.json B.json` prints the differences. Does \
        not read the praxis configuration."
    )]
    Bench(Box<praxis_bench::BenchArgs>),
}

/// `praxis backup --to DIR`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The directory to create with the backup (must not exist).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// The configuration flags, as for `serve`.
    #[command(flatten)]
    pub flags: ConfigFlags,
}

/// `praxis secrets list` and `praxis secrets show NAME`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// List the secrets and where each comes from (never their values).
    List(ConfigFlags),
    /// Print one secret's value on stdout (NAME: admin-key, jwt-secret, notify-webhook).
    Show {
        /// The secret: its key (`notify_webhook_secret`), with dashes, or without `_secret`.
        name: String,
        /// The configuration flags, as for `serve`.
        #[command(flatten)]
        flags: ConfigFlags,
    },
}

/// Where `praxis shards` finds the server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's base URL (default: http:// and the configured listen address).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The configuration flags, as for `serve`.
    #[command(flatten)]
    pub flags: ConfigFlags,
}

/// `praxis shards ...`.
#[derive(Debug, Subcommand)]
pub enum ShardsCommand {
    /// Every region: its ring version, shards (vnodes, share, orders) and move in progress.
    Status(ServerArgs),
    /// Add a shard to a region and move a share of the orders to it, online.
    Add {
        /// The region.
        region: String,
        /// The new shard's name (a-z 0-9 _).
        shard: String,
        /// Its virtual nodes (default: the server's `[orders] vnodes`).
        #[arg(long)]
        vnodes: Option<u32>,
        /// Say what would move; move nothing.
        #[arg(long)]
        dry_run: bool,
        /// Follow the move until it ends.
        #[arg(long)]
        wait: bool,
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Move a region to a new ring: every shard and its vnodes, `name:vnodes,...`.
    Rebalance {
        /// The region.
        region: String,
        /// The target ring, e.g. `s1:128,s2:128,s3:256`.
        #[arg(long, value_name = "SHARD:VNODES,...")]
        target: String,
        /// Say what would move; move nothing.
        #[arg(long)]
        dry_run: bool,
        /// Follow the move until it ends.
        #[arg(long)]
        wait: bool,
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Undo a move before its switch (the data ends exactly as before).
    Abort {
        /// The region.
        region: String,
        /// The move's id (`mv-...`, from `status`).
        id: String,
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Check that every document of a region is on the shard its ring names.
    Verify {
        /// The region.
        region: String,
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl ShardsCommand {
    /// Where the server is.
    pub fn server(&self) -> &ServerArgs {
        match self {
            ShardsCommand::Status(server)
            | ShardsCommand::Add { server, .. }
            | ShardsCommand::Rebalance { server, .. }
            | ShardsCommand::Abort { server, .. }
            | ShardsCommand::Verify { server, .. } => server,
        }
    }
}

/// One flag per configuration key that is not a secret (secrets come from the environment or
/// a `*_file` key), under each name the key is read by: `--listen`, `--feed-timeline-cap`, and
/// legacy names like `--cache-capacity`. An empty value unsets an optional key.
#[derive(Debug, Clone, Default)]
pub struct ConfigFlags {
    /// The flags that were given, as (flat key name, text).
    pub values: Vec<(String, String)>,
}

/// The flat names every flag is generated for, with the key they set.
fn flag_keys() -> Vec<(String, KeySpec)> {
    let table = KeyTable::new(SYSTEMS);
    table
        .iter()
        .filter(|k| !k.secret)
        .flat_map(|k| k.flat_names().into_iter().map(move |n| (n, k.clone())))
        .collect()
}

fn flag_arg(name: &str, key: &KeySpec) -> Arg {
    let default = match &key.default {
        KeyDefault::Value(v) => format!(" [default: {v}]"),
        KeyDefault::Derived(how) => format!(" [default: {how}]"),
        KeyDefault::Unset(what) => format!(" [unset: {what}]"),
    };
    let envs = key.env_vars().join(", ");
    let arg = Arg::new(name.to_owned())
        .long(name.replace('_', "-"))
        .value_name("VALUE")
        .action(ArgAction::Set)
        .help(format!("{} [env: {envs}]{default}", key.doc));
    if matches!(&key.default, KeyDefault::Value(v) if v == "true" || v == "false") {
        arg.num_args(0..=1).default_missing_value("true")
    } else {
        arg
    }
}

impl Args for ConfigFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(flag_keys().iter().map(|(name, key)| flag_arg(name, key)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for ConfigFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = ConfigFlags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for (name, _) in flag_keys() {
            if let Ok(Some(value)) = matches.try_get_one::<String>(&name) {
                self.values.push((name, value.clone()));
            }
        }
        Ok(())
    }
}

impl Cli {
    /// Parses the process arguments (exits with usage on error), with the key list appended to
    /// `praxis config --help`.
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
    let mut out = String::from(
        "Keys (praxis.toml key, environment variables, flags; a section's keys are also read flat as <section>_<key>):\n",
    );
    for key in KeyTable::new(SYSTEMS).iter() {
        let flags = key.flags();
        let flags = if flags.is_empty() {
            "(no flag: secret)".to_owned()
        } else {
            flags.join(", ")
        };
        let default = match &key.default {
            KeyDefault::Value(v) => format!("default {v}"),
            KeyDefault::Derived(how) => format!("default {how}"),
            KeyDefault::Unset(what) => format!("unset: {what}"),
        };
        let shown = match key.section {
            Some(section) => format!("[{section}] {}", key.name),
            None => key.name.to_owned(),
        };
        out.push_str(&format!(
            "  {shown}  {}  {flags}\n      {}; {default}\n",
            key.env_vars().join(", "),
            key.doc,
        ));
    }
    out
}

impl Command {
    /// The configuration flags of whichever subcommand was chosen (`bench` has none: it
    /// measures a server and does not read the praxis configuration).
    pub fn flags(&self) -> Option<&ConfigFlags> {
        match self {
            Command::Serve(flags)
            | Command::Gateway(flags)
            | Command::Migrate(flags)
            | Command::Config(flags)
            | Command::Backup(BackupArgs { flags, .. })
            | Command::Secrets(SecretsCommand::List(flags))
            | Command::Secrets(SecretsCommand::Show { flags, .. }) => Some(flags),
            Command::Shards(cmd) => Some(&cmd.server().flags),
            Command::Bench(_) => None,
        }
    }

    /// The configuration flags with what the subcommand implies: `gateway` runs only the
    /// gateway unless `--only` says otherwise.
    pub fn effective_flags(&self) -> ConfigFlags {
        let mut flags = self.flags().cloned().unwrap_or_default();
        if matches!(self, Command::Gateway(_)) && !flags.values.iter().any(|(k, _)| k == "only") {
            flags.values.push(("only".to_owned(), "gateway".to_owned()));
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_non_secret_key_has_a_documented_flag() {
        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").expect("serve exists");
        for key in KeyTable::new(SYSTEMS).iter() {
            for name in key.flat_names() {
                let arg = serve.get_arguments().find(|a| a.get_id() == name.as_str());
                if key.secret {
                    assert!(arg.is_none(), "secret {name} must have no flag");
                    continue;
                }
                let arg = arg.unwrap_or_else(|| panic!("no flag for key {name}"));
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(
                    help.contains(&key.env_var()),
                    "help of --{name} must name {}: {help}",
                    key.env_var()
                );
            }
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
            "--feed-timeline-cap",
            "900",
            "--cache-ttl",
            "1m",
            "--config",
            "x.toml",
        ])
        .expect("parses");
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
        let mut values = cli.command.flags().expect("serve has flags").values.clone();
        values.sort();
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            values,
            vec![
                pair("cache_ttl", "1m"),
                pair("feed_timeline_cap", "900"),
                pair("listen", "0.0.0.0:1"),
                pair("metrics", "true"),
                pair("only", "shortener"),
            ]
        );
    }

    #[test]
    fn flag_values_cover_every_flag() {
        // Every flag set must come back in values, so none is silently ignored.
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
            cli.command.flags().expect("serve has flags").values.len(),
            expected
        );
    }

    #[test]
    fn keys_help_lists_every_key() {
        let help = keys_help();
        for key in KeyTable::new(SYSTEMS).iter() {
            assert!(help.contains(&key.env_var()), "{}", key.id());
        }
        assert!(help.contains("[feed] timeline_cap"), "{help}");
    }

    #[test]
    fn the_gateway_command_runs_only_the_gateway_unless_told_otherwise() {
        let only = |argv: &[&str]| {
            let cli = Cli::try_parse_from(argv).expect("parses");
            cli.command
                .effective_flags()
                .values
                .into_iter()
                .filter(|(k, _)| k == "only")
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        assert_eq!(only(&["praxis", "gateway"]), ["gateway"]);
        assert_eq!(
            only(&["praxis", "gateway", "--only", "gateway,chat"]),
            ["gateway,chat"]
        );
        assert!(only(&["praxis", "serve"]).is_empty());
    }

    #[test]
    fn secrets_are_not_flags() {
        assert!(Cli::try_parse_from(["praxis", "serve", "--admin-key", "x"]).is_err());
        assert!(Cli::try_parse_from(["praxis", "serve", "--notify-webhook-secret", "x"]).is_err());
    }
}

//! The orders system's settings: its `[orders]` section.

use std::time::Duration;

use praxis_http::system::{Checks, Key, SettingError};

/// Scope of the order routes for API keys; an account acts for itself without it.
pub const ORDERS_WRITE: &str = "orders:write";

/// Everything the orders system can be tuned with: the `[orders]` section.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersSettings {
    /// The regions (each its own set of shards). A user's home region is one of them.
    pub regions: Vec<String>,
    /// The home region of a user whose first order names none.
    pub default_region: String,
    /// Shards a region starts with, when it has no ring yet.
    pub initial_shards: u32,
    /// Virtual nodes of each shard a region starts with or adds.
    pub vnodes: u32,
    /// Where each shard's database is: a URL with `{region}` and `{shard}` in it. Unset: a
    /// SQLite file per shard under `<data_dir>/shards` when the database is SQLite, a
    /// database per shard beside it (`<name>_<region>_<shard>`, created) on PostgreSQL.
    pub shard_url: Option<String>,
    /// Connections of each shard's pool in each process.
    pub shard_connections: u32,
    /// How often every process reads the rings, whatever the broadcasts say.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub ring_poll: Duration,
    /// Documents a rebalance copies per statement.
    pub move_batch: u32,
    /// Most documents a rebalance copies per second (0: as fast as it can): a throttle that
    /// keeps the copy's load off the shards' live traffic.
    pub move_rate: u32,
    /// How long a process holds a move (or an index's tail) without renewing it; another
    /// process resumes it once it lapses.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub lease: Duration,
    /// One live read in this many is repeated on the shard a move in progress will give
    /// it, and compared (0: no shadow reads).
    pub shadow_every: u32,
    /// How long the scatter report waits for each shard.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub report_timeout: Duration,
    /// Shards the scatter report asks at once.
    pub report_concurrency: u32,
    /// A shard holding more orders than this is over its size: the trigger adds a shard to
    /// its region (0: no trigger).
    pub trigger_documents: u64,
    /// `off`, `dry_run` (report what a trigger would move, move nothing) or `on` (begin the
    /// move).
    pub trigger: String,
    /// How often the trigger looks at the shards' sizes.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub trigger_interval: Duration,
    /// Most items in one page of a listing.
    pub page_max: u32,
}

impl Default for OrdersSettings {
    fn default() -> Self {
        Self {
            regions: vec!["us".to_owned(), "eu".to_owned(), "apac".to_owned()],
            default_region: "us".to_owned(),
            initial_shards: 2,
            vnodes: 128,
            shard_url: None,
            shard_connections: 8,
            ring_poll: Duration::from_millis(250),
            move_batch: 500,
            move_rate: 0,
            lease: Duration::from_secs(5),
            shadow_every: 10,
            report_timeout: Duration::from_secs(2),
            report_concurrency: 4,
            trigger_documents: 0,
            trigger: "off".to_owned(),
            trigger_interval: Duration::from_secs(30),
            page_max: 100,
        }
    }
}

/// Whether `name` may name a region or a shard: 1 to 16 of `a-z 0-9 _`, starting with a
/// letter (it becomes part of a file or database name, and of every order id).
pub fn valid_name(name: &str) -> bool {
    (1..=16).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The documented keys of the `[orders]` section.
pub const KEYS: &[Key] = &[
    Key::new(
        "regions",
        "the regions, each with its own shards (names of a-z 0-9 _, e.g. [\"us\", \"eu\", \"apac\"])",
    ),
    Key::new(
        "default_region",
        "home region of a user whose first order names none (one of regions)",
    ),
    Key::new(
        "initial_shards",
        "shards a region starts with when it has no ring (1 to 64)",
    ),
    Key::new("vnodes", "virtual nodes per shard (1 to 4096)"),
    Key::new(
        "shard_url",
        "a URL template with {region} and {shard} for each shard's database",
    )
    .unset("SQLite files under <data_dir>/shards, or databases beside a PostgreSQL database"),
    Key::new(
        "shard_connections",
        "connections of each shard's pool in each process (1 to 100)",
    ),
    Key::new(
        "ring_poll",
        "how often every process reads the rings whatever the broadcasts say (50ms to 1s)",
    ),
    Key::new(
        "move_batch",
        "documents a rebalance copies per statement (1 to 10000)",
    ),
    Key::new(
        "move_rate",
        "most documents a rebalance copies per second (0: no limit)",
    ),
    Key::new(
        "lease",
        "how long a process holds a move or an index tail without renewing it (1s to 1m)",
    ),
    Key::new(
        "shadow_every",
        "one read in this many is repeated on the target of a move in progress (0: none)",
    ),
    Key::new(
        "report_timeout",
        "how long the scatter report waits for each shard (10ms to 1m)",
    ),
    Key::new(
        "report_concurrency",
        "shards the scatter report asks at once (1 to 64)",
    ),
    Key::new(
        "trigger_documents",
        "documents on a shard above which the trigger adds a shard (0: no trigger)",
    ),
    Key::new(
        "trigger",
        "off, dry_run (say what it would move) or on (begin the move)",
    ),
    Key::new(
        "trigger_interval",
        "how often the trigger looks at the shards' sizes (100ms to 1h)",
    ),
    Key::new("page_max", "most items in one page (1 to 1000)"),
];

fn within(d: Duration, min: Duration, max: Duration) -> bool {
    (min..=max).contains(&d)
}

impl praxis_http::system::Settings for OrdersSettings {
    fn validate(&self) -> Result<(), Vec<SettingError>> {
        const MS: Duration = Duration::from_millis(1);
        const SEC: Duration = Duration::from_secs(1);
        let mut c = Checks::new();
        c.require(
            !self.regions.is_empty() && self.regions.len() <= 16,
            "regions",
            "must name 1 to 16 regions (e.g. [\"us\", \"eu\", \"apac\"])",
        );
        for region in &self.regions {
            c.require(
                valid_name(region),
                "regions",
                format!("{region:?} must be 1 to 16 of a-z 0-9 _, starting with a letter"),
            );
        }
        let mut unique = self.regions.clone();
        unique.sort();
        unique.dedup();
        c.require(
            unique.len() == self.regions.len(),
            "regions",
            "must not name a region twice",
        );
        c.require(
            self.regions.contains(&self.default_region),
            "default_region",
            format!("must be one of regions ({})", self.regions.join(", ")),
        );
        c.require(
            (1..=64).contains(&self.initial_shards),
            "initial_shards",
            "must be from 1 to 64",
        );
        c.require(
            (1..=praxis_kit::ring::MAX_VNODES).contains(&self.vnodes),
            "vnodes",
            "must be from 1 to 4096 (e.g. 128)",
        );
        if let Some(url) = &self.shard_url {
            c.require(
                url.contains("{shard}") && url.contains("{region}"),
                "shard_url",
                "must contain {region} and {shard} (e.g. postgres://db/orders_{region}_{shard})",
            );
        }
        c.require(
            (1..=100).contains(&self.shard_connections),
            "shard_connections",
            "must be from 1 to 100",
        );
        c.require(
            within(self.ring_poll, 50 * MS, SEC),
            "ring_poll",
            "must be from 50ms to 1s: a ring change must reach every process within a second",
        );
        c.require(
            (1..=10_000).contains(&self.move_batch),
            "move_batch",
            "must be from 1 to 10000",
        );
        c.require(
            within(self.lease, SEC, 60 * SEC),
            "lease",
            "must be from 1s to 1m (e.g. 5s)",
        );
        c.require(
            within(self.report_timeout, 10 * MS, 60 * SEC),
            "report_timeout",
            "must be from 10ms to 1m (e.g. 2s)",
        );
        c.require(
            (1..=64).contains(&self.report_concurrency),
            "report_concurrency",
            "must be from 1 to 64",
        );
        c.require(
            matches!(self.trigger.as_str(), "off" | "dry_run" | "on"),
            "trigger",
            "must be off, dry_run or on",
        );
        c.require(
            within(self.trigger_interval, 100 * MS, 3600 * SEC),
            "trigger_interval",
            "must be from 100ms to 1h (e.g. 30s)",
        );
        c.require(
            (1..=1_000).contains(&self.page_max),
            "page_max",
            "must be from 1 to 1000",
        );
        c.finish()
    }
}

//! The platform: every adapter a system needs, chosen from configuration alone.
//!
//! Embedded (no `redis_url`, no `nats_url`): SQLite (or whatever `database_url` says), in-process
//! caches, in-process broadcast, outbox bus dispatched in-process, blobs in `<data_dir>/blobs`.
//! Scaled: Redis adds the cache L2 (and broadcast if there is no NATS), NATS adds broadcast and
//! the JetStream bus, an `s3://` `blobs_url` puts blobs in a bucket.
//! Systems receive a [`Platform`] and never branch on the mode.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::InfraError;
use crate::blobs::Blobs;
use crate::broadcast::Broadcaster;
use crate::bus::{self, Bus, BusOptions};
use crate::cache::CacheFactory;
use crate::ratelimit::Limiter;
use crate::sql::{Db, DbOptions, redact};
use crate::tls::TrustPolicy;

/// Where the platform's dependencies are.
#[derive(Clone, Debug)]
pub struct PlatformConfig {
    /// `sqlite:///abs/path.db`, `sqlite://rel.db` or `postgres://...`.
    pub database_url: String,
    /// `redis://...` or `rediss://...` (TLS): enables the shared cache L2 (and broadcast when
    /// NATS is not set).
    pub redis_url: Option<String>,
    /// `nats://...` or `tls://...` (JetStream enabled): enables the JetStream bus and NATS
    /// broadcast.
    pub nats_url: Option<String>,
    /// A PEM file of CA certificates that TLS connections trust in addition to the OS store
    /// (the [trust policy](crate::tls::TrustPolicy) of every client: PostgreSQL, Redis, NATS,
    /// and what systems build from [`Platform::tls`]).
    pub tls_ca_file: Option<PathBuf>,
    /// The blob store: `s3://BUCKET[/PREFIX]?endpoint=..&region=..&part_size=..` (credentials
    /// from the `AWS_*` environment variables) or `file:///ABS/DIR`; `None`: a local folder,
    /// `<data_dir>/blobs`. See [`crate::blobs`].
    pub blobs_url: Option<String>,
    /// Directory for local state (created if missing).
    pub data_dir: PathBuf,
    /// Namespace of Redis keys, NATS subjects and stream names, e.g. `"praxis"`.
    pub prefix: String,
}

/// Tuning that is not part of the user-facing configuration.
#[derive(Clone, Debug, Default)]
pub struct PlatformOptions {
    /// Database pool settings (their `trust` is replaced by the platform's trust policy, built
    /// from [`PlatformConfig::tls_ca_file`]).
    pub db: DbOptions,
    /// Bus tuning.
    pub bus: BusOptions,
}

/// Health of one dependency, as reported by `/readyz`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DependencyStatus {
    /// `"db"`, `"redis"`, `"nats"` or `"blobs"`.
    pub name: String,
    /// Whether it answered.
    pub ok: bool,
    /// Backend kind when ok, the error otherwise.
    pub detail: String,
}

/// Every adapter a system needs. Cheap to clone.
#[derive(Clone)]
pub struct Platform {
    /// SQL database (its outbox included).
    pub db: Db,
    /// Event bus (embedded or JetStream).
    pub bus: Bus,
    /// Factory of named caches (L1, plus Redis L2 when configured).
    pub caches: CacheFactory,
    /// Fan-out to every process.
    pub broadcaster: Broadcaster,
    /// Rate limiter: shared through Redis when `redis_url` is set, in-process otherwise.
    pub limiter: Limiter,
    /// The blob store: an S3-compatible bucket when `blobs_url` names one, a local folder
    /// otherwise.
    pub blobs: Blobs,
    /// Directory for local state.
    pub data_dir: PathBuf,
    /// Cancelled first when the process shuts down: systems stop their background work and
    /// flush their buffers (the bus still accepts events until [`Platform::close`] drains it).
    pub shutdown: CancellationToken,
    /// Systems spawn their background tasks here; [`Platform::close`] waits for them before it
    /// drains the bus, so what they flush at shutdown is delivered.
    pub tasks: TaskTracker,
    bus_shutdown: CancellationToken,
    /// Identity of this process in logs and broadcasts.
    pub instance_id: String,
    /// The trust policy of outgoing TLS connections (the OS store plus `tls_ca_file`): systems
    /// build their HTTP and SMTP clients with it rather than reading certificates themselves.
    pub tls: TrustPolicy,
    redis: Option<redis::aio::ConnectionManager>,
    nats: Option<async_nats::Client>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("backend", &self.db.backend())
            .field("bus", &self.bus)
            .field("broadcaster", &self.broadcaster)
            .field("redis", &self.redis.is_some())
            .field("blobs", &self.blobs)
            .field("instance_id", &self.instance_id)
            .finish()
    }
}

impl Platform {
    /// Connects every configured dependency and runs the bus migrations. Embedded when
    /// `redis_url` and `nats_url` are unset.
    pub async fn connect(cfg: &PlatformConfig) -> Result<Platform, InfraError> {
        Platform::connect_with(cfg, &PlatformOptions::default()).await
    }

    /// [`Platform::connect`] with explicit tuning.
    pub async fn connect_with(
        cfg: &PlatformConfig,
        opts: &PlatformOptions,
    ) -> Result<Platform, InfraError> {
        crate::util::check_name("prefix", &cfg.prefix)?;
        tokio::fs::create_dir_all(&cfg.data_dir)
            .await
            .map_err(|e| {
                InfraError::Config(format!(
                    "data_dir {}: cannot create it: {e}",
                    cfg.data_dir.display()
                ))
            })?;
        crate::tls::install_crypto_provider();
        let tls = TrustPolicy::load(cfg.tls_ca_file.as_deref())?;
        let shutdown = CancellationToken::new();
        let bus_shutdown = CancellationToken::new();
        let db_opts = DbOptions {
            trust: tls.clone(),
            ..opts.db.clone()
        };
        let db = Db::connect_with(&cfg.database_url, &db_opts).await?;
        db.migrate(&bus::MIGRATIONS).await?;

        let redis = match &cfg.redis_url {
            Some(url) => {
                let conn = crate::redis_conn::connect_with(url, &tls).await;
                Some(conn.inspect_err(|e| {
                    tracing::error!(redis_url = %redact(url), error = %e, "redis unreachable");
                })?)
            }
            None => None,
        };
        let nats = match &cfg.nats_url {
            Some(url) => Some(connect_nats(url, &cfg.prefix, &tls).await?),
            None => None,
        };
        let broadcaster = match (&nats, &cfg.redis_url) {
            (Some(client), _) => Broadcaster::nats(client.clone(), &cfg.prefix).await?,
            (None, Some(url)) => Broadcaster::redis(url, &cfg.prefix, &tls).await?,
            (None, None) => Broadcaster::local(),
        };
        let bus = match &nats {
            Some(client) => {
                Bus::nats_with(
                    db.clone(),
                    client.clone(),
                    &cfg.prefix,
                    bus_shutdown.clone(),
                    opts.bus.clone(),
                )
                .await?
            }
            None => Bus::embedded_with(db.clone(), bus_shutdown.clone(), opts.bus.clone()).await?,
        };
        let limiter = match &redis {
            Some(conn) => Limiter::redis(conn.clone(), &cfg.prefix),
            None => Limiter::local(),
        };
        let blobs = connect_blobs(cfg, &tls).await?;
        let caches = CacheFactory::new(redis.clone(), broadcaster.clone(), &cfg.prefix);
        let instance_id = broadcaster.instance_id().simple().to_string();
        tracing::info!(backend = db.backend().name(), bus = bus.kind(), broadcast = broadcaster.kind(),
            cache_l2 = redis.is_some(), blobs = %blobs.describe(), instance_id = %instance_id, "platform connected");
        Ok(Platform {
            db,
            bus,
            caches,
            broadcaster,
            limiter,
            blobs,
            data_dir: cfg.data_dir.clone(),
            shutdown,
            tasks: TaskTracker::new(),
            bus_shutdown,
            instance_id,
            tls,
            redis,
            nats,
        })
    }

    /// Checks each dependency: `db` and `blobs` always, `redis` and `nats` when configured.
    pub async fn readiness(&self) -> Vec<DependencyStatus> {
        const LIMIT: Duration = Duration::from_secs(2);
        let mut out = Vec::with_capacity(4);
        let db = tokio::time::timeout(LIMIT, self.db.ping()).await;
        out.push(status("db", self.db.backend().name(), flatten(db)));
        if let Some(conn) = &self.redis {
            let mut conn = conn.clone();
            let ping = tokio::time::timeout(LIMIT, async move {
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(InfraError::from)
            })
            .await;
            out.push(status("redis", "redis", flatten(ping)));
        }
        if let Some(client) = &self.nats {
            let state = client.connection_state();
            let result = match state {
                async_nats::connection::State::Connected => Ok(()),
                other => Err(InfraError::Nats {
                    message: format!("connection {other}"),
                    transient: true,
                }),
            };
            out.push(status("nats", self.bus.kind(), result));
        }
        let blobs = tokio::time::timeout(LIMIT, self.blobs.check()).await;
        out.push(status("blobs", self.blobs.kind(), flatten(blobs)));
        out
    }

    /// Graceful stop, in order: cancels `shutdown` so systems stop and flush their buffers,
    /// waits (up to `drain`) for the tasks they spawned on `tasks`, lets the bus drain what
    /// they published (up to `drain`), stops the bus, and closes the pool.
    pub async fn close(&self, drain: Duration) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(drain, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.tasks.len(),
                "system tasks still running at shutdown"
            );
        }
        if let Err(e) = self.bus.flush(drain).await {
            tracing::warn!(error = %e, "bus not drained before shutdown; pending events are delivered after the next start");
        }
        self.bus_shutdown.cancel();
        if !self.bus.join(drain.min(Duration::from_secs(5))).await {
            tracing::warn!("bus tasks still running at shutdown");
        }
        if let Some(client) = &self.nats
            && let Err(e) = client.flush().await
        {
            tracing::debug!(error = %e, "nats flush at shutdown failed");
        }
        self.db.close().await;
        tracing::info!(instance_id = %self.instance_id, "platform closed");
    }

    /// The NATS client, when configured (for systems that need core NATS directly).
    pub fn nats_client(&self) -> Option<&async_nats::Client> {
        self.nats.as_ref()
    }

    /// The Redis connection, when configured (for ephemeral state such as rate-limit counters).
    pub fn redis(&self) -> Option<&redis::aio::ConnectionManager> {
        self.redis.as_ref()
    }
}

/// Opens the blob store of `blobs_url` (or `<data_dir>/blobs`) and checks that it answers, so a
/// wrong bucket, endpoint or credential fails the start rather than the first upload.
async fn connect_blobs(cfg: &PlatformConfig, tls: &TrustPolicy) -> Result<Blobs, InfraError> {
    let blobs = match &cfg.blobs_url {
        Some(url) => Blobs::open(url, tls).await?,
        None => Blobs::local(&cfg.data_dir.join("blobs"))?,
    };
    match tokio::time::timeout(Duration::from_secs(15), blobs.check()).await {
        Ok(Ok(())) => Ok(blobs),
        Ok(Err(e)) => {
            tracing::error!(blobs_url = %blobs.describe(), error = %e, "blob store unreachable");
            Err(e)
        }
        Err(_) => Err(InfraError::Blob(format!(
            "blobs_url {}: no answer within 15s; check the endpoint",
            blobs.describe()
        ))),
    }
}

/// Connects to NATS; a `tls://` URL (or a server that requires TLS) is checked against `trust`.
async fn connect_nats(
    url: &str,
    prefix: &str,
    trust: &TrustPolicy,
) -> Result<async_nats::Client, InfraError> {
    async_nats::ConnectOptions::new()
        .name(format!("praxis-{prefix}"))
        .connection_timeout(Duration::from_secs(5))
        .tls_client_config(trust.client_config())
        .connect(url)
        .await
        .map_err(|e| {
            let what = format!("nats_url {}", redact(url));
            trust
                .explain(&what, &e)
                .unwrap_or_else(|| InfraError::nats(&format!("connect to {what}"), e))
        })
}

fn flatten(
    r: Result<Result<(), InfraError>, tokio::time::error::Elapsed>,
) -> Result<(), InfraError> {
    match r {
        Ok(inner) => inner,
        Err(_) => Err(InfraError::Timeout("no answer within 2s".into())),
    }
}

fn status(name: &str, kind: &str, result: Result<(), InfraError>) -> DependencyStatus {
    match result {
        Ok(()) => DependencyStatus {
            name: name.to_string(),
            ok: true,
            detail: kind.to_string(),
        },
        Err(e) => DependencyStatus {
            name: name.to_string(),
            ok: false,
            detail: e.to_string(),
        },
    }
}

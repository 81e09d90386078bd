//! The platform harness: a fresh platform per test (embedded or scaled), a second process on
//! the same data, and a restart on the same data. Platforms in, platforms out: systems are
//! started on [`TestBackend::platform`] by their suites.

use std::sync::Arc;
use std::time::Duration;

use praxis_infra::bus::{Bus, BusOptions};
use praxis_infra::platform::PlatformOptions;
use praxis_infra::sql::DbOptions;
use praxis_infra::{InfraError, Platform, PlatformConfig};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::services::{self, TestDatabase};

/// Which backend a test of the [`backend_matrix!`](crate::backend_matrix) runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SQLite temp file, in-process cache, broadcaster, bus and limiter, blobs in a local folder.
    Embedded,
    /// PostgreSQL database of its own, Redis, NATS JetStream and the S3 test bucket under a
    /// prefix of its own.
    Scaled,
}

impl Kind {
    /// The services of this kind of backend.
    pub fn services(self) -> Services {
        match self {
            Kind::Embedded => Services::EMBEDDED,
            Kind::Scaled => Services::SCALED,
        }
    }

    /// A fresh backend of this kind.
    pub async fn start(self) -> TestBackend {
        self.services().start().await
    }
}

/// Which services a test platform is configured with. The platform picks its adapters from
/// them as in production: PostgreSQL or SQLite; with NATS, the JetStream bus and the NATS
/// broadcaster; with Redis (and no NATS), the Redis broadcaster; with Redis, the L2 cache and
/// the shared limiter; otherwise the in-process ones and the outbox bus; with S3, blobs in the
/// test bucket, otherwise in a local folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Services {
    /// A PostgreSQL database of its own (else a SQLite temp file).
    pub postgres: bool,
    /// Redis under a key prefix of its own.
    pub redis: bool,
    /// NATS JetStream under a subject/stream prefix of its own.
    pub nats: bool,
    /// Blobs in the S3 test bucket under a key prefix of its own (else a local folder).
    pub s3: bool,
}

impl Services {
    /// SQLite and nothing else: every adapter in-process.
    pub const EMBEDDED: Services = Services {
        postgres: false,
        redis: false,
        nats: false,
        s3: false,
    };
    /// PostgreSQL, Redis, NATS and S3: the production deployment.
    pub const SCALED: Services = Services {
        postgres: true,
        redis: true,
        nats: true,
        s3: true,
    };

    /// A fresh backend with these services (or a panic naming the unreachable one).
    pub async fn start(self) -> TestBackend {
        let (config, data) = self.prepare().await;
        TestBackend::connect(self, config, data).await
    }

    /// Two "processes" on one fresh backend with these services (one database, Redis prefix
    /// and NATS prefix), started concurrently as a real deployment would.
    /// On SQLite (two processes of one machine sharing a file) the second starts after the
    /// first: a SQLite file takes one migrating writer at a time, and a concurrent start would
    /// fail with "database is locked" instead of waiting.
    pub async fn pair(self) -> (TestBackend, TestBackend) {
        let (config, data) = self.prepare().await;
        if !self.postgres {
            let first = TestBackend::connect(self, config.clone(), data.clone()).await;
            let second = TestBackend::connect(self, config, data).await;
            return (first, second);
        }
        tokio::join!(
            TestBackend::connect(self, config.clone(), data.clone()),
            TestBackend::connect(self, config, data)
        )
    }

    async fn prepare(self) -> (PlatformConfig, Arc<Data>) {
        let dir = temp_dir();
        let database = match self.postgres {
            true => Some(TestDatabase::create().await),
            false => None,
        };
        // Fail here, naming the variable, rather than inside the platform.
        if self.redis {
            services::redis().await;
        }
        if self.nats {
            services::nats().await;
        }
        if self.s3 {
            services::s3_check().await;
        }
        let prefix = services::unique_prefix();
        let config = PlatformConfig {
            database_url: database
                .as_ref()
                .map_or_else(|| services::sqlite_url(dir.path()), |d| d.url.clone()),
            redis_url: self.redis.then(services::redis_url),
            nats_url: self.nats.then(services::nats_url),
            tls_ca_file: None,
            blobs_url: self.s3.then(|| services::s3_test_url(&prefix, None)),
            data_dir: dir.path().join("data"),
            prefix,
        };
        let data = Data {
            _dir: dir,
            _database: database,
        };
        (config, Arc::new(data))
    }
}

/// A platform for one test, with what keeps its data alive. Dropping it cancels the
/// platform's shutdown token; the data goes with the last backend on it.
pub struct TestBackend {
    /// `"sqlite"` (embedded) or `"postgres"` (scaled).
    pub name: &'static str,
    /// The services it runs with (start a sibling with [`Services::start`]).
    pub services: Services,
    /// The platform under test.
    pub platform: Platform,
    /// The configuration it was built from (the same for another process or a restart).
    pub config: PlatformConfig,
    data: Arc<Data>,
}

/// What a backend's data lives in: a temporary directory, and the scaled database.
struct Data {
    _dir: TempDir,
    _database: Option<TestDatabase>,
}

impl std::fmt::Debug for TestBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBackend")
            .field("name", &self.name)
            .field("platform", &self.platform)
            .finish()
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.platform.shutdown.cancel();
    }
}

/// Bus tuning for tests: fast polling and retries, streams that expire after 10 minutes.
pub fn bus_options() -> BusOptions {
    BusOptions {
        poll_interval: Duration::from_millis(50),
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(500),
        lease: Duration::from_secs(5),
        prune_interval: Duration::from_millis(500),
        stream_max_age: Duration::from_secs(600),
        ack_wait: Duration::from_secs(10),
        ..BusOptions::default()
    }
}

/// Platform tuning for tests: a small pool, [`bus_options`].
pub fn platform_options() -> PlatformOptions {
    PlatformOptions {
        db: DbOptions {
            max_connections: 5,
            ..DbOptions::default()
        },
        bus: bus_options(),
    }
}

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("praxis-test-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"))
}

/// Embedded platform: SQLite temp file, local broadcaster, in-process bus.
pub async fn embedded() -> TestBackend {
    Services::EMBEDDED.start().await
}

/// Scaled platform: fresh PostgreSQL database, Redis, NATS and S3 with a unique prefix.
pub async fn scaled() -> TestBackend {
    Services::SCALED.start().await
}

/// Two scaled "processes" on one fresh database, Redis prefix, NATS prefix and S3 prefix.
pub async fn scaled_pair() -> (TestBackend, TestBackend) {
    Services::SCALED.pair().await
}

impl TestBackend {
    async fn connect(services: Services, config: PlatformConfig, data: Arc<Data>) -> TestBackend {
        let name = if services.postgres {
            "postgres"
        } else {
            "sqlite"
        };
        let platform = Platform::connect_with(&config, &platform_options())
            .await
            .unwrap_or_else(|e| panic!("{services:?} test platform failed to start: {e}"));
        TestBackend {
            name,
            services,
            platform,
            config,
            data,
        }
    }

    /// A second process on the same data: a new platform (its own instance id) on the same
    /// database, data dir, Redis prefix, NATS prefix and blob store.
    pub async fn another_process(&self) -> TestBackend {
        Self::connect(self.services, self.config.clone(), self.data.clone()).await
    }

    /// Stops this process gracefully and starts a new one on the same data.
    pub async fn restart(self) -> TestBackend {
        self.platform.close(Duration::from_secs(5)).await;
        self.another_process().await
    }

    /// A second bus on this backend's database and prefix, as a restarted process would build
    /// it (embedded or JetStream, like the platform's).
    pub async fn new_bus(&self, shutdown: CancellationToken) -> Result<Bus, InfraError> {
        let db = self.platform.db.clone();
        match self.platform.nats_client() {
            Some(client) => {
                Bus::nats_with(
                    db,
                    client.clone(),
                    &self.config.prefix,
                    shutdown,
                    bus_options(),
                )
                .await
            }
            None => Bus::embedded_with(db, shutdown, bus_options()).await,
        }
    }
}

//! Every port's conformance suite on every adapter. The platform picks its adapters from the
//! services it is given, as in production; each test first checks that it picked the adapter
//! the test is named after.

use praxis_testkit::Services;
use praxis_testkit::conformance::blobs::BlobsUnderTest;
use praxis_testkit::conformance::ratelimit::LimiterUnderTest;
use praxis_testkit::conformance::{blobs, broadcast, bus, cache, ratelimit, sql};

/// PostgreSQL and Redis without NATS: the outbox bus on PostgreSQL, the Redis broadcaster.
const POSTGRES_REDIS: Services = Services {
    postgres: true,
    redis: true,
    nats: false,
    s3: false,
};

/// SQLite and NATS: the JetStream bus relayed from a SQLite outbox.
const SQLITE_NATS: Services = Services {
    postgres: false,
    redis: false,
    nats: true,
    s3: false,
};

/// Asserts that a platform of `services` picks the bus, broadcaster and cache named.
async fn picks(services: Services, bus: &str, broadcaster: &str, l2: bool) {
    let t = services.start().await;
    let p = &t.platform;
    assert_eq!(
        (p.bus.kind(), p.broadcaster.kind(), p.caches.has_l2()),
        (bus, broadcaster, l2),
        "adapters picked for {services:?}"
    );
}

macro_rules! adapter_tests {
    ($($test:ident: $services:expr, ($bus:literal, $broadcaster:literal, $l2:literal) => $suite:path;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() -> anyhow::Result<()> {
                picks($services, $bus, $broadcaster, $l2).await;
                $suite($services).await
            }
        )*
    };
}

adapter_tests! {
    sql_on_sqlite: Services::EMBEDDED, ("embedded", "local", false) => sql::suite;
    sql_on_postgres: Services::SCALED, ("nats", "nats", true) => sql::suite;
    cache_l1_only: Services::EMBEDDED, ("embedded", "local", false) => cache::suite;
    cache_l2_invalidated_over_nats: Services::SCALED, ("nats", "nats", true) => cache::suite;
    cache_l2_invalidated_over_redis: POSTGRES_REDIS, ("embedded", "redis", true) => cache::suite;
    broadcast_local: Services::EMBEDDED, ("embedded", "local", false) => broadcast::suite;
    broadcast_nats: Services::SCALED, ("nats", "nats", true) => broadcast::suite;
    broadcast_redis: POSTGRES_REDIS, ("embedded", "redis", true) => broadcast::suite;
    bus_outbox_on_sqlite: Services::EMBEDDED, ("embedded", "local", false) => bus::suite;
    bus_outbox_on_postgres: POSTGRES_REDIS, ("embedded", "redis", true) => bus::suite;
    bus_jetstream_on_postgres: Services::SCALED, ("nats", "nats", true) => bus::suite;
    bus_jetstream_on_sqlite: SQLITE_NATS, ("nats", "nats", false) => bus::suite;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratelimit_local() -> anyhow::Result<()> {
    ratelimit::suite(async || LimiterUnderTest::local()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratelimit_redis() -> anyhow::Result<()> {
    ratelimit::suite(LimiterUnderTest::redis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_local() -> anyhow::Result<()> {
    blobs::suite(async || BlobsUnderTest::local()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_s3() -> anyhow::Result<()> {
    blobs::suite(BlobsUnderTest::s3).await
}

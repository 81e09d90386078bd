//! Platform: mode chosen from configuration, readiness per dependency, graceful close,
//! and errors that name what to fix.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use praxis_infra::bus::Event;
use praxis_infra::ratelimit::{Algorithm, OnStoreFailure, Source};
use praxis_infra::{Db, InfraError, Platform, PlatformConfig};
use praxis_testkit::TestBackend;
use praxis_testkit::conformance::ratelimit::rule;
use praxis_testkit::services;

praxis_testkit::backend_matrix!(
    praxis_testkit::matrix::with_backend,
    crate::platform: [
        readiness_reports_each_dependency,
        close_drains_the_bus,
        platform_limiter_follows_the_mode,
    ]
);

async fn readiness_reports_each_dependency(t: TestBackend) -> anyhow::Result<()> {
    let report = t.platform.readiness().await;
    let names: Vec<&str> = report.iter().map(|d| d.name.as_str()).collect();
    match t.name {
        "sqlite" => {
            assert_eq!(names, ["db", "blobs"]);
            assert_eq!(t.platform.blobs.kind(), "local");
            assert_eq!(
                (t.platform.bus.kind(), t.platform.broadcaster.kind()),
                ("embedded", "local")
            );
            assert!(!t.platform.caches.has_l2());
        }
        _ => {
            assert_eq!(names, ["db", "redis", "nats", "blobs"]);
            assert_eq!(t.platform.blobs.kind(), "s3");
            assert_eq!(
                (t.platform.bus.kind(), t.platform.broadcaster.kind()),
                ("nats", "nats")
            );
            assert!(t.platform.caches.has_l2());
        }
    }
    assert!(report.iter().all(|d| d.ok), "{report:?}");
    assert_eq!(report[0].detail, t.name);
    assert_eq!(report[report.len() - 1].detail, t.platform.blobs.kind());
    Ok(())
}

async fn close_drains_the_bus(t: TestBackend) -> anyhow::Result<()> {
    let handled = Arc::new(AtomicUsize::new(0));
    {
        let handled = handled.clone();
        t.platform
            .bus
            .subscribe("conf.close", "g", move |_e: Event| {
                let handled = handled.clone();
                async move {
                    handled.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })?;
    }
    for i in 0..5 {
        t.platform
            .bus
            .publish("conf.close", "k", format!("{i}").as_bytes())
            .await?;
    }
    t.platform.close(Duration::from_secs(10)).await;
    assert!(t.platform.shutdown.is_cancelled());
    if t.name == "sqlite" {
        // Embedded: close waited until every subscribed group handled everything.
        assert_eq!(handled.load(Ordering::SeqCst), 5);
    } else {
        // Scaled: close waited until the outbox was relayed; a new process consumes the rest.
        let db = Db::connect(&t.config.database_url).await?;
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM praxis_outbox")
            .fetch_one(db.pool())
            .await?;
        assert_eq!(left, 0);
    }
    assert!(t.platform.db.ping().await.is_err(), "pool closed");
    Ok(())
}

fn config(dir: &std::path::Path) -> PlatformConfig {
    PlatformConfig {
        database_url: services::sqlite_url(dir),
        redis_url: None,
        nats_url: None,
        tls_ca_file: None,
        blobs_url: None,
        data_dir: dir.join("data"),
        prefix: "praxis".into(),
    }
}

#[tokio::test]
async fn configuration_errors_name_the_setting() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bad_db = PlatformConfig {
        database_url: "mysql://localhost/x".into(),
        ..config(dir.path())
    };
    let err = Platform::connect(&bad_db)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("mysql accepted"))?;
    assert!(
        matches!(err, InfraError::Config(_)) && err.to_string().contains("database_url"),
        "{err}"
    );

    let bad_prefix = PlatformConfig {
        prefix: "no spaces".into(),
        ..config(dir.path())
    };
    let err = Platform::connect(&bad_prefix)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("bad prefix accepted"))?;
    assert!(err.to_string().contains("prefix"), "{err}");

    let no_redis = PlatformConfig {
        redis_url: Some("redis://127.0.0.1:1".into()),
        ..config(dir.path())
    };
    let err = Platform::connect(&no_redis)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("dead redis accepted"))?;
    assert!(
        matches!(err, InfraError::Redis(_)) && err.is_transient(),
        "{err}"
    );

    let no_nats = PlatformConfig {
        nats_url: Some("nats://127.0.0.1:1".into()),
        ..config(dir.path())
    };
    let err = Platform::connect(&no_nats)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("dead nats accepted"))?;
    assert!(
        matches!(err, InfraError::Nats { .. }) && err.to_string().contains("nats_url"),
        "{err}"
    );

    let bad_blobs = PlatformConfig {
        blobs_url: Some("s3://bucket?part_size=1".into()),
        ..config(dir.path())
    };
    let err = Platform::connect(&bad_blobs)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("part_size=1 accepted"))?;
    assert!(
        matches!(err, InfraError::Blob(_)) && err.to_string().contains("blobs_url"),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_creates_its_files() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = PlatformConfig {
        database_url: format!(
            "sqlite://{}",
            dir.path().join("nested/dir/praxis.db").display()
        ),
        ..config(dir.path())
    };
    let platform = Platform::connect(&cfg).await?;
    assert!(dir.path().join("nested/dir/praxis.db").is_file());
    assert!(cfg.data_dir.is_dir());
    assert!(cfg.data_dir.join("blobs").is_dir(), "the local blob folder");
    assert_eq!(platform.blobs.kind(), "local");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(platform.db.pool())
        .await?;
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(platform.db.pool())
        .await?;
    assert_eq!(fk, 1);
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(platform.db.pool())
        .await?;
    assert_eq!(sync, 1, "synchronous=NORMAL");
    platform.close(Duration::from_secs(1)).await;
    Ok(())
}

/// The platform builds a shared limiter when it has Redis, an in-process one otherwise.
async fn platform_limiter_follows_the_mode(t: TestBackend) -> anyhow::Result<()> {
    let limiter = &t.platform.limiter;
    let rule = rule(Algorithm::Gcra, 2, Duration::from_secs(60))?;
    let v = limiter
        .check("platform", &rule, 1, OnStoreFailure::Closed)
        .await;
    assert!(v.decision.allowed);
    match t.name {
        "sqlite" => {
            assert!(!limiter.is_shared());
            assert_eq!(v.source, Source::Local);
        }
        _ => {
            assert!(limiter.is_shared());
            assert_eq!(v.source, Source::Shared);
        }
    }
    Ok(())
}

//! TLS to the managed engines, against the TLS servers scripts/test starts with a CA made for
//! the run (a private CA, not in the OS store): with `tls_ca_file` naming that CA, the platform
//! connects to PostgreSQL (`sslmode=verify-full`), Redis (`rediss://`) and NATS (`tls://`) and
//! does real work on each; with the OS store alone, each connection fails naming the setting.

use std::time::Duration;

use bytes::Bytes;
use praxis_infra::{InfraError, Platform, PlatformConfig};
use praxis_testkit::backend::platform_options;
use praxis_testkit::conformance::broadcast::recv;
use praxis_testkit::conformance::bus::Seen;
use praxis_testkit::services::{self, TlsServices};

/// A platform configuration on the TLS servers `tls` chooses, with `ca_file`.
fn config(
    dir: &std::path::Path,
    database_url: String,
    redis_url: Option<String>,
    nats_url: Option<String>,
    ca_file: Option<&TlsServices>,
) -> PlatformConfig {
    PlatformConfig {
        database_url,
        redis_url,
        nats_url,
        tls_ca_file: ca_file.map(|t| t.ca_file.clone()),
        blobs_url: None,
        data_dir: dir.join("data"),
        prefix: services::unique_prefix(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_works_over_tls_with_the_ca_file() -> anyhow::Result<()> {
    let tls = services::tls();
    let database = tls.database().await;
    let dir = tempfile::tempdir()?;
    let cfg = config(
        dir.path(),
        database.url.clone(),
        Some(tls.redis_url.clone()),
        Some(tls.nats_url.clone()),
        Some(&tls),
    );
    let platform = Platform::connect_with(&cfg, &platform_options()).await?;
    assert_eq!(platform.tls.ca_file(), Some(tls.ca_file.as_path()));

    // PostgreSQL: a query, and the server says this connection is TLS.
    let version: String = sqlx::query_scalar(
        "SELECT COALESCE(version, 'none') FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_one(platform.db.pool())
    .await?;
    assert!(version.starts_with("TLS"), "{version}");

    // Redis: a command through the platform's connection.
    let mut redis = platform.redis().expect("redis configured").clone();
    let key = format!("{}:tls", cfg.prefix);
    redis::cmd("SET")
        .arg(&key)
        .arg("over tls")
        .arg("EX")
        .arg(60)
        .query_async::<()>(&mut redis)
        .await?;
    let back: String = redis::cmd("GET").arg(&key).query_async(&mut redis).await?;
    assert_eq!(back, "over tls");

    // NATS: an event through the JetStream bus (stream, consumer, publish, ack).
    assert_eq!(platform.bus.kind(), "nats");
    let seen = Seen::default();
    platform
        .bus
        .subscribe("tls.events", "tls-test", seen.handler())?;
    platform.bus.publish("tls.events", "k", b"over tls").await?;
    seen.wait_for(&["over tls"]).await?;

    let ready = platform.readiness().await;
    assert!(ready.iter().all(|d| d.ok), "{ready:?}");
    assert_eq!(ready.len(), 4, "db, redis, nats and blobs: {ready:?}");
    platform.close(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_broadcast_crosses_processes_over_tls() -> anyhow::Result<()> {
    // Without NATS, the platform broadcasts through Redis pub/sub: over rediss:// here.
    let tls = services::tls();
    let dir = tempfile::tempdir()?;
    let cfg = config(
        dir.path(),
        services::sqlite_url(dir.path()),
        Some(tls.redis_url.clone()),
        None,
        Some(&tls),
    );
    let a = Platform::connect_with(&cfg, &platform_options()).await?;
    let b = Platform::connect_with(&cfg, &platform_options()).await?;
    assert_eq!(a.broadcaster.kind(), "redis");
    let mut rx = b.broadcaster.subscribe("tls.chan");
    // The subscription is up once one message arrives; keep sending until then.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        a.broadcaster
            .publish("tls.chan", Bytes::from_static(b"hello"))
            .await?;
        match tokio::time::timeout(Duration::from_millis(200), recv(&mut rx)).await {
            Ok(got) => {
                assert_eq!(got?, "hello");
                break;
            }
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "no broadcast over rediss:// within 15s"
            ),
        }
    }

    a.close(Duration::from_secs(5)).await;
    b.close(Duration::from_secs(5)).await;
    Ok(())
}

/// Asserts that `err` is a TLS error about `setting` that says to set `tls_ca_file`.
fn assert_names_the_ca_setting(err: &InfraError, setting: &str) {
    let text = err.to_string();
    assert!(matches!(err, InfraError::Tls(_)), "{err:?}");
    assert!(!err.is_transient(), "{text}");
    assert!(text.contains(setting), "{text}");
    assert!(text.contains("set tls_ca_file"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_file_each_connection_fails_naming_the_setting() -> anyhow::Result<()> {
    let tls = services::tls();
    let dir = tempfile::tempdir()?;
    let sqlite = || services::sqlite_url(dir.path());

    let database = tls.database().await;
    let err = Platform::connect(&config(dir.path(), database.url.clone(), None, None, None))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a PostgreSQL certificate of an unknown CA was accepted"))?;
    assert_names_the_ca_setting(&err, "database_url");

    let err = Platform::connect(&config(
        dir.path(),
        sqlite(),
        Some(tls.redis_url.clone()),
        None,
        None,
    ))
    .await
    .err()
    .ok_or_else(|| anyhow::anyhow!("a Redis certificate of an unknown CA was accepted"))?;
    assert_names_the_ca_setting(&err, "redis_url");

    let err = Platform::connect(&config(
        dir.path(),
        sqlite(),
        None,
        Some(tls.nats_url.clone()),
        None,
    ))
    .await
    .err()
    .ok_or_else(|| anyhow::anyhow!("a NATS certificate of an unknown CA was accepted"))?;
    assert_names_the_ca_setting(&err, "nats_url");

    // A CA file that does not hold the signing CA says so.
    let other_ca = dir.path().join("other-ca.pem");
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&other_ca, params.self_signed(&key)?.pem())?;
    let mut cfg = config(
        dir.path(),
        sqlite(),
        Some(tls.redis_url.clone()),
        None,
        None,
    );
    cfg.tls_ca_file = Some(other_ca.clone());
    let err = Platform::connect(&cfg)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a Redis certificate of another CA was accepted"))?;
    let text = err.to_string();
    assert!(
        text.contains("does not hold the CA") && text.contains(&other_ca.display().to_string()),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn an_unreadable_ca_file_fails_the_start_naming_the_setting() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cfg = config(
        dir.path(),
        services::sqlite_url(dir.path()),
        None,
        None,
        None,
    );
    cfg.tls_ca_file = Some(dir.path().join("missing.pem"));
    let err = Platform::connect(&cfg)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a missing CA file was accepted"))?;
    assert!(
        matches!(err, InfraError::Config(_)) && err.to_string().contains("tls_ca_file"),
        "{err}"
    );
    Ok(())
}

//! Every system starts through its plug-in on every kind of platform the test harness gives
//! (embedded, two processes on one scaled backend, a restart on the same data), as `serve`
//! starts it: its migrations applied (again: they are idempotent), its section read from key
//! texts, its start.

use std::collections::BTreeSet;

use praxis_http::system::{Plugin, Started};
use praxis_testkit::TestBackend;

use crate::support::{describe, run, temp_dir};

/// The systems of the binary, in its order (checked against `praxis config` below).
pub(crate) fn systems() -> [&'static dyn Plugin; 10] {
    [
        &praxis_identity::IdentitySystem,
        &praxis_shortener::ShortenerSystem,
        &praxis_ratelimit::RateLimitSystem,
        &praxis_notify::NotifySystem,
        &praxis_feed::FeedSystem,
        &praxis_chat::ChatSystem,
        &praxis_files::FilesSystem,
        &praxis_commerce::CommerceSystem,
        &praxis_orders::OrdersSystem,
        &praxis_gateway::GatewaySystem,
    ]
}

/// Starts every system on `backend` with a setting of its section, and checks what it hands
/// the binary: routes under its own prefix, and an authenticator from identity only.
async fn start_all(backend: &TestBackend) {
    let mut docs = Vec::new();
    for plugin in systems() {
        let name = plugin.name();
        let values: &[(&str, Option<&str>)] = match name {
            "shortener" => &[("cache_ttl", Some("1m"))],
            "feed" => &[("celebrity_threshold", Some("3"))],
            "files" => &[("lock_lease", Some("10s"))],
            "commerce" => &[("reservation_ttl", Some("5m"))],
            "orders" => &[("initial_shards", Some("3"))],
            _ => &[],
        };
        let Started {
            service,
            authenticator,
        } = backend
            .start_plugin(plugin, values)
            .await
            .unwrap_or_else(|e| panic!("{name} on {}: {e}", backend.name));
        assert_eq!(service.name, name);
        assert_eq!(authenticator.is_some(), plugin.authenticates(), "{name}");
        assert!(
            service
                .openapi
                .paths
                .paths
                .keys()
                .any(|p| p.starts_with(&format!("/api/v1/{name}")) || name == "shortener"),
            "{name} serves routes under /api/v1/{name}"
        );
        docs.push((name, service.openapi));
    }
    // One document: a schema name that two systems define differently (two `BulkResult`s) is
    // a clash, and the merged document would describe one route with the other's shape.
    let clashes = praxis_http::openapi::find_clashes(docs.iter().map(|(n, d)| (*n, d)));
    assert!(
        clashes.is_empty(),
        "the systems' OpenAPI documents clash: {}",
        clashes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
}

#[tokio::test]
async fn the_binary_lists_the_systems_this_suite_starts() {
    let dir = temp_dir();
    let out = run(dir.path(), &["config"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let sections: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.strip_suffix(']'))
        .filter(|s| *s != "rate_limit")
        .collect();
    let ours: BTreeSet<&str> = systems().iter().map(|s| s.name()).collect();
    assert_eq!(sections, ours);
}

#[tokio::test]
async fn every_system_starts_embedded_and_again_after_a_restart() {
    let backend = praxis_testkit::embedded().await;
    start_all(&backend).await;
    let backend = backend.restart().await;
    start_all(&backend).await;
}

#[tokio::test]
async fn every_system_starts_in_two_processes_on_one_scaled_backend() {
    let (first, second) = praxis_testkit::scaled_pair().await;
    tokio::join!(start_all(&first), start_all(&second));
}

#[tokio::test]
async fn a_bad_section_value_is_refused_naming_the_key() {
    let backend = praxis_testkit::embedded().await;
    let Err(e) = backend
        .start_plugin(&praxis_feed::FeedSystem, &[("timeline_cap", Some("3"))])
        .await
    else {
        panic!("a timeline cap of 3 must be refused");
    };
    assert!(e.to_string().contains("timeline_cap"), "{e}");
}

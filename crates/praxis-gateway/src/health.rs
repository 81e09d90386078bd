//! Active health checks: every `interval`, each instance of a pool is checked (a TCP connect, or
//! `GET path` answered 2xx, within `timeout`); `unhealthy_threshold` failures in a row take it
//! down, `healthy_threshold` passes in a row bring it back. Instances start up, so traffic
//! flows before the first round.

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use metrics::{counter, gauge};
use tokio_util::sync::CancellationToken;

use crate::config::HealthCheck;
use crate::metrics::{HEALTH_CHECKS_TOTAL, UPSTREAM_UP};
use crate::pool::{Instance, Pool};

/// Checks `pool`'s instances until `shutdown` or the pool's own `stop`.
pub async fn run(pool: Arc<Pool>, shutdown: CancellationToken) {
    let cfg = pool.config.health.clone();
    if cfg.check == HealthCheck::None {
        return;
    }
    let mut ticker = tokio::time::interval(cfg.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = pool.stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let members = pool.members();
        let checks = members.instances.iter().map(|inst| {
            let pool = pool.clone();
            let inst = inst.clone();
            async move {
                let passed = check(&pool, &inst).await;
                record(&pool, &inst, passed);
            }
        });
        // Together, so that a slow instance does not delay the others' checks.
        futures::future::join_all(checks).await;
    }
}

/// Whether `inst` passes one check of its pool's kind.
async fn check(pool: &Pool, inst: &Instance) -> bool {
    let cfg = &pool.config.health;
    let attempt = async {
        match cfg.check {
            HealthCheck::None => true,
            HealthCheck::Tcp => tokio::net::TcpStream::connect(inst.addr.as_str())
                .await
                .is_ok(),
            HealthCheck::Http => {
                let uri = format!("http://{}{}", inst.addr, cfg.path);
                let Ok(req) = Request::get(uri)
                    .header(http::header::USER_AGENT, "praxis-gateway-health")
                    .body(Body::empty())
                else {
                    return false;
                };
                match pool.client.request(req).await {
                    Ok(resp) => resp.status().is_success(),
                    Err(_) => false,
                }
            }
        }
    };
    tokio::time::timeout(cfg.timeout, attempt)
        .await
        .unwrap_or(false)
}

fn record(pool: &Pool, inst: &Instance, passed: bool) {
    let cfg = &pool.config.health;
    counter!(HEALTH_CHECKS_TOTAL, "pool" => pool.name.clone(), "upstream" => inst.addr.clone(), "result" => if passed { "pass" } else { "fail" })
        .increment(1);
    let up = inst.is_up();
    let change =
        inst.health
            .lock()
            .record(passed, up, cfg.healthy_threshold, cfg.unhealthy_threshold);
    if let Some(now_up) = change {
        inst.set_up(now_up);
        gauge!(UPSTREAM_UP, "pool" => pool.name.clone(), "upstream" => inst.addr.clone())
            .set(if now_up { 1.0 } else { 0.0 });
        if now_up {
            tracing::info!(pool = %pool.name, upstream = %inst.addr, "gateway: instance up");
        } else {
            tracing::warn!(pool = %pool.name, upstream = %inst.addr, "gateway: instance down");
        }
    }
}

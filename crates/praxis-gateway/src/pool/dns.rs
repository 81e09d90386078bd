//! Instances written as a name (`api.internal:8080`) stand for every address the name
//! resolves to, each an instance of its own; the names are resolved again every
//! `resolve_interval`, and a change of addresses changes the pool's instances (addresses that
//! stay keep their state). A name that does not resolve is kept as written, and the connector
//! resolves it when it opens a connection.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::InstanceSpec;

use super::Pool;

/// Whether `addr` is a name rather than an IP address with a port.
pub fn is_name(addr: &str) -> bool {
    addr.parse::<SocketAddr>().is_err()
}

/// The instances `declared` stands for: IP addresses as they are, names replaced by each of
/// their addresses (sorted, with the name's weight); the first of two equal addresses wins.
pub async fn resolve(declared: &[InstanceSpec]) -> Vec<InstanceSpec> {
    let mut out: Vec<InstanceSpec> = Vec::with_capacity(declared.len());
    let push = |spec: InstanceSpec, out: &mut Vec<InstanceSpec>| {
        if !out.iter().any(|s| s.addr() == spec.addr()) {
            out.push(spec);
        }
    };
    for spec in declared {
        if !is_name(spec.addr()) {
            push(spec.clone(), &mut out);
            continue;
        }
        match tokio::net::lookup_host(spec.addr()).await {
            Ok(found) => {
                let mut addrs: Vec<SocketAddr> = found.collect();
                addrs.sort();
                addrs.dedup();
                if addrs.is_empty() {
                    push(spec.clone(), &mut out);
                }
                for a in addrs {
                    push(
                        InstanceSpec::Weighted {
                            addr: a.to_string(),
                            weight: spec.weight(),
                        },
                        &mut out,
                    );
                }
            }
            Err(e) => {
                tracing::warn!(name = spec.addr(), error = %e, "gateway: a name does not resolve; kept as written");
                push(spec.clone(), &mut out);
            }
        }
    }
    out
}

/// Resolves `pool`'s names every `resolve_interval` until `shutdown` or the pool's `stop`, when
/// it has any.
pub async fn run(pool: Arc<Pool>, shutdown: CancellationToken) {
    let interval = pool.config.resolve_interval;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = pool.stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if !pool.declared().iter().any(|s| is_name(s.addr())) {
            continue;
        }
        if pool.refresh().await {
            tracing::info!(pool = %pool.name, "gateway: a name resolved to other addresses; instances changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_become_their_addresses() {
        let declared = vec![
            InstanceSpec::Addr("127.0.0.1:9".into()),
            InstanceSpec::Weighted {
                addr: "localhost:9".into(),
                weight: 2,
            },
        ];
        let resolved = resolve(&declared).await;
        // localhost is 127.0.0.1 here (and perhaps ::1): the IPv4 one is already listed.
        assert_eq!(resolved[0], InstanceSpec::Addr("127.0.0.1:9".into()));
        assert!(resolved.iter().all(|s| !is_name(s.addr())), "{resolved:?}");
        assert_eq!(
            resolved
                .iter()
                .filter(|s| s.addr() == "127.0.0.1:9")
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_kept() {
        let declared = vec![InstanceSpec::Addr("no-such-host.invalid:80".into())];
        assert_eq!(resolve(&declared).await, declared);
    }
}

//! The one list of systems. Adding a system is a new crate and one line here; everything else
//! (its config section, migrations, secrets, routes, workers) comes from its
//! [`praxis_http::system::System`] implementation.

use praxis_http::system::Plugin;
use praxis_infra::MigrationSet;

/// Every system, in start order.
pub static SYSTEMS: &[&'static dyn Plugin] = &[
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
];

/// The migration sets of `systems`, each set once (the idempotency table is shared), in
/// order: what `serve` and `praxis migrate` apply.
pub fn migrations<'a>(
    systems: impl IntoIterator<Item = &'a &'static dyn Plugin>,
) -> Vec<&'static MigrationSet> {
    let mut sets: Vec<&'static MigrationSet> = Vec::new();
    for system in systems {
        for set in system.migrations() {
            if !sets.iter().any(|s| s.system == set.system) {
                sets.push(set);
            }
        }
    }
    sets
}

/// The systems whose migrations a process with this selection applies: the selected ones,
/// and those that authenticate (they run in every process).
pub fn running(only: &[String]) -> impl Iterator<Item = &'static &'static dyn Plugin> + '_ {
    SYSTEMS
        .iter()
        .filter(move |s| s.authenticates() || only.iter().any(|o| o == s.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let names: Vec<&str> = SYSTEMS.iter().map(|s| s.name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn each_migration_set_is_applied_once() {
        let sets = migrations(SYSTEMS);
        let idempotency = sets
            .iter()
            .filter(|s| s.system == praxis_http::idempotency::MIGRATIONS.system)
            .count();
        assert_eq!(idempotency, 1, "shared by four systems, applied once");
        let names: Vec<&str> = sets.iter().map(|s| s.system).collect();
        for system in SYSTEMS {
            assert!(names.contains(&system.name()), "{}", system.name());
        }
    }

    #[test]
    fn an_authenticating_system_runs_in_every_process() {
        let only = vec!["feed".to_owned()];
        let running: Vec<&str> = running(&only).map(|s| s.name()).collect();
        assert_eq!(running, ["identity", "feed"]);
    }
}

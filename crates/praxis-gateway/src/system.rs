//! The gateway as a plug-in of the binary: its `[gateway]` section and its start (it keeps no
//! tables; its proxy listens on its own address, its admin API is served with the others').

use praxis_http::Service;
use praxis_http::system::{Key, StartContext, StartFuture, System};
use praxis_infra::{InfraError, MigrationSet};

use crate::{Gateway, GatewaySettings, MIGRATIONS, config::GatewayConfig, settings};

/// The gateway system.
#[derive(Debug, Clone, Copy, Default)]
pub struct GatewaySystem;

impl System for GatewaySystem {
    type Settings = GatewaySettings;

    fn name(&self) -> &'static str {
        "gateway"
    }

    fn keys(&self) -> &'static [Key] {
        settings::KEYS
    }

    fn migrations(&self) -> &'static [&'static MigrationSet] {
        static SETS: &[&MigrationSet] = &[&MIGRATIONS];
        SETS
    }

    fn metrics(&self) -> &'static [praxis_infra::MetricDoc] {
        crate::metrics::METRICS
    }

    /// Starts the proxy on the platform's tasks when a gateway file is set.
    fn start<'a>(&'a self, settings: GatewaySettings, ctx: &'a StartContext) -> StartFuture<'a> {
        Box::pin(async move {
            let Some(path) = &settings.routes else {
                tracing::info!("gateway: no gateway file (gateway.routes); not listening");
                let (router, openapi) = crate::api::router(None);
                return Ok(Service::new("gateway", router, openapi).into());
            };
            let config = GatewayConfig::load(path)
                .map_err(|e| InfraError::Config(format!("gateway.routes: {e}")))?;
            let gateway = Gateway::start(
                config,
                settings.listen,
                ctx.platform.shutdown.clone(),
                &ctx.platform.tasks,
            )
            .await
            .map_err(|e| InfraError::Config(e.to_string()))?;
            gateway.watch(path.clone(), settings.reload_interval);
            tracing::info!(addr = %gateway.local_addr(), "gateway listening");
            let (router, openapi) = crate::api::router(Some(gateway));
            Ok(Service::new("gateway", router, openapi).into())
        })
    }
}

#[cfg(test)]
mod tests {
    use praxis_http::system::Plugin;

    use super::*;

    static SYSTEM: GatewaySystem = GatewaySystem;

    #[test]
    fn every_field_has_a_documented_key() {
        let mut fields: Vec<String> = Plugin::defaults(&SYSTEM)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut keys: Vec<String> = Plugin::keys(&SYSTEM)
            .iter()
            .map(|k| k.name.to_owned())
            .collect();
        fields.sort();
        keys.sort();
        assert_eq!(fields, keys);
        assert_eq!(Plugin::name(&SYSTEM), "gateway");
        assert!(
            Plugin::migrations(&SYSTEM)
                .iter()
                .all(|m| m.system == "gateway")
        );
    }

    #[test]
    fn a_broken_gateway_file_is_reported_against_its_key() {
        let dir = std::env::temp_dir().join(format!("praxis-gateway-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("gateway.toml");
        std::fs::write(
            &file,
            "[pools.a]\ninstances = [\"127.0.0.1:1\"]\n[[routes]]\npool = \"b\"\n",
        )
        .expect("write");
        let path = file.to_string_lossy().into_owned();
        let errors = Plugin::configure(&SYSTEM, &[("routes", Some(path.as_str()))])
            .expect_err("a route to a missing pool");
        assert_eq!(errors[0].key.as_deref(), Some("routes"));
        assert!(
            errors[0].message.contains("routes[0].pool"),
            "{}",
            errors[0].message
        );
        std::fs::write(
            &file,
            "[pools.b]\ninstances = [\"127.0.0.1:1\"]\n[[routes]]\npool = \"b\"\n",
        )
        .expect("write");
        assert!(
            Plugin::configure(
                &SYSTEM,
                &[
                    ("routes", Some(path.as_str())),
                    ("listen", Some("127.0.0.1:0"))
                ]
            )
            .is_ok()
        );
        let errors =
            Plugin::configure(&SYSTEM, &[("listen", Some("nowhere"))]).expect_err("bad address");
        assert_eq!(errors[0].key.as_deref(), Some("listen"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Starting a system on a test platform the way `praxis serve` does: every migration set it
//! declares applied once, then [`System::start`] (or a [`Plugin`]'s section, read from key
//! texts like the binary reads them) with a [`StartContext`] for tests.

use praxis_http::AuthSettings;
use praxis_http::system::{Plugin, StartContext, Started, System, apply_migrations};
use praxis_infra::InfraError;

use crate::backend::TestBackend;

/// The admin key of the test start context.
pub const TEST_ADMIN_KEY: &str = "test-admin-key-0123456789";

/// The signing secret of the test start context (at least 32 characters, like the binary's).
pub const TEST_SIGNING_SECRET: &str = "test-signing-secret-0123456789abcdef";

impl TestBackend {
    /// The context the binary would hand a system on this platform: base URL
    /// `http://localhost:8080/`, the platform's prefix, [`TEST_ADMIN_KEY`] and
    /// [`TEST_SIGNING_SECRET`], no trusted proxies, and a fresh value of every secret in
    /// `secrets`.
    pub fn start_context(&self, secrets: &[praxis_http::system::SecretSpec]) -> StartContext {
        StartContext {
            platform: self.platform.clone(),
            base_url: url::Url::parse("http://localhost:8080/")
                .unwrap_or_else(|e| panic!("constant URL: {e}")),
            prefix: self.config.prefix.clone(),
            auth: AuthSettings {
                admin_key: Some(TEST_ADMIN_KEY.to_owned()),
                allow_anonymous_writes: false,
                authenticator: None,
            },
            signing_secret: TEST_SIGNING_SECRET.into(),
            trusted_proxies: Vec::new(),
            secrets: secrets.iter().map(|s| (s.name, (s.generate)())).collect(),
        }
    }

    /// Applies every migration set `system` declares, as `praxis serve` does before starting
    /// it: for suites that launch a system themselves to keep its typed handle.
    pub async fn migrate<S: System>(&self, system: &S) -> Result<(), InfraError> {
        apply_migrations(&self.platform, system.migrations()).await
    }

    /// Starts `system` with `settings`: its migrations, then its start.
    pub async fn start_system<S: System>(
        &self,
        system: &S,
        settings: S::Settings,
    ) -> Result<Started, InfraError> {
        self.migrate(system).await?;
        let ctx = self.start_context(System::secrets(system));
        system.start(settings, &ctx).await
    }

    /// Starts `plugin` with its section read from `values` (key, text), as the binary does
    /// with the configuration's layers.
    pub async fn start_plugin(
        &self,
        plugin: &'static dyn Plugin,
        values: &[(&str, Option<&str>)],
    ) -> Result<Started, InfraError> {
        let configured = plugin.configure(values).map_err(|errors| {
            let each: Vec<String> = errors.iter().map(ToString::to_string).collect();
            InfraError::Config(format!("{}: {}", plugin.name(), each.join("; ")))
        })?;
        apply_migrations(&self.platform, plugin.migrations()).await?;
        let ctx = self.start_context(plugin.secrets());
        configured.start(&ctx).await
    }
}

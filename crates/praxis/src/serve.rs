//! `praxis serve`: wires the platform, the selected systems and the shared HTTP layers, serves
//! until SIGTERM/SIGINT, then shuts down gracefully.

use std::time::Duration;

use anyhow::Context;
use praxis_http::app::{HttpOptions, app, install_metrics_recorder};
use praxis_http::auth::AuthSettings;
use praxis_infra::{Platform, PlatformConfig};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::admin_key;
use crate::config::{Config, values::mask_url};
use crate::context::RunContext;
use crate::jwt_secret;
use crate::secret_file::{self, KeySource};
use crate::shutdown::Signals;
use crate::systems;

/// The least time `platform.close` gets to flush, even when draining used up the grace period.
const MIN_FLUSH: Duration = Duration::from_secs(1);

/// Runs the server until a signal asks it to stop.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let mut signals = Signals::install().context("cannot install signal handlers")?;

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let (admin_key, key_source) = admin_key::resolve(&config)?;
    log_key_source(&key_source);
    let (jwt_secret, secret_source) = jwt_secret::resolve(&config)?;
    log_secret_source(&secret_source);

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let mut ctx = RunContext::new(config, bound, jwt_secret)?;

    let metrics = ctx.config.metrics.then(install_metrics_recorder);
    let cfg = &ctx.config;
    let platform = Platform::connect(&PlatformConfig {
        database_url: cfg.database_url.clone(),
        redis_url: cfg.redis_url.clone(),
        nats_url: cfg.nats_url.clone(),
        data_dir: cfg.data_dir.clone(),
        prefix: cfg.prefix.clone(),
    })
    .await
    .with_context(|| {
        format!(
            "cannot connect the platform ({})",
            mask_url(&cfg.database_url)
        )
    })?;

    // Identity first: its authenticator resolves the bearer tokens of every system's routes.
    let identity = praxis_identity::Identity::start(
        &platform,
        systems::identity_settings(&ctx.config, &ctx.jwt_secret),
    )
    .await
    .context("cannot start the identity system");
    let identity = match identity {
        Ok(identity) => identity,
        Err(e) => {
            platform.close(MIN_FLUSH).await;
            return Err(e);
        }
    };
    let auth = AuthSettings {
        admin_key: Some(admin_key.expose().to_owned()),
        allow_anonymous_writes: ctx.config.anonymous_create,
        authenticator: Some(identity.authenticator()),
    };
    ctx.identity = Some(identity);
    ctx.auth = Some(auth.clone());
    let cfg = &ctx.config;

    let services = match build_services(&platform, &ctx).await {
        Ok(services) => services,
        Err(e) => {
            platform.close(MIN_FLUSH).await;
            return Err(e);
        }
    };

    let router = app(
        services,
        platform.clone(),
        HttpOptions {
            body_limit: cfg.body_limit,
            request_timeout: cfg.request_timeout,
            access_log: cfg.access_log,
            metrics,
            auth,
            rate_limit: cfg.rate_limit.as_ref().map(|rl| rl.limits.clone()),
        },
    );

    if !cfg.only.iter().any(|s| s == "ratelimit")
        && (cfg.ratelimit.limits.is_some() || cfg.ratelimit.grpc_listen.is_some())
    {
        warn!(
            "ratelimit_limits / ratelimit_grpc_listen are set but the ratelimit system is not \
             selected (--only); the decision service does not run in this process"
        );
    }
    if let Some(rl) = &cfg.rate_limit {
        info!(
            source = %rl.source.display(),
            policies = %rl.limits.policy_names().collect::<Vec<_>>().join(","),
            "http rate-limit policies applied"
        );
    }
    info!(
        addr = %bound,
        mode = %cfg.mode(),
        systems = %cfg.only.join(","),
        base_url = %ctx.base_url,
        database = %mask_url(&cfg.database_url),
        instance = %platform.instance_id,
        "praxis listening"
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Connection info gives handlers the peer address (the client IP of login limits).
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop_rx.await;
    });
    let mut server = tokio::spawn(server.into_future());

    let signal = tokio::select! {
        name = signals.recv() => name,
        result = &mut server => {
            // The server stopped on its own: an error worth reporting.
            platform.close(cfg.shutdown_grace.max(MIN_FLUSH)).await;
            return match result {
                Ok(Ok(())) => Err(anyhow::anyhow!("the server stopped unexpectedly")),
                Ok(Err(e)) => Err(e).context("the server failed"),
                Err(e) => Err(e).context("the server task failed"),
            };
        }
    };
    let deadline = Instant::now() + cfg.shutdown_grace;
    info!(
        signal,
        grace = ?cfg.shutdown_grace,
        "shutting down: no new connections, draining in-flight requests"
    );
    signals.exit_on_next();
    let _ = stop_tx.send(());

    match tokio::time::timeout_at(deadline, &mut server).await {
        Ok(Ok(Ok(()))) => info!("in-flight requests drained"),
        Ok(Ok(Err(e))) => warn!(error = %e, "the server failed while draining"),
        Ok(Err(e)) => warn!(error = %e, "the server task failed while draining"),
        Err(_) => {
            warn!("shutdown_grace passed with requests still in flight; closing them");
            server.abort();
        }
    }

    let flush = deadline
        .saturating_duration_since(Instant::now())
        .max(MIN_FLUSH);
    info!(budget = ?flush, "flushing systems and pending bus events");
    platform.close(flush).await;
    info!("praxis stopped");
    Ok(())
}

async fn build_services(
    platform: &Platform,
    ctx: &RunContext,
) -> anyhow::Result<Vec<praxis_http::Service>> {
    for set in systems::shared_migrations() {
        platform
            .db
            .migrate(set)
            .await
            .with_context(|| format!("cannot apply the {} migrations", set.system))?;
    }
    let mut services = Vec::new();
    for system in systems::selected(&ctx.config.only) {
        services.push((system.build)(platform, ctx).await?);
        info!(system = system.name, "system started");
    }
    Ok(services)
}

fn log_secret_source(source: &KeySource) {
    match source {
        KeySource::Configured => info!("jwt secret: configured"),
        KeySource::Existing(path) => {
            if secret_file::readable_by_others(path) {
                warn!(path = %path.display(), "jwt secret file is readable by other users; chmod 600 it");
            }
            info!(path = %path.display(), "jwt secret: read from the file generated earlier");
        }
        KeySource::Generated(path) => info!(
            path = %path.display(),
            "jwt secret: generated (access tokens stay valid across restarts; it is never logged)"
        ),
    }
}

fn log_key_source(source: &KeySource) {
    let shown = |path: &std::path::Path| {
        std::path::absolute(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string()
    };
    match source {
        KeySource::Configured => info!("admin key: configured"),
        KeySource::Existing(path) => {
            if secret_file::readable_by_others(path) {
                warn!(path = %shown(path), "admin key file is readable by other users; chmod 600 it");
            }
            info!(path = %shown(path), "admin key: read from the file generated earlier");
        }
        KeySource::Generated(path) => info!(
            path = %shown(path),
            "admin key: generated (read it from this file; it is never logged)"
        ),
    }
}

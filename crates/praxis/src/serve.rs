//! `praxis serve`: wires the platform, the selected systems and the shared HTTP layers, serves
//! until SIGTERM/SIGINT, then shuts down gracefully.

use std::time::Duration;

use std::sync::Arc;

use anyhow::Context;
use axum::serve::ListenerExt;
use praxis_http::Service;
use praxis_http::app::{HttpOptions, admin_app, app, install_metrics_recorder};
use praxis_http::auth::AuthSettings;
use praxis_http::system::{Plugin, StartContext};
use praxis_infra::{Platform, PlatformConfig};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{Config, Origin, values::mask_url};
use crate::context::default_base_url;
use crate::shutdown::Signals;
use crate::{migrate, secrets, systems};

/// The least time `platform.close` gets to flush, even when draining used up the grace period.
const MIN_FLUSH: Duration = Duration::from_secs(1);

/// Runs the server until a signal asks it to stop.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let mut signals = Signals::install().context("cannot install signal handlers")?;

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let admin_key = secrets::admin_key(&config)?;
    let signing_secret = secrets::signing_secret(&config)?;

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let base_url = match &config.base_url {
        Some(url) => url.clone(),
        None => default_base_url(bound)?,
    };

    let metrics = config.metrics.then(install_metrics_recorder);
    // Bound before anything starts, so a taken port fails the start at once.
    let admin_listener = match config.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on admin_listen {addr}"))?,
        ),
        None => None,
    };
    let cfg = &config;
    let platform = Platform::connect(&PlatformConfig {
        database_url: cfg.database_url.clone(),
        redis_url: cfg.redis_url.clone(),
        nats_url: cfg.nats_url.clone(),
        tls_ca_file: cfg.tls_ca_file.clone(),
        blobs_url: cfg.blobs_url.clone(),
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

    let ctx = StartContext {
        platform: platform.clone(),
        base_url: base_url.clone(),
        prefix: cfg.prefix.clone(),
        auth: AuthSettings {
            admin_key: Some(admin_key.expose().to_owned()),
            allow_anonymous_writes: false,
            authenticator: None,
        },
        signing_secret: Arc::from(signing_secret.expose()),
        trusted_proxies: cfg
            .rate_limit
            .as_ref()
            .map(|r| r.limits.trusted_proxies().to_vec())
            .unwrap_or_default(),
        secrets: Default::default(),
    };
    let (services, auth) = match start_systems(cfg, ctx).await {
        Ok(started) => started,
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
            metrics: metrics.clone(),
            metrics_route: admin_listener.is_none(),
            auth,
            rate_limit: cfg.rate_limit.as_ref().map(|rl| rl.limits.clone()),
        },
    );

    let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(listener) = admin_listener {
        let addr = listener
            .local_addr()
            .context("cannot read the admin address")?;
        let admin = match metrics {
            Some(handle) => admin_app(handle, platform.clone()),
            None => admin_app(install_metrics_recorder(), platform.clone()),
        };
        tokio::spawn(async move {
            let served = axum::serve(listener, admin)
                .with_graceful_shutdown(async move {
                    let _ = admin_stopped.await;
                })
                .await;
            if let Err(e) = served {
                warn!(error = %e, "the admin listener failed");
            }
        });
        info!(admin_addr = %addr, "admin listener: /metrics, /healthz, /readyz");
    }

    warn_about_idle_sections(cfg);
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
        base_url = %base_url,
        database = %mask_url(&cfg.database_url),
        instance = %platform.instance_id,
        "praxis listening"
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Connection info gives handlers the peer address (the client IP of login limits).
    // TCP_NODELAY: a response or a WebSocket frame goes out at once, not after the client's
    // delayed ACK (Nagle's algorithm held small frames ~40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
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
    let _ = admin_stop.send(());

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

/// Applies the migrations once, then starts the systems that authenticate callers (in every
/// process: their authenticator resolves the bearer tokens of every route), then the other
/// selected systems. Returns the routes of the selected systems and the authentication
/// settings of the HTTP stack.
async fn start_systems(
    cfg: &Config,
    mut ctx: StartContext,
) -> anyhow::Result<(Vec<Service>, AuthSettings)> {
    migrate::apply(&ctx.platform.db, cfg, &mask_url(&cfg.database_url)).await?;
    let running: Vec<&&'static dyn Plugin> = systems::running(&cfg.only).collect();
    let (first, rest): (Vec<&&'static dyn Plugin>, Vec<&&'static dyn Plugin>) =
        running.into_iter().partition(|s| s.authenticates());
    let mut services = Vec::new();
    for plugin in first.into_iter().chain(rest) {
        let name = plugin.name();
        let configured = cfg
            .systems
            .iter()
            .find(|s| s.name() == name)
            .with_context(|| format!("the {name} system has no configuration"))?;
        ctx.secrets = secrets::of_system(cfg, name)?;
        praxis_infra::describe_metrics(plugin.metrics());
        let started = configured
            .start(&ctx)
            .await
            .with_context(|| format!("cannot start the {name} system"))?;
        if let Some(authenticator) = started.authenticator {
            ctx.auth.authenticator = Some(authenticator);
        }
        if cfg.selected(name) {
            services.push(started.service);
            info!(system = name, "system started");
        } else {
            info!(
                system = name,
                "system started for authentication only (not selected)"
            );
        }
    }
    Ok((services, ctx.auth))
}

/// Warns when a section of a system this process does not run has settings: they have no
/// effect here (`--only`).
fn warn_about_idle_sections(cfg: &Config) {
    let running: Vec<&str> = systems::running(&cfg.only).map(|s| s.name()).collect();
    for spec in cfg.keys.iter() {
        let Some(section) = spec.section else {
            continue;
        };
        if !running.contains(&section) && cfg.origin(&spec.id()) != Origin::Default {
            warn!(
                key = %spec.id(),
                "a setting of the {section} system is set but the system is not selected \
                 (--only); it has no effect in this process"
            );
        }
    }
}

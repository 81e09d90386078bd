//! Redis connection settings shared by the cache, the rate limiter and the broadcaster:
//! `redis://` in plain text, `rediss://` over TLS with the process's
//! [trust policy](crate::tls::TrustPolicy).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::InfraError;
use crate::sql::redact;
use crate::tls::TrustPolicy;

/// A client for `url`. A `rediss://` (or `valkeys://`) URL connects over TLS and trusts
/// exactly `trust` (the OS store plus `tls_ca_file`); the client connects lazily.
pub fn client(url: &str, trust: &TrustPolicy) -> Result<redis::Client, InfraError> {
    let tls = url::Url::parse(url)
        .map(|u| matches!(u.scheme(), "rediss" | "valkeys"))
        .unwrap_or(false);
    if !tls {
        return Ok(redis::Client::open(url)?);
    }
    crate::tls::install_crypto_provider();
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(trust.pem()),
    };
    Ok(redis::Client::build_with_tls(url, certificates)?)
}

/// A multiplexed, auto-reconnecting connection with short timeouts, so a Redis outage turns
/// into quick errors (and cache fall-through) rather than stuck requests.
pub async fn manager(client: redis::Client) -> Result<ConnectionManager, InfraError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    Ok(ConnectionManager::new_with_config(client, config).await?)
}

/// Opens `url` (TLS trusting the OS store alone) and returns a [`manager`] for it.
pub async fn connect(url: &str) -> Result<ConnectionManager, InfraError> {
    connect_with(url, &TrustPolicy::system()).await
}

/// Opens `url` with [`client`] and returns a [`manager`] for it. A server certificate that
/// `trust` does not accept fails with an [`InfraError::Tls`] naming the setting to fix.
pub async fn connect_with(url: &str, trust: &TrustPolicy) -> Result<ConnectionManager, InfraError> {
    let client = client(url, trust)?;
    manager(client).await.map_err(|e| explain(e, url, trust))
}

/// An error of a Redis connection to `url`, explained when the server's certificate was not
/// accepted.
pub(crate) fn explain(e: InfraError, url: &str, trust: &TrustPolicy) -> InfraError {
    match &e {
        InfraError::Redis(source) => trust
            .explain(&format!("redis_url {}", redact(url)), source.as_ref())
            .unwrap_or(e),
        _ => e,
    }
}

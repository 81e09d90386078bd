//! Redis connection settings shared by the cache and the broadcaster.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::InfraError;

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

/// Opens `url` and returns a [`manager`] for it.
pub async fn connect(url: &str) -> Result<ConnectionManager, InfraError> {
    manager(redis::Client::open(url)?).await
}

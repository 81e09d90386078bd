//! Redis pub/sub receiver: one dedicated connection with a pattern subscription on
//! `<prefix>:bcast:*`, re-established (and logged) whenever it drops.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{frame, hub::Hub};
use crate::InfraError;

pub(super) fn channel_name(prefix: &str, channel: &str) -> String {
    format!("{prefix}:bcast:{channel}")
}

async fn subscribe(
    client: &redis::Client,
    pattern: &str,
) -> Result<redis::aio::PubSub, InfraError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(pattern).await?;
    Ok(pubsub)
}

/// Subscribes once (so errors surface to the caller), then keeps receiving in a task.
pub(super) async fn start_receiver(
    client: redis::Client,
    prefix: &str,
    instance: Uuid,
    hub: Arc<Hub>,
    stop: CancellationToken,
) -> Result<(), InfraError> {
    let pattern = format!("{prefix}:bcast:*");
    let strip = format!("{prefix}:bcast:");
    let first = subscribe(&client, &pattern).await?;
    tokio::spawn(async move {
        let mut pubsub = Some(first);
        let mut attempt = 0u32;
        loop {
            let current = match pubsub.take() {
                Some(p) => p,
                None => {
                    let delay = crate::util::backoff(
                        Duration::from_millis(100),
                        Duration::from_secs(5),
                        attempt,
                    );
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    match subscribe(&client, &pattern).await {
                        Ok(p) => {
                            tracing::info!(pattern = %pattern, attempt, "redis broadcast resubscribed");
                            attempt = 0;
                            p
                        }
                        Err(e) => {
                            attempt = attempt.saturating_add(1);
                            tracing::warn!(pattern = %pattern, attempt, error = %e, "redis broadcast resubscribe failed");
                            continue;
                        }
                    }
                }
            };
            let mut messages = current.into_on_message();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    msg = messages.next() => match msg {
                        Some(msg) => {
                            let Some(channel) = msg.get_channel_name().strip_prefix(&strip) else { continue };
                            match frame::decode(bytes::Bytes::copy_from_slice(msg.get_payload_bytes())) {
                                Some((sender, _)) if sender == instance => {}
                                Some((_, payload)) => hub.deliver(channel, payload),
                                None => tracing::debug!(channel, "ignoring a non-praxis message on a broadcast channel"),
                            }
                        }
                        None => break,
                    }
                }
            }
            tracing::warn!(pattern = %pattern, "redis broadcast connection lost; resubscribing (messages sent meanwhile are lost)");
        }
    });
    Ok(())
}

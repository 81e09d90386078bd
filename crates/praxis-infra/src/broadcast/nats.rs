//! NATS core receiver: a wildcard subscription on `<prefix>.bcast.>`; the client itself
//! reconnects and resubscribes.

use std::sync::Arc;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{frame, hub::Hub};
use crate::InfraError;

pub(super) fn subject(prefix: &str, channel: &str) -> String {
    format!("{prefix}.bcast.{channel}")
}

pub(super) async fn start_receiver(
    client: async_nats::Client,
    prefix: &str,
    instance: Uuid,
    hub: Arc<Hub>,
    stop: CancellationToken,
) -> Result<(), InfraError> {
    let wildcard = format!("{prefix}.bcast.>");
    let strip = format!("{prefix}.bcast.");
    let mut sub = client
        .subscribe(wildcard.clone())
        .await
        .map_err(|e| InfraError::nats("broadcast subscribe", e))?;
    // A flush only writes the SUB to the socket: wait until our own probe comes back, which
    // proves the server registered the subscription before we report ready.
    let probe = format!("{strip}_ready.{}", instance.simple());
    client
        .publish(probe.clone(), frame::encode(instance, b""))
        .await
        .map_err(|e| InfraError::nats("broadcast subscribe probe", e))?;
    let ready = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(msg) = sub.next().await {
            if msg.subject.as_str() == probe {
                return true;
            }
        }
        false
    })
    .await;
    if !matches!(ready, Ok(true)) {
        return Err(InfraError::nats(
            "broadcast subscribe",
            "the subscription was not confirmed within 5s",
        ));
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                msg = sub.next() => match msg {
                    Some(msg) => {
                        let Some(channel) = msg.subject.as_str().strip_prefix(&strip) else { continue };
                        match frame::decode(msg.payload) {
                            Some((sender, _)) if sender == instance => {}
                            Some((_, payload)) => hub.deliver(channel, payload),
                            None => tracing::debug!(channel, "ignoring a non-praxis message on a broadcast subject"),
                        }
                    }
                    None => {
                        tracing::warn!(subject = %wildcard, "nats broadcast subscription closed");
                        break;
                    }
                }
            }
        }
        let _ = sub.unsubscribe().await;
    });
    Ok(())
}

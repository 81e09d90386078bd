//! In-process fan-out: one tokio broadcast channel per channel name.

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::broadcast;

#[derive(Default)]
pub(super) struct Hub {
    channels: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
}

impl Hub {
    pub(super) fn subscribe(&self, channel: &str) -> broadcast::Receiver<Bytes> {
        let mut channels = self.channels.lock();
        match channels.get(channel) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(super::CHANNEL_CAPACITY);
                channels.insert(channel.to_string(), tx);
                rx
            }
        }
    }

    /// Delivers to the local subscribers of `channel`, forgetting channels nobody listens to.
    pub(super) fn deliver(&self, channel: &str, payload: Bytes) {
        let mut channels = self.channels.lock();
        if let Some(tx) = channels.get(channel)
            && tx.send(payload).is_err()
        {
            channels.remove(channel);
        }
    }
}

//! Presence use cases: heartbeats of live connections, going away or offline, and reading the
//! presence of one's contacts (accounts that share a conversation with the caller).

use crate::domain::events::Event;
use crate::error::ChatError;
use crate::store::presence::{Presence, Status};

use super::{UseCases, now_ms};

/// Most accounts in one presence query.
pub const QUERY_MAX: usize = 100;

impl UseCases {
    /// A heartbeat of one of `me`'s connections: `me` shows `status` for `presence_ttl`. A
    /// failure is logged: presence is best effort, the connection goes on.
    pub async fn beat(&self, me: &str, status: Status) {
        if let Err(e) = self
            .presences
            .beat(me, status, self.settings.presence_ttl, now_ms())
            .await
        {
            tracing::warn!(error = %e, "chat: presence heartbeat failed");
        }
    }

    /// Tells the followers of `conversations` that `me` now shows `status`.
    pub async fn announce<'a>(
        &self,
        me: &str,
        status: Status,
        conversations: impl IntoIterator<Item = &'a String>,
    ) {
        let now = now_ms();
        for conversation in conversations {
            self.tell(Event::Presence {
                conversation_id: conversation.clone(),
                account: me.to_owned(),
                status: status.as_str().to_owned(),
                last_seen: now,
            })
            .await;
        }
    }

    /// `me`'s connection closed: when it was the last one in this process, `me` is offline
    /// (connections of other processes bring it back with their next beat) and the followers
    /// of `conversations` are told.
    pub async fn left<'a>(&self, me: &str, conversations: impl IntoIterator<Item = &'a String>) {
        if self.live.connections_of(me) > 0 {
            return;
        }
        if let Err(e) = self.presences.leave(me, now_ms()).await {
            tracing::warn!(error = %e, "chat: presence not cleared; it expires by itself");
        }
        self.announce(me, Status::Offline, conversations).await;
    }

    /// The presence of those of `accounts` that share a conversation with `me` (and `me`).
    pub async fn presence(
        &self,
        me: &str,
        accounts: &[String],
    ) -> Result<Vec<Presence>, ChatError> {
        if accounts.is_empty() || accounts.len() > QUERY_MAX {
            return Err(ChatError::field(
                "accounts",
                format!("give 1 to {QUERY_MAX} account ids, comma-separated"),
            ));
        }
        let visible = self.store.contacts(me, accounts).await?;
        let shown: Vec<String> = accounts
            .iter()
            .filter(|a| *a == me || visible.contains(*a))
            .cloned()
            .collect();
        Ok(self.presences.get(&shown).await?)
    }
}

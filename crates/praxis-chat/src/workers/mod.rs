//! The chat's use cases: conversations and their members ([`conversations`]), messages,
//! history and read markers ([`messages`]), the key directory of end-to-end encryption
//! ([`keys`]). Every one of them acts for one account and sees
//! only that account's conversations. They use the store and the domain, never the API layer.

pub mod conversations;
pub mod keys;
pub mod live;
pub mod messages;
pub mod metrics;
pub mod presence;
pub mod retention;

use std::sync::Arc;
use std::time::Duration;

use praxis_infra::ratelimit::{Algorithm, Limiter, OnStoreFailure, Quota, Rule};

use crate::domain::events::Event;
use crate::domain::model::{Conversation, Member};
use crate::error::ChatError;
use crate::settings::ChatSettings;
use crate::store::Store;
use crate::store::presence::Presences;
use live::Live;

pub(crate) use praxis_infra::sql::now_ms;

/// The chat's use cases over its store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UseCases {
    store: Store,
    live: Live,
    presences: Presences,
    limiter: Limiter,
    send_rule: Rule,
    settings: Arc<ChatSettings>,
}

impl UseCases {
    /// The use cases over `store`, telling live connections through `live`, limiting sends
    /// with `limiter`.
    pub fn new(
        store: Store,
        live: Live,
        presences: Presences,
        limiter: Limiter,
        settings: Arc<ChatSettings>,
    ) -> Self {
        let per_second = Quota::new(settings.send_rate.max(1), Duration::from_secs(1))
            .unwrap_or_else(|_| unreachable!("a positive rate per second is a quota"));
        Self {
            store,
            live,
            presences,
            limiter,
            send_rule: Rule::new(Algorithm::Gcra, per_second),
            settings,
        }
    }

    /// A live connection of `me` (a WebSocket or an event stream), within
    /// `connections_per_account`.
    pub fn connect(&self, me: &str) -> Result<live::Connection, ChatError> {
        let max = self.settings.connections_per_account;
        self.live
            .connect(me, self.settings.outbound_queue, max)
            .map_err(|_| {
                ChatError::Limited(
                    Duration::from_secs(1),
                    format!(
                        "{me} already holds {max} live connections here (the connections_per_account setting); close one first"
                    ),
                )
            })
    }

    /// Counts one send of `me` against `send_rate`.
    async fn send_allowed(&self, me: &str) -> Result<(), ChatError> {
        let verdict = self
            .limiter
            .check(
                &format!("chat:send:{me}"),
                &self.send_rule,
                1,
                OnStoreFailure::Local,
            )
            .await;
        if verdict.decision.allowed {
            return Ok(());
        }
        let wait = verdict
            .decision
            .retry_after
            .unwrap_or(Duration::from_secs(1));
        Err(ChatError::Limited(
            wait,
            format!(
                "more than {} messages per second (the send_rate setting); retry after {} ms",
                self.settings.send_rate,
                wait.as_millis()
            ),
        ))
    }

    /// The lowest sequence a client catching up in `conversation` can still get: the oldest
    /// kept message, or `last_seq + 1` when none is kept.
    pub async fn first_kept(&self, conversation: &str, last_seq: i64) -> Result<i64, ChatError> {
        Ok(self
            .store
            .first_seq(conversation)
            .await?
            .unwrap_or(last_seq + 1))
    }

    /// The live connections of this process.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Tells every process; a failure is logged, not returned: the change is stored, and
    /// connections that miss a message fill the gap from the store.
    async fn tell(&self, event: Event) {
        if let Err(e) = self.live.publish(&event).await {
            tracing::warn!(error = %e, "chat: live event not published; clients catch up from the store");
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// `me`'s membership of `conversation`, or not found: a non-member cannot tell a
    /// conversation it is not in from one that does not exist.
    async fn membership(
        &self,
        me: &str,
        conversation: &str,
    ) -> Result<(Conversation, Member), ChatError> {
        self.store
            .membership(conversation, me)
            .await?
            .ok_or_else(|| {
                ChatError::NotFound(format!("no conversation {conversation} among yours"))
            })
    }
}

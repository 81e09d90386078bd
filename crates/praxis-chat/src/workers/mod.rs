//! The chat's use cases: conversations and their members ([`conversations`]), messages,
//! history and read markers ([`messages`]). Every one of them acts for one account and sees
//! only that account's conversations. They use the store and the domain, never the API layer.

pub mod conversations;
pub mod live;
pub mod messages;

use std::sync::Arc;

use crate::domain::events::Event;
use crate::domain::model::{Conversation, Member};
use crate::error::ChatError;
use crate::settings::ChatSettings;
use crate::store::Store;
use live::Live;

pub(crate) use praxis_infra::sql::now_ms;

/// The chat's use cases over its store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UseCases {
    store: Store,
    live: Live,
    settings: Arc<ChatSettings>,
}

impl UseCases {
    /// The use cases over `store`, telling live connections through `live`.
    pub fn new(store: Store, live: Live, settings: Arc<ChatSettings>) -> Self {
        Self {
            store,
            live,
            settings,
        }
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
        let missing = || ChatError::NotFound(format!("no conversation {conversation} among yours"));
        let Some(member) = self.store.member(conversation, me).await? else {
            return Err(missing());
        };
        let Some(found) = self.store.conversation(conversation).await? else {
            return Err(missing());
        };
        Ok((found, member))
    }
}

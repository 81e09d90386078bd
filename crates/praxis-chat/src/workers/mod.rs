//! The chat's use cases: conversations and their members ([`conversations`]), messages,
//! history and read markers ([`messages`]). Every one of them acts for one account and sees
//! only that account's conversations. They use the store and the domain, never the API layer.

pub mod conversations;
pub mod messages;

use std::sync::Arc;

use crate::domain::model::{Conversation, Member};
use crate::error::ChatError;
use crate::settings::ChatSettings;
use crate::store::Store;

pub(crate) use praxis_infra::sql::now_ms;

/// The chat's use cases over its store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UseCases {
    store: Store,
    settings: Arc<ChatSettings>,
}

impl UseCases {
    /// The use cases over `store`, with `settings`.
    pub fn new(store: Store, settings: Arc<ChatSettings>) -> Self {
        Self { store, settings }
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

//! praxis-chat: conversations and messages for praxis accounts.
//!
//! - Direct conversations (one per pair of accounts) and groups with owners and members
//!   ([`workers::conversations`]).
//! - Messages with a per-conversation sequence number that is gapless and strictly increasing,
//!   given in the transaction that stores the message; a resend with the same client id is
//!   the same message ([`store`], [`workers::messages`]).
//! - History paged by sequence (`after` for catch-up, `before` to scroll back), edits,
//!   tombstones, read markers and unread counts ([`api`]).
//!
//! - A WebSocket at `/api/v1/chat/ws`: subscribe with the last sequence held and get exactly
//!   the missing messages, then live ones, in order, from any process ([`api::ws`],
//!   [`workers::live`]); send, read receipts and typing over the same socket.
//!
//! Not built yet (issue 17 is open): the SSE fallback, delivery receipts, presence, the
//! `reset` beyond a retention, connection limits and end-to-end encryption.
//!
//! [`Chat::launch`] wires it onto a [`Platform`]; the binary starts it through [`ChatSystem`].

pub mod api;
pub mod domain;
pub mod error;
pub mod settings;
pub mod store;
mod system;
pub mod workers;

use std::sync::Arc;

use praxis_http::Service;
use praxis_http::system::{Settings, invalid_settings};
use praxis_infra::{InfraError, Platform};

pub use error::ChatError;
pub use settings::ChatSettings;
pub use store::migrations::MIGRATIONS;
pub use system::ChatSystem;

use crate::store::Store;
use crate::store::presence::Presences;
use crate::workers::UseCases;
use crate::workers::live::{self, Live};

/// The running chat. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Chat {
    chat: UseCases,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Chat {
    /// Checks the settings and builds the chat on `platform`; its migrations must have been
    /// applied (the binary applies every migration once, then launches).
    pub async fn launch(platform: &Platform, settings: ChatSettings) -> Result<Chat, InfraError> {
        Settings::validate(&settings).map_err(|e| invalid_settings("chat", &e))?;
        let store = Store::new(platform.db.clone());
        let live = Live::new(platform.broadcaster.clone());
        // Subscribed before anything can publish, so no event of this process is missed.
        let events = platform.broadcaster.subscribe(live::CHANNEL);
        platform
            .tasks
            .spawn(live.clone().run(events, platform.shutdown.clone()));
        if !settings.retention.is_zero() {
            platform.tasks.spawn(workers::retention::run(
                store.clone(),
                settings.retention,
                platform.shutdown.clone(),
            ));
        }
        Ok(Chat {
            chat: UseCases::new(
                store,
                live,
                Presences::new(platform.redis().cloned(), &settings.key_prefix),
                platform.limiter.clone(),
                Arc::new(settings),
            ),
            shutdown: platform.shutdown.clone(),
        })
    }

    /// The chat routes under `/api/v1/chat`.
    pub fn service(&self) -> Service {
        let (router, openapi) =
            api::router(api::AppState::new(self.chat.clone(), self.shutdown.clone()));
        Service::new("chat", router, openapi)
    }

    /// The use cases (for programs that drive the chat without HTTP).
    pub fn use_cases(&self) -> &UseCases {
        &self.chat
    }
}

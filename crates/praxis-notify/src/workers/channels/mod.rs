//! Delivery channels: one [`Provider`] trait, one adapter per channel.
//!
//! A provider sends one rendered message to one address and says whether a failure is worth
//! retrying ([`SendError::Transient`], optionally with the receiver's `Retry-After`) or not
//! ([`SendError::Permanent`]). The pipeline owns retries, rate limits and the circuit breaker;
//! providers only send.

pub mod email;
pub mod gateway;
pub mod standard_webhooks;
pub mod webhook;

pub use email::{EmailProvider, SmtpSettings, SmtpTls};
pub use gateway::GatewayProvider;
pub use webhook::{WebhookProvider, WebhookSettings};

use std::time::Duration;

/// One message ready to send: the template already rendered for this recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Delivery id (UUIDv7 text). Stable across retries and restarts: providers pass it on as
    /// the receiver's deduplication key (`webhook-id`, the email `Message-ID`).
    pub delivery_id: String,
    /// Where to: an email address, a URL, a phone number (E.164) or a push token.
    pub address: String,
    /// Subject (email), title (push, in-app); may be empty.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body (email only); `None` sends text only.
    pub html: Option<String>,
    /// The event type for webhooks, e.g. the template name.
    pub event_type: String,
    /// The template's data, passed through in webhook payloads.
    pub data: serde_json::Value,
    /// Unsubscribe URL for `List-Unsubscribe` (email), when the deployment has one.
    pub unsubscribe_url: Option<String>,
}

/// What a provider reports after a successful send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's name (e.g. `"smtp"`, `"eml-file"`, `"webhook"`).
    pub provider: String,
    /// Short description for the attempt log (e.g. `"250 2.0.0 queued"`, `"HTTP 204"`).
    pub detail: String,
}

/// Why a send did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// May work later (timeout, connection refused, 5xx, 429, SMTP 4xx): retry with backoff,
    /// not before `retry_after` when the receiver named one.
    #[error("transient: {detail}")]
    Transient {
        /// What happened, for the attempt log.
        detail: String,
        /// The receiver's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// Will never work as sent (invalid address, 4xx other than 408/429, SMTP 5xx): no retry.
    #[error("permanent: {detail}")]
    Permanent {
        /// What happened, for the attempt log.
        detail: String,
    },
}

/// Sends rendered messages on one channel.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Stable provider name for metrics, rate limits and the breaker (e.g. `"smtp"`).
    fn name(&self) -> &str;

    /// Sends one message. Must not retry internally.
    async fn send(&self, message: &Outgoing) -> Result<Receipt, SendError>;
}

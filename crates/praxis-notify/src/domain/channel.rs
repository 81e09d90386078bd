//! The delivery channels, as named in the API, the database and the metrics.

/// The channels a notification can go out on.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email over SMTP (or .eml files when no SMTP server is configured).
    Email,
    /// A signed JSON POST (Standard Webhooks).
    Webhook,
    /// A text message through a webhook-shaped SMS gateway.
    Sms,
    /// A push notification through a webhook-shaped push gateway.
    Push,
    /// The subscriber's in-app inbox (stored by praxis, streamed over SSE).
    InApp,
}

impl Channel {
    /// Every channel, in a stable order.
    pub const ALL: [Channel; 5] = [
        Channel::Email,
        Channel::Webhook,
        Channel::Sms,
        Channel::Push,
        Channel::InApp,
    ];

    /// The name used in the API, the database and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::InApp => "in_app",
        }
    }

    /// Parses [`Channel::as_str`].
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

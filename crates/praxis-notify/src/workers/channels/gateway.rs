//! SMS and push through webhook-shaped gateways.
//!
//! praxis does not talk to carriers or to APNs/FCM itself. An SMS or push delivery is a signed
//! JSON POST to one configured gateway URL (a small service of yours, or an adapter in front of
//! Twilio, Vonage, FCM, ...), exactly like a [webhook](super::webhook): the same
//! `webhook-id` / `webhook-timestamp` / `webhook-signature` headers (Standard Webhooks, so the
//! gateway can check the request came from praxis and dedupe retries on `webhook-id`) and the
//! same outcome rules (2xx delivered; 408, 429, 5xx and connection errors transient with
//! `Retry-After`; other statuses permanent). The body is
//!
//! ```json
//! {"to": "+33612345678", "title": "Your code", "text": "Your code is 123456", "data": {"code": "123456"}}
//! ```
//!
//! - `to`: the phone number (E.164) for SMS, the device token for push.
//! - `title`: the rendered subject (empty when the template has none; SMS gateways ignore it).
//! - `text`: the rendered text body.
//! - `data`: the message's template data, for push payloads that carry data.
//!
//! # Adding a provider
//!
//! To talk to a service directly instead of through a gateway, implement
//! [`Provider`] for a new type in this folder: `name()` returns a stable name
//! (used for metrics, rate limits and the circuit breaker), and `send()` makes exactly one
//! attempt and maps the outcome to [`Receipt`], [`SendError::Transient`] (may work later;
//! pass the service's retry hint as `retry_after`) or [`SendError::Permanent`] (will never
//! work as sent, e.g. an invalid number). Do not retry inside `send`: the pipeline retries with
//! backoff, applies the rate limit and the breaker, and records every attempt. Use
//! `Outgoing::delivery_id` as the service's idempotency key when it has one. Then construct it
//! where the notify service builds its providers from settings.

use super::webhook::{SignedPoster, WebhookSettings};
use super::{Outgoing, Provider, Receipt, SendError};
use crate::domain::channel::Channel;

/// An SMS or push provider posting to a webhook-shaped gateway (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct GatewayProvider {
    kind: Channel,
    url: String,
    poster: SignedPoster,
}

impl GatewayProvider {
    /// A gateway for `kind` ([`Channel::Sms`] or [`Channel::Push`]) at `url`, signing with
    /// `settings.secret` (the SSRF guard, `settings.ssrf`, does not apply: the operator chose
    /// the URL). Fails on another channel, a URL that is not `http(s)`, or an invalid
    /// secret.
    pub fn new(
        kind: Channel,
        url: &str,
        settings: WebhookSettings,
    ) -> Result<GatewayProvider, String> {
        if !matches!(kind, Channel::Sms | Channel::Push) {
            return Err(format!(
                "a gateway provider is for sms or push, not {}",
                kind.as_str()
            ));
        }
        let parsed = url::Url::parse(url)
            .map_err(|e| format!("invalid {} gateway URL: {e}", kind.as_str()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "invalid {} gateway URL: the scheme must be http or https",
                kind.as_str()
            ));
        }
        Ok(GatewayProvider {
            kind,
            url: url.to_owned(),
            poster: SignedPoster::new(&settings, false)?,
        })
    }

    /// The channel this gateway serves.
    pub fn channel(&self) -> Channel {
        self.kind
    }

    /// The exact body sent for `message`.
    pub fn payload(message: &Outgoing) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Payload<'a> {
            to: &'a str,
            title: &'a str,
            text: &'a str,
            data: &'a serde_json::Value,
        }
        // Serializing strings and a JSON value cannot fail.
        serde_json::to_vec(&Payload {
            to: &message.address,
            title: &message.subject,
            text: &message.text,
            data: &message.data,
        })
        .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Provider for GatewayProvider {
    fn name(&self) -> &str {
        match self.kind {
            Channel::Push => "push-gateway",
            _ => "sms-gateway",
        }
    }

    async fn send(&self, message: &Outgoing) -> Result<Receipt, SendError> {
        if message.address.trim().is_empty() {
            return Err(SendError::Permanent {
                detail: format!("empty {} address", self.kind.as_str()),
            });
        }
        let body = GatewayProvider::payload(message);
        self.poster
            .post(
                self.name(),
                &self.url,
                &message.delivery_id,
                jiff::Timestamp::now(),
                body,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings() -> WebhookSettings {
        WebhookSettings {
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            timeout: Duration::from_secs(1),
            user_agent: "ua".into(),
            ssrf: crate::domain::ssrf::SsrfPolicy::default(),
            trust: praxis_infra::tls::TrustPolicy::system(),
        }
    }

    #[test]
    fn only_sms_and_push_with_an_http_url() {
        let sms =
            GatewayProvider::new(Channel::Sms, "http://127.0.0.1:1/sms", settings()).expect("sms");
        assert_eq!((sms.name(), sms.channel()), ("sms-gateway", Channel::Sms));
        let push = GatewayProvider::new(Channel::Push, "https://example.com/push", settings())
            .expect("push");
        assert_eq!(push.name(), "push-gateway");
        let err = GatewayProvider::new(Channel::Email, "http://x", settings()).expect_err("email");
        assert!(err.contains("not email"), "{err}");
        assert!(GatewayProvider::new(Channel::Sms, "ftp://x", settings()).is_err());
        assert!(GatewayProvider::new(Channel::Sms, "not a url", settings()).is_err());
    }

    #[test]
    fn the_payload_is_to_title_text_data() {
        let m = Outgoing {
            delivery_id: "d".into(),
            address: "+33612345678".into(),
            subject: "Your code".into(),
            text: "Code 1".into(),
            html: Some("<p>ignored</p>".into()),
            event_type: "otp".into(),
            data: serde_json::json!({"code": "1"}),
            unsubscribe_url: None,
        };
        assert_eq!(
            String::from_utf8(GatewayProvider::payload(&m)).expect("utf-8"),
            r#"{"to":"+33612345678","title":"Your code","text":"Code 1","data":{"code":"1"}}"#
        );
    }
}

//! The webhook channel: a signed JSON POST to the subscriber's URL (Standard Webhooks).
//!
//! Each delivery is one `POST {address}` with `content-type: application/json` and the body
//!
//! ```json
//! {"type": "order.shipped", "timestamp": "2026-11-03T20:26:10.344522Z", "data": {"order": 42}}
//! ```
//!
//! - `type`: the message's event type (the template name unless the sender chose one).
//! - `timestamp`: RFC 3339 UTC time of this attempt (praxis does not keep a separate event
//!   time; the receiver sees when the notification was sent).
//! - `data`: the template data of the message, as given to the send API.
//!
//! Headers: `webhook-id` = the delivery id (the same on every retry and after a crash: the
//! receiver's deduplication key), `webhook-timestamp` = unix seconds of this attempt,
//! `webhook-signature` = `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` (see
//! [`standard_webhooks`] to verify it), plus the configured
//! `user-agent`, and `traceparent` (W3C Trace Context) naming the delivery's span, so the
//! receiver's work joins the trace of the request that sent the notification.
//!
//! Outcome: any 2xx is delivered. 408, 429 and 5xx, timeouts and connection errors are
//! [`SendError::Transient`] (with the response's `Retry-After`, in seconds or as an HTTP date,
//! when present). Redirects are not followed (a signed POST should reach the configured URL,
//! not wherever a redirect points): 3xx and the other 4xx are [`SendError::Permanent`], as is
//! an address that is not an `http(s)` URL.
//!
//! The [SSRF guard](crate::domain::ssrf) applies to webhooks (not to the gateways): the client
//! resolves names through [`GuardedResolver`] and uses no proxy, and a URL whose host is a
//! refused literal IP address is not posted to. A blocked destination is a
//! [`SendError::Permanent`] whose detail starts with `blocked by the SSRF guard`.

use super::standard_webhooks::{self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret};
use super::{Outgoing, Provider, Receipt, SendError};
use crate::domain::ssrf::{self, GuardedResolver, SsrfPolicy};
use praxis_infra::tls::TrustPolicy;
use praxis_infra::trace;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// How webhooks (and the webhook-shaped gateways) are sent.
#[derive(Clone)]
pub struct WebhookSettings {
    /// The signing secret, `whsec_` + base64 of 24 to 64 bytes (Standard Webhooks).
    pub secret: String,
    /// Whole-request timeout (connect, send, response headers and body).
    pub timeout: Duration,
    /// The `user-agent` header, e.g. `praxis-notify/0.1`.
    pub user_agent: String,
    /// Where webhooks may go (the [SSRF guard](crate::domain::ssrf)); the gateways ignore it.
    pub ssrf: SsrfPolicy,
    /// Which server certificates `https` receivers may present: the platform's trust policy
    /// (the OS store plus the server's `tls_ca_file`).
    pub trust: TrustPolicy,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .field("ssrf", &self.ssrf)
            .field("trust", &self.trust)
            .finish()
    }
}

/// At most this much of a failed response's body goes into the attempt log.
const BODY_SNIPPET: usize = 200;

/// A signing HTTP client shared by the webhook provider and the gateways.
#[derive(Debug, Clone)]
pub(crate) struct SignedPoster {
    client: reqwest::Client,
    secret: Secret,
    /// The SSRF guard's policy when it applies (webhooks), `None` for the gateways.
    guard: Option<SsrfPolicy>,
}

impl SignedPoster {
    /// A poster; `guarded` applies `settings.ssrf` (webhooks), otherwise posts go anywhere
    /// (the operator-configured gateways).
    pub(crate) fn new(settings: &WebhookSettings, guarded: bool) -> Result<Self, String> {
        let secret = Secret::parse(&settings.secret)?;
        let guard = (guarded && settings.ssrf.is_active()).then(|| settings.ssrf.clone());
        praxis_infra::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(settings.trust.client_config())
            .timeout(settings.timeout)
            .user_agent(settings.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none());
        if let Some(policy) = &guard {
            // A proxy would resolve the name itself, out of the guard's reach.
            builder = builder
                .dns_resolver(GuardedResolver::new(policy.clone()))
                .no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            client,
            secret,
            guard,
        })
    }

    /// POSTs `body` (JSON) to `url`, signed for message `id` at `now` (the
    /// `webhook-timestamp`), and classifies the outcome.
    pub(crate) async fn post(
        &self,
        provider: &str,
        url: &str,
        id: &str,
        now: jiff::Timestamp,
        body: Vec<u8>,
    ) -> Result<Receipt, SendError> {
        let parsed = url::Url::parse(url).map_err(|e| SendError::Permanent {
            detail: format!("invalid URL {url:?}: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SendError::Permanent {
                detail: format!("invalid URL {url:?}: the scheme must be http or https"),
            });
        }
        // Literal IP hosts never reach the resolver: check them here.
        if let Some(policy) = &self.guard
            && let Some(ip) = ssrf::literal_ip(&parsed)
            && let Err(refusal) = policy.check_ip(ip)
        {
            return Err(SendError::Permanent {
                detail: format!(
                    "blocked by the SSRF guard: {refusal}; {} (a CIDR list) or {} = true allows it",
                    ssrf::ALLOW_CIDRS_KEY,
                    ssrf::ALLOW_PRIVATE_KEY
                ),
            });
        }
        let ts = now.as_second();
        let signature = standard_webhooks::sign(&self.secret, id, ts, &body);
        let mut request = self
            .client
            .post(parsed)
            .header(CONTENT_TYPE, "application/json")
            .header(HEADER_ID, id)
            .header(HEADER_TIMESTAMP, ts.to_string())
            .header(HEADER_SIGNATURE, signature);
        // The receiver continues the trace of the delivery (W3C Trace Context).
        if let Some(ctx) = trace::current() {
            request = request.header(trace::TRACEPARENT, ctx.traceparent().as_str());
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| match ssrf::blocked_in(&e) {
                Some(blocked) => SendError::Permanent {
                    detail: blocked.to_string(),
                },
                None => SendError::Transient {
                    detail: describe_reqwest_error(&e),
                    retry_after: None,
                },
            })?;
        let status = response.status();
        let retry_after = retry_after(response.headers(), jiff::Timestamp::now());
        if status.is_success() {
            return Ok(Receipt {
                provider: provider.to_owned(),
                detail: format!("HTTP {}", status.as_u16()),
            });
        }
        let snippet = body_snippet(response).await;
        let detail = if snippet.is_empty() {
            format!("HTTP {}", status.as_u16())
        } else {
            format!("HTTP {}: {snippet}", status.as_u16())
        };
        if is_transient(status) {
            Err(SendError::Transient {
                detail,
                retry_after,
            })
        } else {
            Err(SendError::Permanent { detail })
        }
    }
}

/// 408, 429 and 5xx may succeed later; everything else that is not 2xx will not.
fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// The first [`BODY_SNIPPET`] characters of a response body, on one line (best effort).
async fn body_snippet(mut response: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < BODY_SNIPPET * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(BODY_SNIPPET)
        .collect()
}

fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // The source chain says why (e.g. "Connection refused"); reqwest's Display alone does not.
    let mut detail = format!("{what}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    if detail.contains("UnknownIssuer") {
        detail.push_str(
            "; the receiver's certificate does not chain to a trusted CA: add that CA to tls_ca_file or to the OS trust store",
        );
    }
    detail
}

/// Parses `Retry-After`: delay seconds or an HTTP date (RFC 9110 section 10.2.3). A date in
/// the past means "now" (zero); anything unparseable is ignored.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER.parse_timestamp(value).ok()?;
    let ms = at.as_millisecond().saturating_sub(now.as_millisecond());
    Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

fn retry_after(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now))
}

/// The webhook channel's provider (see the [module docs](self) for the protocol).
#[derive(Debug, Clone)]
pub struct WebhookProvider {
    poster: SignedPoster,
}

impl WebhookProvider {
    /// A provider signing with `settings.secret`; fails when the secret is not a valid
    /// Standard Webhooks secret (the message says why, never the secret).
    pub fn new(settings: WebhookSettings) -> Result<WebhookProvider, String> {
        Ok(WebhookProvider {
            poster: SignedPoster::new(&settings, true)?,
        })
    }

    /// The exact body sent for `message` at `timestamp` (RFC 3339).
    pub fn payload(message: &Outgoing, timestamp: jiff::Timestamp) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Payload<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            timestamp: String,
            data: &'a serde_json::Value,
        }
        // Serializing a struct of strings and a JSON value cannot fail.
        serde_json::to_vec(&Payload {
            kind: &message.event_type,
            timestamp: timestamp.to_string(),
            data: &message.data,
        })
        .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Provider for WebhookProvider {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn send(&self, message: &Outgoing) -> Result<Receipt, SendError> {
        // One clock reading for the payload's timestamp and the signed header.
        let now = jiff::Timestamp::now();
        let body = WebhookProvider::payload(message, now);
        self.poster
            .post(
                self.name(),
                &message.address,
                &message.delivery_id,
                now,
                body,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = ts("2015-10-21T07:27:30Z");
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a past date means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                is_transient(StatusCode::from_u16(s).expect("status")),
                "{s}"
            );
        }
        for s in [301, 400, 401, 403, 404, 410, 413, 422] {
            assert!(
                !is_transient(StatusCode::from_u16(s).expect("status")),
                "{s}"
            );
        }
    }

    #[test]
    fn the_payload_is_type_timestamp_data() {
        let m = Outgoing {
            delivery_id: "d1".into(),
            address: "http://x".into(),
            subject: "s".into(),
            text: "t".into(),
            html: None,
            event_type: "order.shipped".into(),
            data: serde_json::json!({"order": 42}),
            unsubscribe_url: None,
        };
        let body = WebhookProvider::payload(&m, ts("2026-11-03T20:26:10.5Z"));
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            r#"{"type":"order.shipped","timestamp":"2026-11-03T20:26:10.5Z","data":{"order":42}}"#
        );
    }

    #[test]
    fn settings_debug_hides_the_secret() {
        let s = WebhookSettings {
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            timeout: Duration::from_secs(1),
            user_agent: "ua".into(),
            ssrf: SsrfPolicy::default(),
            trust: TrustPolicy::system(),
        };
        assert!(!format!("{s:?}").contains("MfKQ"));
        assert!(WebhookProvider::new(s).is_ok());
        let bad = WebhookSettings {
            secret: "whsec_short".into(),
            timeout: Duration::from_secs(1),
            user_agent: "ua".into(),
            ssrf: SsrfPolicy::default(),
            trust: TrustPolicy::system(),
        };
        assert!(WebhookProvider::new(bad).is_err());
    }
}

//! [Standard Webhooks](https://www.standardwebhooks.com) symmetric signatures (HMAC-SHA256),
//! for senders ([`sign`]) and receivers ([`verify`]).
//!
//! - The secret is shown to users as `whsec_` followed by the base64 (standard alphabet) of 24
//!   to 64 random bytes; [`Secret::parse`] also accepts the bare base64.
//! - Three headers go with every request: `webhook-id` (the message id, the same on every
//!   retry: the receiver's deduplication key), `webhook-timestamp` (unix seconds of this
//!   attempt) and `webhook-signature`: `v1,` followed by the base64 of
//!   `HMAC-SHA256(key, "{id}.{timestamp}.{body}")`. During a key rotation the header may hold
//!   several space-separated signatures; one matching is enough.
//! - A receiver checks the signature (constant-time) and that the timestamp is within a
//!   tolerance of its clock (5 minutes is the spec's recommendation) to stop replays.
//!
//! A receiver written with this module (axum):
//!
//! ```
//! use praxis_notify::workers::channels::standard_webhooks::{Secret, WebhookHeaders, verify};
//!
//! fn check(secret: &Secret, headers: &axum::http::HeaderMap, body: &[u8], now_s: i64) -> bool {
//!     WebhookHeaders::from_header_map(headers)
//!         .and_then(|h| verify(secret, &h, body, now_s, 300))
//!         .is_ok()
//! }
//! # let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! # assert!(!check(&secret, &axum::http::HeaderMap::new(), b"{}", 0));
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;

/// The `webhook-id` header.
pub const HEADER_ID: &str = "webhook-id";
/// The `webhook-timestamp` header.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The `webhook-signature` header.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The prefix of a serialized secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.key.len())
    }
}

impl Secret {
    /// The shortest key the spec allows, in bytes.
    pub const MIN_BYTES: usize = 24;
    /// The longest key the spec allows, in bytes.
    pub const MAX_BYTES: usize = 64;

    /// Parses `whsec_<base64>` (or the bare base64). The message says what is wrong, never
    /// the secret.
    pub fn parse(s: &str) -> Result<Secret, String> {
        let b64 = s.trim().strip_prefix(SECRET_PREFIX).unwrap_or(s.trim());
        let key = STANDARD.decode(b64).map_err(|_| {
            format!("the webhook secret must be \"{SECRET_PREFIX}\" followed by base64")
        })?;
        Secret::from_bytes(&key)
    }

    /// A secret from raw key bytes (24 to 64 of them).
    pub fn from_bytes(key: &[u8]) -> Result<Secret, String> {
        if !(Self::MIN_BYTES..=Self::MAX_BYTES).contains(&key.len()) {
            return Err(format!(
                "the webhook secret must decode to {} to {} bytes, not {}",
                Self::MIN_BYTES,
                Self::MAX_BYTES,
                key.len()
            ));
        }
        Ok(Secret { key: key.to_vec() })
    }

    /// The serialized form, `whsec_<base64>`, to show to the receiver's owner.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// The `webhook-signature` value for one request: `v1,<base64 signature>`.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.mac(id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The three header values of a received webhook, as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp` (unix seconds, as text).
    pub timestamp: &'a str,
    /// `webhook-signature` (one or more space-separated `v1,<base64>`).
    pub signature: &'a str,
}

impl<'a> WebhookHeaders<'a> {
    /// Reads the three headers from an HTTP header map.
    pub fn from_header_map(headers: &'a axum::http::HeaderMap) -> Result<Self, VerifyError> {
        let get = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or(VerifyError::MissingHeader(name))
        };
        Ok(WebhookHeaders {
            id: get(HEADER_ID)?,
            timestamp: get(HEADER_TIMESTAMP)?,
            signature: get(HEADER_SIGNATURE)?,
        })
    }
}

/// Why a webhook did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing (or not visible ASCII).
    #[error("missing or unreadable header {0}")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer.
    #[error("webhook-timestamp is not unix seconds")]
    InvalidTimestamp,
    /// The timestamp is older than the tolerance (a replay or a very late retry).
    #[error("webhook-timestamp is too old")]
    TooOld,
    /// The timestamp is further in the future than the tolerance.
    #[error("webhook-timestamp is too far in the future")]
    TooNew,
    /// No `v1` signature in the header matches.
    #[error("no matching signature")]
    NoMatchingSignature,
}

/// Verifies a received webhook: the timestamp within `tolerance_s` of `now_s` and at least
/// one `v1` signature of `{id}.{timestamp}.{body}` matching (compared in constant time).
pub fn verify(
    secret: &Secret,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    now_s: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = headers
        .timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    if ts < now_s.saturating_sub(tolerance_s) {
        return Err(VerifyError::TooOld);
    }
    if ts > now_s.saturating_add(tolerance_s) {
        return Err(VerifyError::TooNew);
    }
    let expected = secret.mac(headers.id, ts, body);
    let matched = headers
        .signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|tag| expected.clone().verify_slice(&tag).is_ok());
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // From the Standard Webhooks reference libraries' test suites
    // (libraries/javascript/src/webhook.test.ts, "sign function works").
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1_614_265_330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn spec_secret() -> Secret {
        Secret::parse(SPEC_SECRET).expect("spec secret")
    }

    fn headers<'a>(ts: &'a str, sig: &'a str) -> WebhookHeaders<'a> {
        WebhookHeaders {
            id: SPEC_ID,
            timestamp: ts,
            signature: sig,
        }
    }

    #[test]
    fn matches_the_spec_test_vector() {
        assert_eq!(
            sign(&spec_secret(), SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes()),
            SPEC_SIGNATURE
        );
        let ts = SPEC_TS.to_string();
        verify(
            &spec_secret(),
            &headers(&ts, SPEC_SIGNATURE),
            SPEC_BODY.as_bytes(),
            SPEC_TS,
            300,
        )
        .expect("verifies");
    }

    #[test]
    fn the_prefix_is_optional_and_round_trips() {
        let bare = Secret::parse(SPEC_SECRET.trim_start_matches(SECRET_PREFIX)).expect("bare");
        assert_eq!(bare, spec_secret());
        assert_eq!(spec_secret().to_whsec(), SPEC_SECRET);
        assert!(!format!("{:?}", spec_secret()).contains("MfKQ"));
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert!(Secret::parse("whsec_not base64!").is_err());
        let short =
            Secret::parse(&format!("whsec_{}", STANDARD.encode([1u8; 23]))).expect_err("short");
        assert!(short.contains("24 to 64 bytes, not 23"), "{short}");
        assert!(Secret::from_bytes(&[0; 65]).is_err());
        assert!(Secret::from_bytes(&[0; 64]).is_ok());
    }

    #[test]
    fn tampering_is_detected() {
        let s = spec_secret();
        let ts = SPEC_TS.to_string();
        let body = SPEC_BODY.as_bytes();
        let err = |h: WebhookHeaders<'_>, b: &[u8]| {
            verify(&s, &h, b, SPEC_TS, 300).expect_err("tampered")
        };
        assert_eq!(
            err(headers(&ts, SPEC_SIGNATURE), br#"{"test": 2432232315}"#),
            VerifyError::NoMatchingSignature
        );
        let other_ts = (SPEC_TS + 1).to_string();
        assert_eq!(
            err(headers(&other_ts, SPEC_SIGNATURE), body),
            VerifyError::NoMatchingSignature
        );
        let other_id = WebhookHeaders {
            id: "msg_other",
            ..headers(&ts, SPEC_SIGNATURE)
        };
        assert_eq!(err(other_id, body), VerifyError::NoMatchingSignature);
        assert_eq!(
            err(headers(&ts, "v1,dawfeoifkpqwoekfpqoekf"), body),
            VerifyError::NoMatchingSignature
        );
        assert_eq!(
            err(headers(&ts, &SPEC_SIGNATURE[..8]), body),
            VerifyError::NoMatchingSignature
        );
        assert_eq!(
            err(headers(&ts, "v1,"), body),
            VerifyError::NoMatchingSignature
        );
        assert_eq!(
            err(headers(&ts, &SPEC_SIGNATURE.replace("v1,", "v2,")), body),
            VerifyError::NoMatchingSignature
        );
        assert_eq!(
            err(headers("hello", SPEC_SIGNATURE), body),
            VerifyError::InvalidTimestamp
        );
        let other_key = Secret::from_bytes(&[7; 32]).expect("key");
        assert_eq!(
            verify(
                &other_key,
                &headers(&ts, SPEC_SIGNATURE),
                body,
                SPEC_TS,
                300
            ),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_fail() {
        let s = spec_secret();
        let ts = SPEC_TS.to_string();
        let h = headers(&ts, SPEC_SIGNATURE);
        let body = SPEC_BODY.as_bytes();
        assert_eq!(
            verify(&s, &h, body, SPEC_TS + 301, 300),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            verify(&s, &h, body, SPEC_TS - 301, 300),
            Err(VerifyError::TooNew)
        );
        assert_eq!(verify(&s, &h, body, SPEC_TS + 300, 300), Ok(()));
        assert_eq!(verify(&s, &h, body, SPEC_TS - 300, 300), Ok(()));
    }

    #[test]
    fn one_matching_signature_of_several_is_enough() {
        let ts = SPEC_TS.to_string();
        let sigs = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SPEC_SIGNATURE} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        );
        verify(
            &spec_secret(),
            &headers(&ts, &sigs),
            SPEC_BODY.as_bytes(),
            SPEC_TS,
            300,
        )
        .expect("verifies");
    }

    #[test]
    fn reads_headers_from_a_header_map() {
        let mut map = axum::http::HeaderMap::new();
        map.insert(HEADER_ID, SPEC_ID.parse().expect("value"));
        map.insert(
            HEADER_TIMESTAMP,
            SPEC_TS.to_string().parse().expect("value"),
        );
        assert_eq!(
            WebhookHeaders::from_header_map(&map),
            Err(VerifyError::MissingHeader(HEADER_SIGNATURE))
        );
        map.insert(HEADER_SIGNATURE, SPEC_SIGNATURE.parse().expect("value"));
        let h = WebhookHeaders::from_header_map(&map).expect("headers");
        verify(&spec_secret(), &h, SPEC_BODY.as_bytes(), SPEC_TS, 0).expect("verifies");
    }

    proptest! {
        #[test]
        fn sign_then_verify_and_any_flipped_bit_fails(
            key in proptest::collection::vec(any::<u8>(), 24..=64),
            id in "[a-zA-Z0-9_-]{1,40}",
            ts in 0i64..4_000_000_000,
            body in proptest::collection::vec(any::<u8>(), 0..200),
            flip in any::<prop::sample::Index>(),
        ) {
            let s = Secret::from_bytes(&key).expect("key");
            let sig = sign(&s, &id, ts, &body);
            let ts_text = ts.to_string();
            let h = WebhookHeaders { id: &id, timestamp: &ts_text, signature: &sig };
            prop_assert_eq!(verify(&s, &h, &body, ts, 0), Ok(()));
            if !body.is_empty() {
                let mut tampered = body.clone();
                let i = flip.index(tampered.len());
                tampered[i] ^= 1;
                prop_assert_eq!(verify(&s, &h, &tampered, ts, 0), Err(VerifyError::NoMatchingSignature));
            }
        }
    }
}

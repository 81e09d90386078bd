//! Request ids: taken from `x-request-id` when sane (1..=128 visible ASCII characters),
//! otherwise generated (UUIDv7, so ids sort by time). The stack puts the id in the request
//! extensions, echoes it on the response and writes it into problems and the access log.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use rand::Rng;

/// The request id header, read and echoed.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest accepted incoming id.
pub const MAX_LEN: usize = 128;

/// The id of the current request (a request extension); also an extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text (always ASCII).
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("")
    }

    /// The incoming id if sane, else a fresh one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        match headers.get(&X_REQUEST_ID) {
            Some(v) if is_sane(v.as_bytes()) => RequestId(v.clone()),
            _ => Self::generate(),
        }
    }

    /// A fresh UUIDv7 id (random bits from the thread-local RNG: no syscall per request).
    pub fn generate() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let millis = now.as_secs() * 1000 + u64::from(now.subsec_millis());
        let mut random = [0u8; 10];
        rand::rng().fill_bytes(&mut random);
        let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = uuid.hyphenated().encode_lower(&mut buf);
        // A hyphenated UUID is always a valid header value.
        RequestId(
            HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid")),
        )
    }
}

/// True for 1..=128 visible ASCII bytes (0x21..=0x7e): no spaces, controls or non-ASCII, so the
/// id is safe in logs and headers.
pub fn is_sane(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanity_rules() {
        assert!(is_sane(b"abc-123"));
        assert!(is_sane(&[b'a'; 128]));
        assert!(!is_sane(&[b'a'; 129]));
        assert!(!is_sane(b""));
        assert!(!is_sane(b"has space"));
        assert!(!is_sane(b"tab\t"));
        assert!(!is_sane("é".as_bytes()));
    }

    #[test]
    fn takes_sane_and_replaces_insane() {
        let mut h = HeaderMap::new();
        h.insert(&X_REQUEST_ID, HeaderValue::from_static("client-id-1"));
        assert_eq!(RequestId::from_headers(&h).as_str(), "client-id-1");
        h.insert(&X_REQUEST_ID, HeaderValue::from_static("bad id"));
        let generated = RequestId::from_headers(&h);
        assert_ne!(generated.as_str(), "bad id");
        let parsed = uuid::Uuid::parse_str(generated.as_str()).expect("uuid");
        assert_eq!(parsed.get_version_num(), 7);
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(RequestId::generate(), RequestId::generate());
    }
}

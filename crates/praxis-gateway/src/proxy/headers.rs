//! What the gateway changes in the headers it forwards: hop-by-hop headers dropped,
//! `X-Forwarded-For/-Proto/-Host` added, a W3C `traceparent` kept or started.

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};
use rand::RngExt;

/// Headers that belong to one connection (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, and those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Appends the client's address to `X-Forwarded-For` and sets `X-Forwarded-Proto` and
/// `X-Forwarded-Host` when a proxy in front has not.
pub fn add_forwarded(headers: &mut HeaderMap, client: IpAddr, host: Option<&str>) {
    let xff = HeaderName::from_static("x-forwarded-for");
    let value = match headers.get(&xff).and_then(|v| v.to_str().ok()) {
        Some(before) if !before.trim().is_empty() => format!("{before}, {client}"),
        _ => client.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(xff, v);
    }
    let proto = HeaderName::from_static("x-forwarded-proto");
    if !headers.contains_key(&proto) {
        headers.insert(proto, HeaderValue::from_static("http"));
    }
    let fwd_host = HeaderName::from_static("x-forwarded-host");
    if let Some(host) = host
        && !headers.contains_key(&fwd_host)
        && let Ok(v) = HeaderValue::from_str(host)
    {
        headers.insert(fwd_host, v);
    }
}

/// Whether `value` is a W3C trace context `traceparent` of version 00 with non-zero ids.
pub fn valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2)
}

/// Keeps a valid `traceparent` (the gateway records no span of its own, so the caller's span
/// stays the parent) or starts a new sampled trace; returns the value forwarded.
pub fn ensure_traceparent(headers: &mut HeaderMap) -> String {
    if let Some(v) = headers.get("traceparent").and_then(|v| v.to_str().ok())
        && valid_traceparent(v)
    {
        return v.to_owned();
    }
    let mut rng = rand::rng();
    let trace: u128 = rng.random_range(1..=u128::MAX);
    let span: u64 = rng.random_range(1..=u64::MAX);
    let value = format!("00-{trace:032x}-{span:016x}-01");
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert("traceparent", v);
    }
    value
}

/// The host a request is for (from `Host`, or the URI's authority in HTTP/2), without its
/// port, lowercased.
pub fn request_host(headers: &HeaderMap, uri: &http::Uri) -> Option<String> {
    let raw = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))?;
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        raw.split(':').next().unwrap_or(raw)
    };
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_by_connection_go() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn forwarded_for_is_appended() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        add_forwarded(&mut h, "10.0.0.9".parse().expect("ip"), Some("example.com"));
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "example.com");
    }

    #[test]
    fn traceparent_is_kept_or_started() {
        let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h = HeaderMap::new();
        h.insert("traceparent", HeaderValue::from_static(given));
        assert_eq!(ensure_traceparent(&mut h), given);
        let mut h = HeaderMap::new();
        h.insert("traceparent", HeaderValue::from_static("00-000-bad-01"));
        let made = ensure_traceparent(&mut h);
        assert!(valid_traceparent(&made), "{made}");
        assert_eq!(h["traceparent"], made.as_str());
        assert!(!valid_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
    }

    #[test]
    fn hosts_lose_their_port() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("Example.com:8090"));
        assert_eq!(
            request_host(&h, &http::Uri::from_static("/")).as_deref(),
            Some("example.com")
        );
        h.insert("host", HeaderValue::from_static("[::1]:80"));
        assert_eq!(
            request_host(&h, &http::Uri::from_static("/")).as_deref(),
            Some("::1")
        );
    }
}

//! The key a `ring_hash` pool hashes, read from a request.

use http::HeaderMap;

use crate::config::HashKey;

/// The bytes of `key` in a request with these headers and path; `None` when it is absent.
pub fn extract(key: &HashKey, headers: &HeaderMap, path: &str) -> Option<Vec<u8>> {
    match key {
        HashKey::Header(name) => headers.get(name.as_str()).map(|v| v.as_bytes().to_vec()),
        HashKey::Cookie(name) => headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_bytes().to_vec()),
        HashKey::PathSegment(n) => path
            .split('/')
            .filter(|s| !s.is_empty())
            .nth(*n)
            .map(|s| s.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_headers_cookies_and_paths() {
        let mut h = HeaderMap::new();
        h.insert("x-user", "u1".parse().expect("value"));
        h.insert("cookie", "a=1; session=s9; b=2".parse().expect("value"));
        let get = |k: &str, path: &str| extract(&k.parse().expect("key"), &h, path);
        assert_eq!(get("header:x-user", "/"), Some(b"u1".to_vec()));
        assert_eq!(get("header:x-none", "/"), None);
        assert_eq!(get("cookie:session", "/"), Some(b"s9".to_vec()));
        assert_eq!(get("path:1", "/users/42/feed"), Some(b"42".to_vec()));
        assert_eq!(get("path:5", "/users/42"), None);
    }
}

//! Opaque credentials: refresh tokens and API keys.
//!
//! Both are 32 random bytes (256 bits, from the thread-local CSPRNG) in base64url, and both are
//! stored only as their BLAKE3 hash. A slow password hash (argon2) is not needed for them:
//! slow hashing exists to make guessing low-entropy secrets expensive after a database leak,
//! and nobody can guess or invert a 256-bit random value, hashed fast or not. A fast hash also
//! keeps an API-key request at microseconds instead of the tens of milliseconds argon2 costs.
//!
//! - Refresh token: `prt_<secret>`, looked up by its hash.
//! - API key: `prx_<key id>_<secret>`. The prefix makes a leaked key recognisable (secret
//!   scanners, logs); the key id (32 hex digits, a UUIDv7) finds the row, then the hash of the
//!   secret is compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;

/// Prefix of API keys.
pub const API_KEY_PREFIX: &str = "prx_";
/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "prt_";
/// Length of the base64url text of a 32-byte secret.
pub const SECRET_LEN: usize = 43;
/// Length of an API key id (UUID, simple form).
pub const KEY_ID_LEN: usize = 32;

/// 32 random bytes as base64url without padding (43 characters).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a secret: its BLAKE3 hash, in hex.
pub fn hash_secret(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex().to_string()
}

/// Constant-time check of `secret` against a stored hex hash (a malformed stored hash never
/// matches).
pub fn secret_matches(secret: &str, stored_hex: &str) -> bool {
    match blake3::Hash::from_hex(stored_hex) {
        // blake3::Hash equality is constant-time.
        Ok(stored) => blake3::hash(secret.as_bytes()) == stored,
        Err(_) => false,
    }
}

/// A new refresh token.
pub fn new_refresh_token() -> String {
    format!("{REFRESH_PREFIX}{}", random_secret())
}

/// Whether a text has the shape of a refresh token.
pub fn is_refresh_token(token: &str) -> bool {
    token
        .strip_prefix(REFRESH_PREFIX)
        .is_some_and(|s| s.len() == SECRET_LEN && is_base64url(s))
}

/// A new API key: `(key id, secret, full key)`.
pub fn new_api_key() -> (String, String, String) {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let secret = random_secret();
    let key = format!("{API_KEY_PREFIX}{id}_{secret}");
    (id, secret, key)
}

/// Splits an API key into `(key id, secret)`; `None` when it does not have the shape.
pub fn parse_api_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_at_checked(KEY_ID_LEN)?;
    let secret = secret.strip_prefix('_')?;
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (id_ok && secret.len() == SECRET_LEN && is_base64url(secret)).then_some((id, secret))
}

/// The first characters of a key, safe to show in listings (`prx_0190ab12…`).
pub fn key_hint(key_id: &str) -> String {
    format!("{API_KEY_PREFIX}{}…", &key_id[..key_id.len().min(8)])
}

fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_parse_back() {
        let (id, secret, key) = new_api_key();
        assert!(key.starts_with("prx_"));
        assert_eq!(parse_api_key(&key), Some((id.as_str(), secret.as_str())));
        assert!(secret_matches(secret.as_str(), &hash_secret(&secret)));
        assert!(!secret_matches("other", &hash_secret(&secret)));
        assert!(!secret_matches(&secret, "zz"));
        assert_eq!(key_hint(&id).chars().count(), 4 + 8 + 1);
    }

    #[test]
    fn malformed_keys_are_refused() {
        let (_, _, key) = new_api_key();
        for bad in [
            "",
            "prx_",
            "prx_abc_def",
            &key[..key.len() - 1],
            &format!("{key}x"),
            &key.replace("prx_", "pry_"),
            &key.to_uppercase(),
        ] {
            assert_eq!(parse_api_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn refresh_tokens() {
        let t = new_refresh_token();
        assert!(is_refresh_token(&t));
        assert!(!is_refresh_token("prt_short"));
        assert_ne!(new_refresh_token(), t);
    }
}

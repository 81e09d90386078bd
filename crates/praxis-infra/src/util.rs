//! Small helpers shared by the adapters: clock, backoff and name checks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (UTC), the time representation of every praxis table.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Delay before retry number `attempt` (0-based): exponential from `base`, capped at `max`,
/// full jitter (praxis-kit's [`Backoff`](praxis_kit::backoff::Backoff)).
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    praxis_kit::backoff::Backoff::new(base, max).delay(attempt)
}

/// Whether `name` is a safe identifier for topics, groups, channels and cache names:
/// 1..=100 characters from `[A-Za-z0-9_.-]`, not starting or ending with a dot.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Checks a name with [`is_valid_name`], returning a config error that names `what`.
pub fn check_name(what: &str, name: &str) -> Result<(), crate::InfraError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(crate::InfraError::Config(format!(
            "invalid {what} {name:?}: use 1-100 characters from A-Z a-z 0-9 _ - . (no leading, trailing or double dots)"
        )))
    }
}

/// Maps a string to one NATS subject token / stream-name-safe string: characters outside
/// `[A-Za-z0-9_-]` become `_`, and the result is cut to `max` bytes (empty becomes `_`).
pub fn token(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// Like [`token`] for names that must stay distinct (topics, groups, prefixes): a name that
/// needed mapping gets a hash of the original appended, so `a.b` and `a_b` never share a
/// stream or consumer (`a.b` -> `a_b_<fnv32 hex>`, `a_b` -> `a_b`).
pub fn name_token(s: &str) -> String {
    let mapped = token(s, 100);
    if mapped == s {
        return mapped;
    }
    let hash = s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{mapped}_{hash:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped() {
        let max = Duration::from_secs(5);
        for attempt in 0..40 {
            assert!(backoff(Duration::from_millis(100), max, attempt) <= max);
        }
    }

    #[test]
    fn names_and_tokens() {
        assert!(is_valid_name("links.created"));
        assert!(is_valid_name("click_counter-2"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a..b"));
        assert!(!is_valid_name(".a"));
        assert!(!is_valid_name("a>"));
        assert_eq!(token("links.created", 64), "links_created");
        assert_eq!(token("", 64), "_");
        assert_eq!(token("héllo wörld", 5), "h_llo");
        assert_eq!(name_token("a_b"), "a_b");
        assert!(name_token("a.b").starts_with("a_b_"));
        assert_ne!(name_token("a.b"), name_token("a_b"));
        assert_ne!(name_token("a.b"), name_token("a-b"));
    }
}

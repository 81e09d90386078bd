//! Scopes: what a credential may do, as `<resource>:<action>` strings.
//!
//! An access token from a login carries every scope of [`ACCOUNT_SCOPES`]; an API key carries
//! the subset its owner chose when creating it (never more than the creator holds); the admin
//! role implies every scope.

/// Read the caller's short links.
pub const LINKS_READ: &str = "links:read";
/// Create, change and delete the caller's short links.
pub const LINKS_WRITE: &str = "links:write";
/// List the caller's API keys.
pub const KEYS_READ: &str = "keys:read";
/// Create and revoke the caller's API keys.
pub const KEYS_WRITE: &str = "keys:write";

/// Every scope an account's login token carries.
pub const ACCOUNT_SCOPES: &[&str] = &[LINKS_READ, LINKS_WRITE, KEYS_READ, KEYS_WRITE];

/// Most scopes on one API key.
pub const MAX_SCOPES: usize = 32;

/// Checks one scope's shape: `<resource>:<action>`, each 1 to 32 of `a-z 0-9 _ -`.
pub fn validate_scope(scope: &str) -> Result<(), String> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 32
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    match scope.split_once(':') {
        Some((resource, action)) if part_ok(resource) && part_ok(action) => Ok(()),
        _ => Err(format!(
            "{:?} is not a scope (expected <resource>:<action>, e.g. links:read)",
            truncate(scope)
        )),
    }
}

/// The space-separated `scope` claim of a token.
pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

/// Scopes from a space-separated claim (empty parts skipped).
pub fn split(claim: &str) -> Vec<String> {
    claim.split_whitespace().map(str::to_owned).collect()
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        for ok in ACCOUNT_SCOPES {
            assert!(validate_scope(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "links",
            ":read",
            "links:",
            "Links:read",
            "a:b:c",
            "a b:c",
        ] {
            assert!(validate_scope(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn claims_round_trip() {
        let s = vec!["links:read".to_owned(), "keys:write".to_owned()];
        assert_eq!(split(&join(&s)), s);
        assert!(split("  ").is_empty());
    }
}

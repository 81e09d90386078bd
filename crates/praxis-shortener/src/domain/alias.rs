//! Rules for custom aliases (vanity codes chosen by the caller).

/// Shortest accepted alias.
pub const MIN_ALIAS_LEN: usize = 3;
/// Longest accepted alias (also the longest code the redirect route looks up).
pub const MAX_ALIAS_LEN: usize = 64;

/// Words that cannot be aliases (compared case-insensitively): they name routes of the
/// service itself or of the wider site.
pub const RESERVED: &[&str] = &[
    "api",
    "healthz",
    "readyz",
    "metrics",
    "openapi",
    "docs",
    "admin",
    "static",
    "assets",
    "favicon.ico",
    "robots.txt",
    "sitemap.xml",
    "login",
    "logout",
    "signup",
    "auth",
    "well-known",
    ".well-known",
    "www",
    "health",
    "status",
];

/// Why an alias was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    /// Too short or too long.
    #[error("alias must be {MIN_ALIAS_LEN} to {MAX_ALIAS_LEN} characters long, got {0}")]
    Length(usize),
    /// A character outside `[A-Za-z0-9_-]`.
    #[error("alias may only contain letters, digits, `_` and `-`; `{0}` is not allowed")]
    Charset(char),
    /// A reserved word.
    #[error("alias `{0}` is reserved; choose another")]
    Reserved(String),
}

/// Whether `c` may appear in a code or alias.
pub fn is_code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether `s` could be a code at all (charset and length). The redirect path uses it to
/// answer 404 for impossible codes without touching any cache.
pub fn is_plausible_code(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ALIAS_LEN && s.chars().all(is_code_char)
}

/// Validates a custom alias.
pub fn validate_alias(alias: &str) -> Result<(), AliasError> {
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(alias)) {
        return Err(AliasError::Reserved(alias.to_owned()));
    }
    let len = alias.chars().count();
    if !(MIN_ALIAS_LEN..=MAX_ALIAS_LEN).contains(&len) {
        return Err(AliasError::Length(len));
    }
    if let Some(bad) = alias.chars().find(|c| !is_code_char(*c)) {
        return Err(AliasError::Charset(bad));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_good_aliases() {
        for a in ["abc", "my-link", "Promo_2026", &"x".repeat(64)] {
            assert_eq!(validate_alias(a), Ok(()), "{a}");
        }
    }

    #[test]
    fn rejects_bad_aliases() {
        assert_eq!(validate_alias("ab"), Err(AliasError::Length(2)));
        assert_eq!(validate_alias(&"x".repeat(65)), Err(AliasError::Length(65)));
        assert_eq!(validate_alias("a b"), Err(AliasError::Charset(' ')));
        assert_eq!(validate_alias("a/bc"), Err(AliasError::Charset('/')));
        assert_eq!(validate_alias("héllo"), Err(AliasError::Charset('é')));
        assert_eq!(
            validate_alias("API"),
            Err(AliasError::Reserved("API".into()))
        );
        assert_eq!(
            validate_alias("Healthz"),
            Err(AliasError::Reserved("Healthz".into()))
        );
        assert_eq!(
            validate_alias("favicon.ico"),
            Err(AliasError::Reserved("favicon.ico".into()))
        );
    }

    #[test]
    fn plausible_codes() {
        assert!(is_plausible_code("abc"));
        assert!(is_plausible_code("a"));
        assert!(!is_plausible_code(""));
        assert!(!is_plausible_code("a.b"));
        assert!(!is_plausible_code(&"x".repeat(65)));
    }

    proptest! {
        #[test]
        fn valid_aliases_are_plausible_codes(s in "\\PC{0,80}") {
            if validate_alias(&s).is_ok() {
                prop_assert!(is_plausible_code(&s));
            }
        }
    }
}

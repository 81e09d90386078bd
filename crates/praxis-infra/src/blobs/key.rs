//! Blob keys: what a key may be, checked before any I/O.

use crate::InfraError;

/// Longest key accepted, in bytes (S3 allows 1024 for the whole name, prefix included).
const MAX_KEY_LEN: usize = 512;

/// Checks a blob key: a relative name of `/`-separated segments of ASCII letters, digits,
/// `.`, `_` and `-`, no segment empty or starting with `.` (names starting with `.` are the
/// store's own), at most 512 bytes. The message says what is wrong and what is allowed.
pub fn check_key(key: &str) -> Result<(), InfraError> {
    check_name("key", key)
}

/// Checks `name` (a key, or the prefix of an S3 URL) by the key rules; `what` names it in the
/// message.
pub(super) fn check_name(what: &str, name: &str) -> Result<(), InfraError> {
    let problem = if name.is_empty() {
        Some("is empty".to_owned())
    } else if name.len() > MAX_KEY_LEN {
        Some(format!(
            "is {} bytes long (at most {MAX_KEY_LEN})",
            name.len()
        ))
    } else if name.starts_with('/') {
        Some("is absolute (starts with '/')".to_owned())
    } else {
        name.split('/').find_map(|segment| {
            if segment.is_empty() {
                Some("has an empty segment ('//' or a trailing '/')".to_owned())
            } else if segment.starts_with('.') {
                Some(format!(
                    "has the segment {segment:?}, which starts with '.'"
                ))
            } else {
                segment
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
                    .map(|c| format!("holds the character {c:?}"))
            }
        })
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(InfraError::Blob(format!(
            "blob {what} {name:?} {problem}; use '/'-separated segments of ASCII letters, digits, '.', '_' and '-', none empty or starting with '.'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_keys_pass() {
        for key in ["a", "uploads/0192-ab_c.d", "x/y/z.tail.1", "A-Z_0.9"] {
            assert!(check_key(key).is_ok(), "{key}");
        }
    }

    #[test]
    fn bad_keys_are_refused_with_the_reason() {
        for (key, why) in [
            ("", "is empty"),
            ("/etc/passwd", "absolute"),
            ("../up", "starts with '.'"),
            ("a/../../b", "starts with '.'"),
            ("a/./b", "starts with '.'"),
            (".partial/x", "starts with '.'"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
            ("a b", "character ' '"),
            ("a\\b", "character '\\\\'"),
            ("caf\u{e9}", "character"),
            ("a\0b", "character"),
        ] {
            let err = check_key(key).expect_err(key).to_string();
            assert!(err.contains(why), "{key:?}: {err}");
            assert!(err.contains("use '/'-separated segments"), "{err}");
        }
        assert!(check_key(&"a".repeat(513)).is_err());
    }
}

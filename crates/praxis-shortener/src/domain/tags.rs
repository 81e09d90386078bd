//! Tag normalization.

/// Most tags one link may carry.
pub const MAX_TAGS: usize = 32;
/// Longest tag, in characters.
pub const MAX_TAG_LEN: usize = 64;

/// Why a tag list was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// More than [`MAX_TAGS`] distinct tags.
    #[error("at most {MAX_TAGS} tags per link, got {0}")]
    TooMany(usize),
    /// An empty tag (after trimming).
    #[error("tags must not be empty")]
    Empty,
    /// A tag longer than [`MAX_TAG_LEN`].
    #[error("tag `{0}...` is longer than {MAX_TAG_LEN} characters")]
    TooLong(String),
    /// A tag with a control character.
    #[error("tags must not contain control characters")]
    Control,
}

/// Trims, deduplicates and sorts tags; rejects empty, too long or too many tags.
pub fn normalize_tags(tags: &[String]) -> Result<Vec<String>, TagError> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for raw in tags {
        let t = raw.trim();
        if t.is_empty() {
            return Err(TagError::Empty);
        }
        if t.chars().count() > MAX_TAG_LEN {
            return Err(TagError::TooLong(t.chars().take(16).collect()));
        }
        if t.chars().any(char::is_control) {
            return Err(TagError::Control);
        }
        out.push(t.to_owned());
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_TAGS {
        return Err(TagError::TooMany(out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize_tags(&s(&[" b", "a", "b "])), Ok(s(&["a", "b"])));
        assert_eq!(normalize_tags(&[]), Ok(vec![]));
    }

    #[test]
    fn rejects() {
        assert_eq!(normalize_tags(&s(&["  "])), Err(TagError::Empty));
        assert!(matches!(
            normalize_tags(&s(&[&"x".repeat(65)])),
            Err(TagError::TooLong(_))
        ));
        assert_eq!(normalize_tags(&s(&["a\nb"])), Err(TagError::Control));
        let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
        assert_eq!(normalize_tags(&many), Err(TagError::TooMany(33)));
    }
}

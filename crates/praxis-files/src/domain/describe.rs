//! What an upload's metadata says about the file it becomes: its name, declared type, tags
//! and time to live. tus clients name these differently; every common spelling is read.

use super::tus::{MetadataPair, metadata_text, parse_metadata};

/// Keys read as the file's name, in order.
pub const NAME_KEYS: &[&str] = &["filename", "name"];
/// Keys read as the declared content type, in order.
pub const TYPE_KEYS: &[&str] = &["filetype", "type", "contentType", "content_type"];
/// Most tags on a file.
pub const MAX_TAGS: usize = 20;
/// Longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 64;
/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// The type of a file whose upload declared none.
pub const DEFAULT_TYPE: &str = "application/octet-stream";

/// A file's description, from its upload's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// Its name (`file` when none was given).
    pub name: String,
    /// Its declared type.
    pub content_type: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// When it expires (unix ms), for a `ttl` in the metadata.
    pub expires_at: Option<i64>,
}

fn first(pairs: &[MetadataPair], keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| metadata_text(pairs, k))
}

/// Checks the metadata a creation request sends: the header's syntax, and the values this
/// server reads (name length, a media type, tags, a `ttl` duration). Each error names the
/// header and the key.
pub fn check(metadata: &str) -> Result<(), (&'static str, String)> {
    let pairs = parse_metadata(metadata).map_err(|e| (e.header, e.message))?;
    if let Some(name) = first(&pairs, NAME_KEYS)
        && (name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control))
    {
        return Err((
            "Upload-Metadata",
            format!(
                "filename must be at most {MAX_NAME_CHARS} characters without control characters"
            ),
        ));
    }
    if let Some(t) = first(&pairs, TYPE_KEYS)
        && !is_media_type(&t)
    {
        return Err((
            "Upload-Metadata",
            format!("filetype {t:?} is not a media type like image/png"),
        ));
    }
    if let Some(tags) = metadata_text(&pairs, "tags") {
        let tags = split_tags(&tags);
        if tags.len() > MAX_TAGS
            || tags
                .iter()
                .any(|t| t.len() > MAX_TAG_BYTES || t.chars().any(char::is_control))
        {
            return Err((
                "Upload-Metadata",
                format!(
                    "tags: at most {MAX_TAGS} comma-separated tags of at most {MAX_TAG_BYTES} bytes each"
                ),
            ));
        }
    }
    if let Some(ttl) = metadata_text(&pairs, "ttl") {
        praxis_kit::text::parse_duration(&ttl)
            .map_err(|e| ("Upload-Metadata", format!("ttl: {e} (e.g. 3600s, 7d)")))?;
    }
    Ok(())
}

/// Whether `t` looks like `type/subtype` (parameters allowed).
pub fn is_media_type(t: &str) -> bool {
    // Printable ASCII only: the type is echoed in response headers and multipart part headers.
    if !t.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return false;
    }
    let bare = t.split(';').next().unwrap_or_default().trim();
    let mut parts = bare.split('/');
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if token(a) && token(b))
        && t.len() <= 255
}

fn split_tags(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The description of an upload's file, from its metadata (already checked) at `now` (unix
/// ms).
pub fn describe(metadata: &str, now: i64) -> Described {
    let pairs = parse_metadata(metadata).unwrap_or_default();
    let ttl = metadata_text(&pairs, "ttl").and_then(|t| praxis_kit::text::parse_duration(&t).ok());
    Described {
        name: first(&pairs, NAME_KEYS).unwrap_or_else(|| "file".to_owned()),
        content_type: first(&pairs, TYPE_KEYS)
            .filter(|t| is_media_type(t))
            .unwrap_or_else(|| DEFAULT_TYPE.to_owned()),
        tags: metadata_text(&pairs, "tags")
            .map(|t| split_tags(&t))
            .unwrap_or_default(),
        expires_at: ttl
            .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
    }
}

/// The `Upload-Metadata` text of a simple upload's name, type, tags and TTL.
pub fn encode(name: &str, content_type: &str, tags: &[String], ttl: Option<&str>) -> String {
    use base64::Engine;
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let mut out = format!("filename {},filetype {}", b64(name), b64(content_type));
    if !tags.is_empty() {
        out.push_str(&format!(",tags {}", b64(&tags.join(","))));
    }
    if let Some(ttl) = ttl {
        out.push_str(&format!(",ttl {}", b64(ttl)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_common_spellings() {
        let m = encode("a.png", "image/png", &["x".into(), "y".into()], Some("1h"));
        assert_eq!(check(&m), Ok(()));
        let d = describe(&m, 1_000);
        assert_eq!(d.name, "a.png");
        assert_eq!(d.content_type, "image/png");
        assert_eq!(d.tags, ["x", "y"]);
        assert_eq!(d.expires_at, Some(1_000 + 3_600_000));
        let d = describe("", 0);
        assert_eq!(
            (d.name.as_str(), d.content_type.as_str()),
            ("file", DEFAULT_TYPE)
        );
    }

    #[test]
    fn refuses_bad_values() {
        assert!(check(&encode("a", "not a type", &[], None)).is_err());
        assert!(check(&encode("a", "text/plain", &[], Some("soon"))).is_err());
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| i.to_string()).collect();
        assert!(check(&encode("a", "text/plain", &many, None)).is_err());
        assert!(check("filename !!").is_err());
    }
}

//! The content type that a file's first bytes show (magic numbers, the `infer` crate), to
//! check the declared type against.

/// Bytes of the head of a file that sniffing reads.
pub const SNIFF_BYTES: usize = 8192;

/// The media type `head` (the first bytes of a file) shows, if recognisable: magic numbers,
/// then UTF-8 text without control characters as `text/plain`.
pub fn sniff(head: &[u8]) -> Option<String> {
    if head.is_empty() {
        return None;
    }
    if let Some(kind) = infer::get(head) {
        return Some(kind.mime_type().to_owned());
    }
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A multi-byte character cut at the end of the head is still text.
        Err(e) if e.error_len().is_none() && head.len() == SNIFF_BYTES => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return None,
    };
    let printable = text
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{c}'));
    printable.then(|| "text/plain".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_and_text() {
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").as_deref(),
            Some("image/png")
        );
        assert_eq!(sniff(b"%PDF-1.7\n").as_deref(), Some("application/pdf"));
        assert_eq!(sniff(b"hello, world\n").as_deref(), Some("text/plain"));
        assert_eq!(sniff(&[0u8, 1, 2, 3, 255]), None);
        assert_eq!(sniff(b""), None);
    }
}

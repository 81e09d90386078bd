//! Byte ranges of a download (RFC 9110 §14): the `Range` header, `If-Range`, and the
//! conditional `If-None-Match` (pure, no I/O).

use std::ops::Range;

/// Most ranges one request may ask for; a request with more is served whole (RFC 9110 lets a
/// server ignore a `Range` it finds abusive).
pub const MAX_RANGES: usize = 32;

/// What to send for a `Range` header against a representation of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// Send the whole representation (no `Range`, an unparseable one, a unit other than
    /// bytes, or too many ranges): 200.
    Whole,
    /// One range: 206 with `Content-Range`.
    One(Range<u64>),
    /// Several disjoint ranges in ascending order: 206 `multipart/byteranges`.
    Many(Vec<Range<u64>>),
    /// No range overlaps the representation: 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Parses `Range` for `size` bytes. Overlapping or adjacent ranges are coalesced (RFC 9110
/// allows it), so `Many` never holds two ranges that touch.
pub fn parse(header: Option<&str>, size: u64) -> Ranges {
    let Some(value) = header else {
        return Ranges::Whole;
    };
    let Some(set) = value.trim().strip_prefix("bytes=") else {
        return Ranges::Whole;
    };
    let mut wanted = Vec::new();
    for spec in set.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        if wanted.len() == MAX_RANGES {
            return Ranges::Whole;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return Ranges::Whole;
        };
        let (first, last) = (first.trim(), last.trim());
        let range = if first.is_empty() {
            // Suffix: the last N bytes.
            let Some(n) = digits(last) else {
                return Ranges::Whole;
            };
            if n == 0 {
                continue;
            }
            size.saturating_sub(n)..size
        } else {
            let Some(start) = digits(first) else {
                return Ranges::Whole;
            };
            let end = if last.is_empty() {
                size
            } else {
                let Some(last) = digits(last) else {
                    return Ranges::Whole;
                };
                if last < start {
                    return Ranges::Whole;
                }
                last.saturating_add(1).min(size)
            };
            if start >= size {
                continue;
            }
            start..end
        };
        if !range.is_empty() {
            wanted.push(range);
        }
    }
    if wanted.is_empty() {
        return if set.split(',').any(|s| !s.trim().is_empty()) {
            Ranges::Unsatisfiable
        } else {
            Ranges::Whole
        };
    }
    wanted.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(wanted.len());
    for r in wanted {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    if merged.len() == 1 {
        Ranges::One(merged.remove(0))
    } else {
        Ranges::Many(merged)
    }
}

fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().or(Some(u64::MAX))
}

/// Whether `If-Range` lets the `Range` apply: a strong entity tag equal to `etag`, or an HTTP
/// date not older than `modified_unix_s` (the representation has not changed since). A weak
/// tag never matches.
pub fn if_range_holds(value: &str, etag: &str, modified_unix_s: i64) -> bool {
    let value = value.trim();
    if value.starts_with('"') {
        return value == etag;
    }
    if value.starts_with("W/") {
        return false;
    }
    match httpdate::parse_http_date(value) {
        Ok(date) => date
            .duration_since(std::time::UNIX_EPOCH)
            .is_ok_and(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX) >= modified_unix_s),
        Err(_) => false,
    }
}

/// Whether `If-None-Match` matches `etag` (weak comparison, `*` matches anything): a GET or
/// HEAD is then answered 304.
pub fn none_match(value: &str, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges() {
        assert_eq!(parse(None, 100), Ranges::Whole);
        assert_eq!(parse(Some("bytes=0-9"), 100), Ranges::One(0..10));
        assert_eq!(parse(Some("bytes=90-"), 100), Ranges::One(90..100));
        assert_eq!(parse(Some("bytes=-10"), 100), Ranges::One(90..100));
        assert_eq!(parse(Some("bytes=-1000"), 100), Ranges::One(0..100));
        assert_eq!(parse(Some("bytes=95-1000"), 100), Ranges::One(95..100));
        assert_eq!(parse(Some("bytes=99-99"), 100), Ranges::One(99..100));
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(parse(Some("bytes=100-"), 100), Ranges::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 100), Ranges::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-"), 0), Ranges::Unsatisfiable);
        assert_eq!(parse(Some("bytes=5-1"), 100), Ranges::Whole);
        assert_eq!(parse(Some("items=0-1"), 100), Ranges::Whole);
        assert_eq!(parse(Some("bytes=a-b"), 100), Ranges::Whole);
        assert_eq!(parse(Some("bytes=1"), 100), Ranges::Whole);
        let many = (0..=MAX_RANGES)
            .map(|i| format!("{}-{}", i * 2, i * 2))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse(Some(&format!("bytes={many}")), 1000), Ranges::Whole);
    }

    #[test]
    fn several_ranges_are_sorted_and_coalesced() {
        assert_eq!(
            parse(Some("bytes=50-59, 0-9"), 100),
            Ranges::Many(vec![0..10, 50..60])
        );
        assert_eq!(parse(Some("bytes=0-9,5-19,20-29"), 100), Ranges::One(0..30));
        assert_eq!(
            parse(Some("bytes=0-0,-1"), 100),
            Ranges::Many(vec![0..1, 99..100])
        );
        // An unsatisfiable member is dropped when others are satisfiable.
        assert_eq!(parse(Some("bytes=0-1,200-300"), 100), Ranges::One(0..2));
    }

    #[test]
    fn if_range_and_none_match() {
        let etag = "\"abc\"";
        assert!(if_range_holds("\"abc\"", etag, 0));
        assert!(!if_range_holds("\"abd\"", etag, 0));
        assert!(!if_range_holds("W/\"abc\"", etag, 0));
        assert!(if_range_holds(
            "Sun, 06 Nov 1994 08:49:37 GMT",
            etag,
            784_111_777
        ));
        assert!(!if_range_holds(
            "Sun, 06 Nov 1994 08:49:36 GMT",
            etag,
            784_111_777
        ));
        assert!(!if_range_holds("yesterday", etag, 0));
        assert!(none_match("\"x\", \"abc\"", etag));
        assert!(none_match("W/\"abc\"", etag));
        assert!(none_match("*", etag));
        assert!(!none_match("\"x\"", etag));
    }
}

//! Forwarding the short URL's query string to the target.

use std::collections::HashSet;

/// Appends `incoming` (the raw query of the short-URL request) to `target`'s query.
/// Parameters of the request replace target parameters with the same name; the others of the
/// target are kept in order; the fragment stays at the end. The raw encoding of every kept
/// segment is preserved.
pub fn merge_query(target: &str, incoming: Option<&str>) -> String {
    let incoming = incoming.unwrap_or("").trim_start_matches('?');
    let new_segments: Vec<&str> = incoming.split('&').filter(|s| !s.is_empty()).collect();
    if new_segments.is_empty() {
        return target.to_owned();
    }
    let new_keys: HashSet<String> = new_segments.iter().map(|s| segment_key(s)).collect();
    let (before_fragment, fragment) = match target.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (target, None),
    };
    let (base, existing) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, q),
        None => (before_fragment, ""),
    };
    let mut segments: Vec<&str> = existing
        .split('&')
        .filter(|s| !s.is_empty() && !new_keys.contains(&segment_key(s)))
        .collect();
    segments.extend(new_segments);
    let mut out = String::with_capacity(target.len() + incoming.len() + 2);
    out.push_str(base);
    out.push('?');
    out.push_str(&segments.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn segment_key(segment: &str) -> String {
    let raw = segment.split('=').next().unwrap_or("");
    url::form_urlencoded::parse(raw.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merges() {
        assert_eq!(merge_query("https://e.com/p", None), "https://e.com/p");
        assert_eq!(merge_query("https://e.com/p", Some("")), "https://e.com/p");
        assert_eq!(
            merge_query("https://e.com/p", Some("a=1")),
            "https://e.com/p?a=1"
        );
        assert_eq!(
            merge_query("https://e.com/p?x=1", Some("a=1&b=2")),
            "https://e.com/p?x=1&a=1&b=2"
        );
        assert_eq!(
            merge_query("https://e.com/p?a=0&x=1", Some("a=1")),
            "https://e.com/p?x=1&a=1"
        );
        assert_eq!(
            merge_query("https://e.com/p?x=1#frag", Some("a=%20b")),
            "https://e.com/p?x=1&a=%20b#frag"
        );
        assert_eq!(
            merge_query("https://e.com/p?", Some("a")),
            "https://e.com/p?a"
        );
        assert_eq!(
            merge_query("https://e.com/p?utm%5Fsource=x", Some("utm_source=y")),
            "https://e.com/p?utm_source=y"
        );
    }

    proptest! {
        #[test]
        fn keeps_every_incoming_segment(q in "[a-z0-9=&%]{0,40}") {
            let merged = merge_query("https://e.com/p?z=9#f", Some(&q));
            for seg in q.split('&').filter(|s| !s.is_empty()) {
                prop_assert!(merged.contains(seg));
            }
            prop_assert!(merged.ends_with("#f"));
        }
    }
}

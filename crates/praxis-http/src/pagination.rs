//! Cursor pagination: an opaque base64url cursor (JSON inside, e.g. the last key seen) and a
//! `limit` with a default and a maximum. A bad cursor or limit is a 400 naming the parameter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::problem::{FieldError, Problem};

/// Longest cursor accepted (cursors are small: a key or two).
pub const MAX_CURSOR_LEN: usize = 1024;

/// Query parameters of a list route (`?cursor=...&limit=...`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Opaque cursor from a previous page's `next_cursor`; absent (or empty) for the first page.
    pub cursor: Option<String>,
    /// Page size; the route's default when absent, 400 outside 1 to the route's maximum.
    #[param(minimum = 1)]
    pub limit: Option<u32>,
}

/// One page of a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// Items of this page, in the route's order.
    pub items: Vec<T>,
    /// Cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched items: the extra item only signals that another
    /// page exists; the cursor is made from the last item kept.
    pub fn from_overfetch<C: Serialize>(
        mut items: Vec<T>,
        limit: u32,
        cursor_of: impl Fn(&T) -> C,
    ) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| encode_cursor(&cursor_of(last)))
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

/// Encodes a cursor value as base64url (no padding) JSON. A value that cannot be serialized
/// as JSON (a map with non-string keys) gives an empty cursor, which decoding rejects.
pub fn encode_cursor<T: Serialize>(value: &T) -> String {
    serde_json::to_vec(value)
        .map(|json| URL_SAFE_NO_PAD.encode(json))
        .unwrap_or_default()
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is 400 naming `cursor`.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, Problem> {
    let bad = || {
        let mut p = Problem::validation(vec![FieldError::new(
            "cursor",
            "not a cursor returned by this API: pass next_cursor from the previous page unchanged",
        )]);
        p.detail = "invalid query parameter cursor".into();
        p
    };
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let json = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    serde_json::from_slice(&json).map_err(|_| bad())
}

/// The `cursor` query parameter: absent or empty (`?cursor=`) is the first page (`None`);
/// anything else must be a cursor made by [`encode_cursor`] (400 naming `cursor` otherwise).
pub fn cursor_param<T: DeserializeOwned>(cursor: Option<&str>) -> Result<Option<T>, Problem> {
    cursor
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()
}

/// The page size: `default` (at most `max`) when absent; a `limit` outside 1..=`max` is 400
/// naming `limit`, never silently capped, so the route's documented range is the rule.
pub fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, Problem> {
    let max = max.max(1);
    match limit {
        None => Ok(default.clamp(1, max)),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => {
            let mut p = Problem::validation(vec![FieldError::new(
                "limit",
                format!("must be from 1 to {max}, got {n}"),
            )]);
            p.detail = "invalid query parameter limit".into();
            Err(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Key {
        created_ms: i64,
        id: String,
    }

    #[test]
    fn cursor_round_trip_and_rejections() {
        let k = Key {
            created_ms: 1_700_000_000_000,
            id: "abc".into(),
        };
        let c = encode_cursor(&k);
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode_cursor::<Key>(&c).expect("round trip"), k);
        for bad in [
            "",
            "!!!",
            "e30",
            "bm90IGpzb24",
            &"A".repeat(MAX_CURSOR_LEN + 1),
        ] {
            let p = decode_cursor::<Key>(bad).expect_err(bad);
            assert_eq!(p.errors[0].field, "cursor");
        }
    }

    #[test]
    fn an_empty_cursor_is_the_first_page() {
        assert_eq!(cursor_param::<Key>(None).expect("absent"), None);
        assert_eq!(cursor_param::<Key>(Some("")).expect("empty"), None);
        let p = cursor_param::<Key>(Some("!!")).expect_err("bad");
        assert_eq!(p.errors[0].field, "cursor");
    }

    #[test]
    fn limits() {
        assert_eq!(page_limit(None, 20, 100).expect("default"), 20);
        assert_eq!(page_limit(Some(7), 20, 100).expect("given"), 7);
        assert_eq!(page_limit(Some(100), 20, 100).expect("the maximum"), 100);
        assert_eq!(page_limit(None, 500, 100).expect("default capped"), 100);
        for bad in [0, 101, u32::MAX] {
            let p = page_limit(Some(bad), 20, 100).expect_err("out of range");
            assert_eq!(p.errors[0].field, "limit");
            assert_eq!(p.status, axum::http::StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn overfetch_pages() {
        let full = Page::from_overfetch(vec![1, 2, 3, 4], 3, |n| *n);
        assert_eq!(full.items, vec![1, 2, 3]);
        assert_eq!(
            decode_cursor::<i32>(full.next_cursor.as_deref().expect("more")).expect("cursor"),
            3
        );
        let last = Page::from_overfetch(vec![1, 2], 3, |n| *n);
        assert_eq!((last.items.len(), last.next_cursor), (2, None));
        let empty = Page::<i32>::from_overfetch(vec![], 3, |n| *n);
        assert!(empty.items.is_empty() && empty.next_cursor.is_none());
    }

    proptest! {
        #[test]
        fn any_key_round_trips(ms in any::<i64>(), id in ".{0,40}") {
            let k = Key { created_ms: ms, id };
            prop_assert_eq!(decode_cursor::<Key>(&encode_cursor(&k)).expect("round trip"), k);
        }

        #[test]
        fn decode_never_panics(s in ".{0,64}") {
            let _ = decode_cursor::<Key>(&s);
        }

        #[test]
        fn limit_is_within_bounds(limit in proptest::option::of(any::<u32>()), default in 1u32..500, max in 1u32..500) {
            match page_limit(limit, default, max) {
                Ok(n) => prop_assert!(n >= 1 && n <= max && limit.is_none_or(|l| l == n)),
                Err(_) => prop_assert!(limit.is_some_and(|l| l == 0 || l > max)),
            }
        }
    }
}

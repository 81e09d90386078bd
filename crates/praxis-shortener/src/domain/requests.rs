//! What callers ask of the link use cases (create, update) and the statistics they get back:
//! plain data, with its wire form (serde) and OpenAPI schema, shared by the API layer and the
//! use cases so neither imports the other's types.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Body of `POST /api/v1/links` (and one item of a bulk create).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    /// Target URL: absolute http or https, at most 2048 bytes, no user:password, not on the
    /// short domain itself. The pattern describes the URLs the document promises (a DNS name,
    /// URL-safe ASCII after it); others that parse are accepted too.
    #[schema(
        example = "https://example.com/a/long/page?with=query",
        pattern = "^[hH][tT][tT][pP][sS]?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:[0-9]{1,4})?([/?#][A-Za-z0-9._~!$&()*+,;=:@/?%-]*)?$",
        max_length = 2048
    )]
    pub url: String,
    /// Custom code: 3..=64 of `[A-Za-z0-9_-]`, not a reserved word. Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9_-]{3,64}$")]
    pub alias: Option<String>,
    /// Expiry as an RFC 3339 timestamp (may be in the past). With `ttl_seconds` too, the
    /// earlier of the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-12-31T23:59:59Z", format = DateTime)]
    pub expires_at: Option<String>,
    /// Expiry as seconds from now (at most 100 years). With `expires_at` too, the earlier of
    /// the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3_153_600_000_i64)]
    pub ttl_seconds: Option<i64>,
    /// Redirects served before the link answers 410; counted exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub max_visits: Option<i64>,
    /// Tags (trimmed, deduplicated), at most 32 of at most 64 characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Tag>, max_items = 32)]
    pub tags: Vec<String>,
    /// Redirect status: 301, 302 or 307 (default from the settings, 301).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = redirect_schema)]
    pub redirect: Option<u16>,
    /// Append the short URL's query string to the target (default from the settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_query: Option<bool>,
    /// Return the caller's existing live link to the same URL (200) instead of creating one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub find_if_exists: bool,
}

/// Body of `PATCH /api/v1/links/{code}`: absent fields are unchanged; `null` clears
/// `expires_at`, `ttl_seconds` and `max_visits`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLink {
    /// New target URL (same rules as on create).
    #[serde(default)]
    #[schema(
        pattern = "^[hH][tT][tT][pP][sS]?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:[0-9]{1,4})?([/?#][A-Za-z0-9._~!$&()*+,;=:@/?%-]*)?$",
        max_length = 2048
    )]
    pub url: Option<String>,
    /// New expiry (RFC 3339), or `null` for none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable, format = DateTime)]
    pub expires_at: Option<Option<String>>,
    /// New expiry in seconds from now, or `null` for none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable, minimum = 1, maximum = 3_153_600_000_i64)]
    pub ttl_seconds: Option<Option<i64>>,
    /// New visit limit, or `null` for none. The count of visits so far is kept.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable, minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub max_visits: Option<Option<i64>>,
    /// Replaces the tags.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Tag>>, max_items = 32)]
    pub tags: Option<Vec<String>>,
    /// New redirect status: 301, 302 or 307.
    #[serde(default)]
    #[schema(schema_with = redirect_schema)]
    pub redirect: Option<u16>,
    /// Whether to forward the query string.
    #[serde(default)]
    pub forward_query: Option<bool>,
}

/// `Some(None)` for an explicit `null`, `Some(Some(v))` for a value (absent stays `None`
/// through `#[serde(default)]`).
fn nullable<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// Visits of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayVisits {
    /// The UTC day, `YYYY-MM-DD`.
    pub date: String,
    /// Visits that day.
    pub visits: i64,
}

/// Visits from one referring host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReferrerVisits {
    /// The referring host.
    pub host: String,
    /// Visits from it.
    pub visits: i64,
}

/// Statistics of a link. Counted from visit batches applied exactly once, within seconds of
/// the redirects; never more than the redirects served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatsView {
    /// The code.
    pub code: String,
    /// All-time visits.
    pub total: i64,
    /// Visits in the range.
    pub in_range: i64,
    /// Visits per day in the range (days with visits only), ascending.
    pub daily: Vec<DayVisits>,
    /// Visits per user-agent class (`bot`, `mobile`, `desktop`, `other`) in the range.
    pub agents: BTreeMap<String, i64>,
    /// Top 20 referring hosts in the range.
    pub referrers: Vec<ReferrerVisits>,
}

/// A tag (OpenAPI only): 1 to 64 characters after trimming, no control characters.
#[derive(ToSchema)]
#[schema(
    min_length = 1,
    max_length = 64,
    pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
)]
#[expect(dead_code, reason = "describes tags in the OpenAPI document")]
pub struct Tag(String);

/// `redirect`: 301, 302 or 307 (or `null`: the default).
fn redirect_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .enum_values(Some([
            serde_json::json!(301),
            serde_json::json!(302),
            serde_json::json!(307),
            serde_json::Value::Null,
        ]))
        .build()
}

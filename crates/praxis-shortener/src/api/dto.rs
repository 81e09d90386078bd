//! Request and response bodies of the shortener API (serde + OpenAPI schemas).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use praxis_http::Problem;

pub use crate::domain::requests::{CreateLink, DayVisits, ReferrerVisits, StatsView, UpdateLink};

use crate::domain::days::format_rfc3339_ms;
use crate::domain::link::Availability;
use crate::settings::ShortenerSettings;
use crate::store::LinkRecord;

/// Whether a link redirects now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    /// It redirects.
    Active,
    /// Its expiry has passed (410).
    Expired,
    /// It used up its visits (410).
    Exhausted,
}

/// A link as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LinkView {
    /// The code.
    #[schema(example = "aZ3kP9q")]
    pub code: String,
    /// The public short URL.
    #[schema(example = "https://sho.rt/aZ3kP9q")]
    pub short_url: String,
    /// The target URL (normalized).
    pub url: String,
    /// Who owns it.
    pub owner: String,
    /// Whether the code is a custom alias.
    pub custom: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Expiry (RFC 3339).
    pub expires_at: Option<String>,
    /// Visit limit.
    pub max_visits: Option<i64>,
    /// Visits left before the limit (exact; only for links with a limit).
    pub remaining_visits: Option<i64>,
    /// Visits counted in the statistics (applied asynchronously, within seconds).
    pub visits: i64,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// Redirect status.
    pub redirect: u16,
    /// Whether the query string is forwarded.
    pub forward_query: bool,
    /// Whether it redirects now.
    pub status: LinkStatus,
}

impl LinkView {
    /// The view of a stored link at `now_ms`.
    pub fn new(rec: &LinkRecord, settings: &ShortenerSettings, now_ms: i64) -> Self {
        let l = &rec.link;
        let status = match l.availability(now_ms) {
            Availability::Active => LinkStatus::Active,
            Availability::Expired => LinkStatus::Expired,
            Availability::Exhausted => LinkStatus::Exhausted,
        };
        Self {
            code: l.code.clone(),
            short_url: settings.short_url(&l.code),
            url: l.url.clone(),
            owner: l.owner.clone(),
            custom: l.custom,
            created_at: format_rfc3339_ms(l.created_at),
            updated_at: format_rfc3339_ms(l.updated_at),
            expires_at: l.expires_at.map(format_rfc3339_ms),
            max_visits: l.max_visits,
            remaining_visits: l.max_visits.map(|m| (m - l.visit_count).max(0)),
            visits: rec.visits,
            tags: l.tags.clone(),
            redirect: l.redirect.status(),
            forward_query: l.forward_query,
            status,
        }
    }
}

/// Body of `POST /api/v1/links/bulk`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkCreate {
    /// 1..=1000 links, each like the body of `POST /api/v1/links` (`CreateLink`). Each item is
    /// checked on its own: any JSON value is taken, and a bad item fails alone (its result
    /// says why), so the items' schema is open.
    #[schema(value_type = Vec<serde_json::Value>, min_items = 1, max_items = 1000)]
    pub links: Vec<serde_json::Value>,
}

/// Outcome of one bulk item.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkLinkItem {
    /// Position of the item in the request.
    pub index: usize,
    /// What a single create would have answered: 201, 200 (found existing), 400, 409, ...
    pub status: u16,
    /// The link, on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkView>,
    /// The problem, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// Answer of a bulk create (always 200; look at each item's status).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkLinkResult {
    /// Items that succeeded (created or found).
    pub succeeded: usize,
    /// Items that failed.
    pub failed: usize,
    /// One result per item, in request order.
    pub results: Vec<BulkLinkItem>,
}

/// Query of `GET /api/v1/links`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1..=500 (default 50); outside that range is 400.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Only links with this tag (1 to 64 characters, not only spaces).
    #[param(min_length = 1, max_length = 64, pattern = r"\S")]
    pub tag: Option<String>,
    /// Links of this owner (an account id); only the admin may name another owner.
    #[param(min_length = 1, max_length = 128)]
    pub owner: Option<String>,
}

/// A page of links, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LinkPage {
    /// Links of this page.
    pub items: Vec<LinkView>,
    /// Cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /api/v1/links/{code}/stats`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// First day (UTC, `YYYY-MM-DD`, inclusive).
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last day (UTC, `YYYY-MM-DD`, inclusive); a day before `from` is an empty range.
    #[param(format = Date)]
    pub to: Option<String>,
}

/// Query of `GET /api/v1/links/{code}/qr`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QrParams {
    /// `png` (default) or `svg`, in any case.
    #[param(pattern = "^([pP][nN][gG]|[sS][vV][gG])$")]
    pub format: Option<String>,
    /// Image size in pixels, 64..=2048 (default 256); the picture is the largest whole
    /// multiple of the module count that fits.
    #[param(minimum = 64, maximum = 2048)]
    pub size: Option<u32>,
}

//! The redirect hot path: code -> target, touching no database and no writer lock when the
//! link is cached.
//!
//! 1. A code that cannot exist (charset, length) is 404 at once.
//! 2. The Bloom filter of existing codes: "certainly not" is 404 at once, so a flood of
//!    random codes reaches neither the cache (whose capacity it would evict) nor the database.
//! 3. The cache: L1 (in-process) then L2 (Redis, when configured) then the database, with
//!    concurrent loads of one code coalesced and "no such code" cached briefly.
//! 4. Expiry is checked against the cached expiry time. Links with a visit limit count every
//!    redirect with one atomic `UPDATE ... WHERE visit_count < max_visits`: exact, at the cost
//!    of one database write per visit of such links.

use std::sync::Arc;

use praxis_infra::InfraError;
use praxis_infra::cache::Cache;

use crate::domain::alias::is_plausible_code;
use crate::domain::bloom::CodeFilter;
use crate::domain::days::now_ms;
use crate::domain::link::Target;
use crate::domain::query::merge_query;
use crate::store::{Counted, Store};

/// `Cache-Control` of redirects that may change only by an edit: browsers may reuse them for
/// 90 s (bounded, so an edit or delete takes effect; visits in that window are not counted).
pub const CACHE_CONTROL_STABLE: &str = "private, max-age=90";
/// `Cache-Control` of links with an expiry or a visit limit: every visit must reach us.
pub const CACHE_CONTROL_LIMITED: &str = "no-store";

/// What to answer for a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Redirect.
    Redirect {
        /// `Location` header value.
        location: String,
        /// 301, 302 or 307.
        status: u16,
        /// `Cache-Control` header value.
        cache_control: &'static str,
    },
    /// 404.
    NotFound,
    /// 410.
    Gone,
}

/// Resolves codes for the redirect route.
#[derive(Clone)]
pub struct Resolver {
    store: Store,
    cache: Cache<Target>,
    filter: Arc<CodeFilter>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver over the store, the redirect cache and the Bloom filter.
    pub fn new(store: Store, cache: Cache<Target>, filter: Arc<CodeFilter>) -> Self {
        Self {
            store,
            cache,
            filter,
        }
    }

    /// Resolves `code`; `query` is the raw query string of the request; `count` is false for
    /// `HEAD`, which never uses up a visit of a limited link.
    pub async fn resolve(
        &self,
        code: &str,
        query: Option<&str>,
        count: bool,
    ) -> Result<Resolution, InfraError> {
        let result = self.resolve_inner(code, query, count).await;
        let label = match &result {
            Ok(Resolution::Redirect { .. }) => "redirect",
            Ok(Resolution::NotFound) => "not_found",
            Ok(Resolution::Gone) => "gone",
            Err(_) => "error",
        };
        metrics::counter!("praxis_shortener_redirects_total", "result" => label).increment(1);
        result
    }

    async fn resolve_inner(
        &self,
        code: &str,
        query: Option<&str>,
        count: bool,
    ) -> Result<Resolution, InfraError> {
        if !is_plausible_code(code) {
            return Ok(Resolution::NotFound);
        }
        if !self.filter.might_contain(code) {
            metrics::counter!("praxis_shortener_bloom_rejections_total").increment(1);
            return Ok(Resolution::NotFound);
        }
        let store = &self.store;
        let Some(target) = self
            .cache
            .get_or_load(code, || store.load_target(code))
            .await?
        else {
            return Ok(Resolution::NotFound);
        };
        let now = now_ms();
        if target.expired(now) {
            return Ok(Resolution::Gone);
        }
        let target = if target.limited() {
            let counted = if count {
                self.store.count_visit(code, now).await?
            } else {
                self.store.peek_visit(code, now).await?
            };
            match counted {
                Counted::Redirect(t) => t,
                Counted::Gone => return Ok(Resolution::Gone),
                Counted::NotFound => return Ok(Resolution::NotFound),
            }
        } else {
            target
        };
        Ok(redirect_to(&target, query))
    }
}

/// The redirect answer for a live target.
pub fn redirect_to(target: &Target, query: Option<&str>) -> Resolution {
    let location = if target.forward_query() {
        merge_query(&target.url, query)
    } else {
        target.url.to_string()
    };
    let cache_control = if target.limited() || target.expires_at.is_some() {
        CACHE_CONTROL_LIMITED
    } else {
        CACHE_CONTROL_STABLE
    };
    Resolution::Redirect {
        location,
        status: target.status,
        cache_control,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_headers() {
        let mut t = Target {
            url: Arc::from("https://e.com/p?x=1"),
            status: 301,
            expires_at: None,
            flags: 0,
        };
        assert_eq!(
            redirect_to(&t, Some("a=1")),
            Resolution::Redirect {
                location: "https://e.com/p?x=1".into(),
                status: 301,
                cache_control: CACHE_CONTROL_STABLE
            }
        );
        t.flags = Target::FORWARD_QUERY;
        t.expires_at = Some(1);
        assert_eq!(
            redirect_to(&t, Some("a=1")),
            Resolution::Redirect {
                location: "https://e.com/p?x=1&a=1".into(),
                status: 301,
                cache_control: CACHE_CONTROL_LIMITED
            }
        );
    }
}

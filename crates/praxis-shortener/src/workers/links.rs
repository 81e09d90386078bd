//! Link use cases: create (one or many), read, update, delete, list, statistics. The HTTP
//! layer ([`crate::api`]) parses and authorizes; this module validates, writes and keeps the
//! redirect path (Bloom filter, caches of every process) in step with the database.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;

use praxis_http::FieldError;
use praxis_infra::InfraError;
use praxis_infra::broadcast::Broadcaster;
use praxis_infra::cache::Cache;

use crate::domain::alias::validate_alias;
use crate::domain::bloom::CodeFilter;
use crate::domain::days::{format_day, now_ms, parse_day, parse_rfc3339_ms};
use crate::domain::link::{Link, RedirectKind, Target};
use crate::domain::requests::{CreateLink, DayVisits, ReferrerVisits, StatsView, UpdateLink};
use crate::domain::tags::normalize_tags;
use crate::domain::url_rules::validate_url;
use crate::error::ShortenerError;
use crate::settings::ShortenerSettings;
use crate::store::allocator::CodeAllocator;
use crate::store::{LinkRecord, ListKey, Store};

/// Broadcast channel announcing created codes (newline-separated) to every process's
/// Bloom filter.
pub const CREATED_CHANNEL: &str = "shortener.created";

/// Longest accepted `ttl_seconds` (100 years).
pub const MAX_TTL_SECONDS: i64 = 100 * 365 * 24 * 3600;
/// Largest accepted `max_visits`.
pub const MAX_VISITS: i64 = 1_000_000_000_000;

/// Spare sequence numbers taken per bulk request, for generated codes that collide with an
/// existing custom alias.
const SPARE_NUMBERS: usize = 8;

/// Who is acting: the owner id recorded on links, and whether it may manage every link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal<'a> {
    /// Owner id: an account id, `"admin"` (the bootstrap admin key) or `"anonymous"`.
    pub owner: &'a str,
    /// The admin manages every link.
    pub admin: bool,
}

impl Principal<'_> {
    fn may_manage(&self, link: &Link) -> bool {
        self.admin || link.owner == self.owner
    }
}

/// A create request that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    /// Normalized target.
    pub url: String,
    /// Custom alias.
    pub alias: Option<String>,
    /// Expiry, unix ms.
    pub expires_at: Option<i64>,
    /// Visit limit.
    pub max_visits: Option<i64>,
    /// Normalized tags.
    pub tags: Vec<String>,
    /// Redirect status.
    pub redirect: RedirectKind,
    /// Query forwarding.
    pub forward_query: bool,
    /// Return an existing link to the same URL if there is one.
    pub find_if_exists: bool,
}

/// Result of one create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new link (201).
    New(LinkRecord),
    /// The caller's existing link to the same URL (200, `find_if_exists`).
    Existing(LinkRecord),
}

/// Validates a create request; field names are prefixed with `prefix` (e.g. `links[3].`).
pub fn validate_create(
    req: &CreateLink,
    settings: &ShortenerSettings,
    now: i64,
    prefix: &str,
) -> Result<NewLink, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: String| {
        errors.push(FieldError::new(format!("{prefix}{field}"), message))
    };
    let url = match validate_url(&req.url, settings.own_host(), settings.max_url_length) {
        Ok(u) => u.to_string(),
        Err(e) => {
            err("url", e.to_string());
            String::new()
        }
    };
    if let Some(alias) = &req.alias
        && let Err(e) = validate_alias(alias)
    {
        err("alias", e.to_string());
    }
    let expires_at = match expiry(req.expires_at.as_deref(), req.ttl_seconds, now) {
        Ok(e) => e,
        Err((field, message)) => {
            err(field, message);
            None
        }
    };
    if let Some(m) = req.max_visits
        && !(1..=MAX_VISITS).contains(&m)
    {
        err(
            "max_visits",
            format!("must be between 1 and {MAX_VISITS}, got {m}"),
        );
    }
    let tags = normalize_tags(&req.tags).unwrap_or_else(|e| {
        err("tags", e.to_string());
        Vec::new()
    });
    let redirect = match redirect_kind(req.redirect, settings) {
        Ok(r) => r,
        Err(message) => {
            err("redirect", message);
            RedirectKind::Permanent
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewLink {
        url,
        alias: req.alias.clone(),
        expires_at,
        max_visits: req.max_visits,
        tags,
        redirect,
        forward_query: req.forward_query.unwrap_or(settings.forward_query),
        find_if_exists: req.find_if_exists,
    })
}

fn redirect_kind(
    status: Option<u16>,
    settings: &ShortenerSettings,
) -> Result<RedirectKind, String> {
    let status = status.unwrap_or(settings.default_redirect);
    RedirectKind::from_status(status)
        .ok_or_else(|| format!("must be 301, 302 or 307, got {status}"))
}

/// The expiry from `expires_at` (RFC 3339) and/or `ttl_seconds` (the earlier of the two when
/// both are given); an error names the field.
fn expiry(
    expires_at: Option<&str>,
    ttl_seconds: Option<i64>,
    now: i64,
) -> Result<Option<i64>, (&'static str, String)> {
    match (expires_at, ttl_seconds) {
        (Some(at), Some(ttl)) => {
            let at = expiry(Some(at), None, now)?;
            let ttl = expiry(None, Some(ttl), now)?;
            Ok(at.min(ttl))
        }
        (Some(at), None) => parse_rfc3339_ms(at)
            .map(Some)
            .map_err(|m| ("expires_at", m)),
        (None, Some(ttl)) if (1..=MAX_TTL_SECONDS).contains(&ttl) => {
            Ok(Some(now.saturating_add(ttl * 1000)))
        }
        (None, Some(ttl)) => Err((
            "ttl_seconds",
            format!("must be between 1 and {MAX_TTL_SECONDS} seconds, got {ttl}"),
        )),
        (None, None) => Ok(None),
    }
}

/// Applies a PATCH to `link` in memory; errors name the fields.
pub fn apply_patch(
    link: &mut Link,
    patch: &UpdateLink,
    settings: &ShortenerSettings,
    now: i64,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Some(raw) = &patch.url {
        match validate_url(raw, settings.own_host(), settings.max_url_length) {
            Ok(u) => link.url = u.to_string(),
            Err(e) => errors.push(FieldError::new("url", e.to_string())),
        }
    }
    match (&patch.expires_at, &patch.ttl_seconds) {
        // Both: the earlier expiry of those given (`null` for both clears it).
        (Some(at), Some(ttl)) => match expiry(at.as_deref(), *ttl, now) {
            Ok(e) => link.expires_at = e,
            Err((f, m)) => errors.push(FieldError::new(f, m)),
        },
        (Some(None), None) | (None, Some(None)) => link.expires_at = None,
        (Some(Some(at)), None) => match parse_rfc3339_ms(at) {
            Ok(ms) => link.expires_at = Some(ms),
            Err(m) => errors.push(FieldError::new("expires_at", m)),
        },
        (None, Some(Some(ttl))) => match expiry(None, Some(*ttl), now) {
            Ok(e) => link.expires_at = e,
            Err((f, m)) => errors.push(FieldError::new(f, m)),
        },
        (None, None) => {}
    }
    match patch.max_visits {
        Some(Some(m)) if !(1..=MAX_VISITS).contains(&m) => errors.push(FieldError::new(
            "max_visits",
            format!("must be between 1 and {MAX_VISITS}, got {m}"),
        )),
        Some(m) => link.max_visits = m,
        None => {}
    }
    if let Some(tags) = &patch.tags {
        match normalize_tags(tags) {
            Ok(t) => link.tags = t,
            Err(e) => errors.push(FieldError::new("tags", e.to_string())),
        }
    }
    if let Some(status) = patch.redirect {
        match RedirectKind::from_status(status) {
            Some(r) => link.redirect = r,
            None => errors.push(FieldError::new(
                "redirect",
                format!("must be 301, 302 or 307, got {status}"),
            )),
        }
    }
    if let Some(f) = patch.forward_query {
        link.forward_query = f;
    }
    link.updated_at = now;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Link use cases with everything they touch. Cheap to share behind an `Arc`.
pub struct Links {
    store: Store,
    allocator: CodeAllocator,
    filter: Arc<CodeFilter>,
    cache: Cache<Target>,
    broadcaster: Broadcaster,
    settings: Arc<ShortenerSettings>,
    /// Woken when the Bloom filter passes its capacity (the maintenance task rebuilds it).
    growth: Arc<Notify>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl Links {
    /// Wires the use cases.
    pub fn new(
        store: Store,
        allocator: CodeAllocator,
        filter: Arc<CodeFilter>,
        cache: Cache<Target>,
        broadcaster: Broadcaster,
        settings: Arc<ShortenerSettings>,
        growth: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            allocator,
            filter,
            cache,
            broadcaster,
            settings,
            growth,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ShortenerSettings {
        &self.settings
    }

    /// Creates links in one transaction. Each item gets its own outcome; the outer error is
    /// for failures of the whole batch (the database is down, the commit failed).
    pub async fn create_all(
        &self,
        owner: &str,
        items: &[NewLink],
    ) -> Result<Vec<Result<Created, ShortenerError>>, ShortenerError> {
        let now = now_ms();
        // Sequence numbers are reserved before the transaction: on SQLite a reservation made
        // while this transaction holds the write lock would wait for it.
        let generated = items.iter().filter(|i| i.alias.is_none()).count();
        let mut numbers = if generated > 0 {
            self.allocator
                .take(generated + SPARE_NUMBERS.min(generated * 2))
                .await?
        } else {
            Vec::new()
        }
        .into_iter();
        let mut tx = self.store.db().begin_write().await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if item.find_if_exists
                && let Some(found) = Store::find_by_url(&mut tx, owner, &item.url, now).await?
                && item.alias.as_ref().is_none_or(|a| *a == found.link.code)
            {
                out.push(Ok(Created::Existing(found)));
                continue;
            }
            let mut link = Link {
                code: String::new(),
                owner: owner.to_owned(),
                url: item.url.clone(),
                custom: item.alias.is_some(),
                redirect: item.redirect,
                forward_query: item.forward_query,
                created_at: now,
                updated_at: now,
                expires_at: item.expires_at,
                max_visits: item.max_visits,
                visit_count: 0,
                tags: item.tags.clone(),
            };
            let outcome = match &item.alias {
                Some(alias) => {
                    link.code = alias.clone();
                    if Store::insert_link(&mut tx, &link).await? {
                        Ok(())
                    } else {
                        Err(ShortenerError::AliasTaken(alias.clone()))
                    }
                }
                None => loop {
                    let Some(n) = numbers.next() else {
                        break Err(ShortenerError::NoFreeCode);
                    };
                    link.code = self.allocator.code(n)?;
                    if Store::insert_link(&mut tx, &link).await? {
                        break Ok(());
                    }
                    tracing::debug!(code = %link.code, "generated code collides with an alias; taking the next number");
                },
            };
            out.push(outcome.map(|()| Created::New(LinkRecord { link, visits: 0 })));
        }
        tx.commit().await.map_err(InfraError::from)?;
        let codes: Vec<&str> = out
            .iter()
            .filter_map(|r| match r {
                Ok(Created::New(rec)) => Some(rec.link.code.as_str()),
                _ => None,
            })
            .collect();
        metrics::counter!("praxis_shortener_links_created_total").increment(codes.len() as u64);
        self.announce_created(&codes).await;
        Ok(out)
    }

    /// After a commit: add the codes to this process's Bloom filter, tell the other processes,
    /// and drop any cached "no such code" for them everywhere.
    async fn announce_created(&self, codes: &[&str]) {
        if codes.is_empty() {
            return;
        }
        let mut grow = false;
        for code in codes {
            grow |= self.filter.insert(code);
        }
        if grow {
            self.growth.notify_one();
        }
        let payload = Bytes::from(codes.join("\n"));
        if let Err(e) = self.broadcaster.publish(CREATED_CHANNEL, payload).await {
            tracing::warn!(error = %e, "announcing created codes failed; other processes learn them at their next Bloom rebuild");
        }
        for code in codes {
            self.invalidate(code).await;
        }
    }

    async fn invalidate(&self, code: &str) {
        if let Err(e) = self.cache.invalidate(code).await {
            tracing::warn!(error = %e, code, "cache invalidation failed; stale entries live until their ttl");
        }
    }

    /// A link the principal may manage.
    pub async fn get(&self, who: Principal<'_>, code: &str) -> Result<LinkRecord, ShortenerError> {
        match self.store.get(code).await? {
            Some(rec) if who.may_manage(&rec.link) => Ok(rec),
            _ => Err(ShortenerError::NotFound(code.to_owned())),
        }
    }

    /// Applies a PATCH and makes every process's redirect reflect it.
    pub async fn update(
        &self,
        who: Principal<'_>,
        code: &str,
        patch: &UpdateLink,
    ) -> Result<LinkRecord, ShortenerError> {
        let now = now_ms();
        let mut tx = self.store.db().begin_write().await?;
        let mut rec = match Store::get_in(&mut tx, code).await? {
            Some(rec) if who.may_manage(&rec.link) => rec,
            _ => return Err(ShortenerError::NotFound(code.to_owned())),
        };
        apply_patch(&mut rec.link, patch, &self.settings, now).map_err(ShortenerError::Invalid)?;
        Store::update_link(&mut tx, &rec.link).await?;
        tx.commit().await.map_err(InfraError::from)?;
        self.invalidate(code).await;
        Ok(rec)
    }

    /// Deletes a link; afterwards every process answers 404 for it.
    pub async fn delete(&self, who: Principal<'_>, code: &str) -> Result<(), ShortenerError> {
        let mut tx = self.store.db().begin_write().await?;
        match Store::get_in(&mut tx, code).await? {
            Some(rec) if who.may_manage(&rec.link) => {}
            _ => return Err(ShortenerError::NotFound(code.to_owned())),
        }
        Store::delete_link(&mut tx, code).await?;
        tx.commit().await.map_err(InfraError::from)?;
        self.invalidate(code).await;
        Ok(())
    }

    /// One page of the principal's links, newest first; `limit + 1` rows are read so the
    /// caller can tell whether another page exists.
    pub async fn list(
        &self,
        who: Principal<'_>,
        tag: Option<&str>,
        after: Option<&ListKey>,
        limit: u32,
    ) -> Result<Vec<LinkRecord>, ShortenerError> {
        Ok(self
            .store
            .list(who.owner, tag, after, limit.saturating_add(1))
            .await?)
    }

    /// Statistics of a link between two optional days.
    pub async fn stats(
        &self,
        who: Principal<'_>,
        code: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<StatsView, ShortenerError> {
        let mut errors = Vec::new();
        let mut day = |field: &str, value: Option<&str>, default: &str| match value.map(parse_day) {
            None => default.to_owned(),
            Some(Ok(d)) => format_day(d),
            Some(Err(m)) => {
                errors.push(FieldError::new(field, m));
                default.to_owned()
            }
        };
        // A `to` before `from` is an empty range (nothing in it), not an error: the two are
        // independent query parameters, and OpenAPI cannot say that one must follow the other.
        let from_day = day("from", from, "0000-01-01");
        let to_day = day("to", to, "9999-12-31");
        if !errors.is_empty() {
            return Err(ShortenerError::Invalid(errors));
        }
        self.get(who, code).await?;
        let rows = self.store.stats(code, &from_day, &to_day).await?;
        let mut agents = BTreeMap::new();
        let mut referrers = Vec::new();
        for (dim, value, visits) in rows.dims {
            match dim.as_str() {
                "agent" => {
                    agents.insert(value, visits);
                }
                "referrer" => referrers.push(ReferrerVisits {
                    host: value,
                    visits,
                }),
                _ => {}
            }
        }
        referrers.sort_by(|a, b| b.visits.cmp(&a.visits).then_with(|| a.host.cmp(&b.host)));
        referrers.truncate(20);
        let daily: Vec<DayVisits> = rows
            .daily
            .into_iter()
            .map(|(date, visits)| DayVisits { date, visits })
            .collect();
        Ok(StatsView {
            code: code.to_owned(),
            total: rows.total,
            in_range: daily.iter().map(|d| d.visits).sum(),
            daily,
            agents,
            referrers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ShortenerSettings {
        ShortenerSettings::default()
    }

    fn req(url: &str) -> CreateLink {
        CreateLink {
            url: url.into(),
            ..CreateLink::default()
        }
    }

    #[test]
    fn validates_and_collects_every_error() {
        let ok = validate_create(&req("https://example.com"), &settings(), 0, "").expect("valid");
        assert_eq!(ok.url, "https://example.com/");
        assert_eq!(ok.redirect, RedirectKind::Permanent);
        let bad = CreateLink {
            url: "ftp://x".into(),
            alias: Some("a b".into()),
            ttl_seconds: Some(0),
            max_visits: Some(0),
            redirect: Some(308),
            tags: vec![" ".into()],
            ..CreateLink::default()
        };
        let errors = validate_create(&bad, &settings(), 0, "links[2].").expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "links[2].url",
                "links[2].alias",
                "links[2].ttl_seconds",
                "links[2].max_visits",
                "links[2].tags",
                "links[2].redirect"
            ]
        );
    }

    #[test]
    fn expiry_rules() {
        assert_eq!(expiry(None, Some(10), 1000), Ok(Some(11_000)));
        assert_eq!(
            expiry(Some("1970-01-01T00:00:02Z"), None, 0),
            Ok(Some(2000))
        );
        // Both: the earlier of the two.
        assert_eq!(
            expiry(Some("1970-01-01T00:00:02Z"), Some(1), 0),
            Ok(Some(1000))
        );
        assert_eq!(
            expiry(Some("1970-01-01T00:00:02Z"), Some(5), 0),
            Ok(Some(2000))
        );
        assert!(expiry(Some("1970-01-01T00:00:02Z"), Some(-5), 0).is_err());
        assert!(expiry(Some("tomorrow"), None, 0).is_err());
        assert!(expiry(None, Some(-5), 0).is_err());
    }

    fn link() -> Link {
        Link {
            code: "abc".into(),
            owner: "admin".into(),
            url: "https://example.com/".into(),
            custom: false,
            redirect: RedirectKind::Permanent,
            forward_query: false,
            created_at: 0,
            updated_at: 0,
            expires_at: Some(5),
            max_visits: Some(3),
            visit_count: 1,
            tags: vec!["a".into()],
        }
    }

    #[test]
    fn patches() {
        let mut l = link();
        let patch: UpdateLink = serde_json::from_str(
            r#"{"expires_at": null, "max_visits": null, "redirect": 307, "tags": ["z"]}"#,
        )
        .expect("parses");
        apply_patch(&mut l, &patch, &settings(), 100).expect("valid");
        assert_eq!(
            (l.expires_at, l.max_visits, l.redirect),
            (None, None, RedirectKind::Temporary)
        );
        assert_eq!(l.tags, ["z"]);
        assert_eq!(l.updated_at, 100);

        let patch: UpdateLink = serde_json::from_str(r#"{"ttl_seconds": 2}"#).expect("parses");
        apply_patch(&mut l, &patch, &settings(), 100).expect("valid");
        assert_eq!(l.expires_at, Some(2100));

        let patch: UpdateLink = serde_json::from_str(r#"{"ttl_seconds": null}"#).expect("parses");
        apply_patch(&mut l, &patch, &settings(), 100).expect("valid");
        assert_eq!(l.expires_at, None);

        let patch: UpdateLink =
            serde_json::from_str(r#"{"url": "javascript:x", "max_visits": 0}"#).expect("parses");
        let errors = apply_patch(&mut l, &patch, &settings(), 100).expect_err("invalid");
        assert_eq!(errors.len(), 2);

        let unchanged = l.clone();
        apply_patch(
            &mut l,
            &UpdateLink::default(),
            &settings(),
            unchanged.updated_at,
        )
        .expect("empty patch");
        assert_eq!(l, unchanged);
    }
}

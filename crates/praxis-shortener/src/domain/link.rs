//! The link model and the compact form the redirect path caches.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The HTTP status a link redirects with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedirectKind {
    /// 301 Moved Permanently (the default): browsers and crawlers may remember it.
    Permanent,
    /// 302 Found.
    Found,
    /// 307 Temporary Redirect (keeps the method and body).
    Temporary,
}

impl RedirectKind {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            RedirectKind::Permanent => 301,
            RedirectKind::Found => 302,
            RedirectKind::Temporary => 307,
        }
    }

    /// The kind for a status code, if it is one of 301, 302, 307.
    pub fn from_status(status: u16) -> Option<Self> {
        match status {
            301 => Some(RedirectKind::Permanent),
            302 => Some(RedirectKind::Found),
            307 => Some(RedirectKind::Temporary),
            _ => None,
        }
    }
}

/// Whether a link can be followed right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// It redirects.
    Active,
    /// Its expiry time has passed.
    Expired,
    /// It has been followed `max_visits` times.
    Exhausted,
}

/// A stored short link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The code (generated or a custom alias), unique.
    pub code: String,
    /// Who created it and may manage it.
    pub owner: String,
    /// The target URL (normalized).
    pub url: String,
    /// Whether the code is a custom alias.
    pub custom: bool,
    /// Redirect status.
    pub redirect: RedirectKind,
    /// Whether the query string of the short URL is appended to the target.
    pub forward_query: bool,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
    /// Expiry, unix ms.
    pub expires_at: Option<i64>,
    /// Most redirects it serves.
    pub max_visits: Option<i64>,
    /// Redirects counted synchronously (only maintained for links with `max_visits`).
    pub visit_count: i64,
    /// Tags, sorted.
    pub tags: Vec<String>,
}

impl Link {
    /// Whether it can be followed at `now_ms`.
    pub fn availability(&self, now_ms: i64) -> Availability {
        if self.expires_at.is_some_and(|e| e <= now_ms) {
            Availability::Expired
        } else if self.max_visits.is_some_and(|m| self.visit_count >= m) {
            Availability::Exhausted
        } else {
            Availability::Active
        }
    }

    /// The compact form the redirect path caches.
    pub fn target(&self) -> Target {
        let mut flags = 0;
        if self.forward_query {
            flags |= Target::FORWARD_QUERY;
        }
        if self.max_visits.is_some() {
            flags |= Target::LIMITED;
        }
        Target {
            url: Arc::from(self.url.as_str()),
            status: self.redirect.status(),
            expires_at: self.expires_at,
            flags,
        }
    }
}

/// What the redirect path needs to know about a link, kept small because one is cached per
/// hot link in every process (about 40 bytes plus the URL's own bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The target URL.
    #[serde(rename = "u")]
    pub url: Arc<str>,
    /// 301, 302 or 307.
    #[serde(rename = "s")]
    pub status: u16,
    /// Expiry, unix ms.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// [`Target::FORWARD_QUERY`] | [`Target::LIMITED`].
    #[serde(rename = "f", default)]
    pub flags: u8,
}

impl Target {
    /// Flag: append the request's query string to the target.
    pub const FORWARD_QUERY: u8 = 1;
    /// Flag: the link has `max_visits`, so every redirect is counted in the database.
    pub const LIMITED: u8 = 2;

    /// Whether the query string is forwarded.
    pub fn forward_query(&self) -> bool {
        self.flags & Self::FORWARD_QUERY != 0
    }

    /// Whether the link has a visit limit.
    pub fn limited(&self) -> bool {
        self.flags & Self::LIMITED != 0
    }

    /// Whether the link has expired at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|e| e <= now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        Link {
            code: "abc".into(),
            owner: "admin".into(),
            url: "https://example.com/".into(),
            custom: true,
            redirect: RedirectKind::Found,
            forward_query: true,
            created_at: 1,
            updated_at: 1,
            expires_at: None,
            max_visits: None,
            visit_count: 0,
            tags: vec![],
        }
    }

    #[test]
    fn availability() {
        let mut l = link();
        assert_eq!(l.availability(10), Availability::Active);
        l.expires_at = Some(10);
        assert_eq!(l.availability(9), Availability::Active);
        assert_eq!(l.availability(10), Availability::Expired);
        l.expires_at = None;
        l.max_visits = Some(2);
        l.visit_count = 1;
        assert_eq!(l.availability(10), Availability::Active);
        l.visit_count = 2;
        assert_eq!(l.availability(10), Availability::Exhausted);
    }

    #[test]
    fn target_is_compact_and_round_trips() {
        let mut l = link();
        l.max_visits = Some(3);
        let t = l.target();
        assert!(t.forward_query() && t.limited());
        assert_eq!(t.status, 302);
        let json = serde_json::to_string(&t).expect("serializes");
        assert_eq!(json, r#"{"u":"https://example.com/","s":302,"f":3}"#);
        assert_eq!(serde_json::from_str::<Target>(&json).expect("parses"), t);
        assert!(std::mem::size_of::<Target>() <= 48);
    }

    #[test]
    fn redirect_kinds() {
        for s in [301, 302, 307] {
            assert_eq!(
                RedirectKind::from_status(s).map(RedirectKind::status),
                Some(s)
            );
        }
        assert_eq!(RedirectKind::from_status(308), None);
    }
}

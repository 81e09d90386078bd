//! Who may do what (D50). A logged-in account (a JWT access token) is a feed user: it reads
//! and writes its own feed without any scope, since identity's account scopes are the
//! shortener's. An API key needs `feed:write` to write and `feed:read` (or `feed:write`) to
//! read, acting as its owner. The admin role implies both and may delete any post and import
//! follows in bulk (`Require<Admin>`).

use praxis_http::auth::PrincipalKind;
use praxis_http::{Principal, Scope};

use crate::settings::{FEED_READ, FEED_WRITE};

/// Writing routes: any account, or an API key with `feed:write`.
#[derive(Debug)]
pub struct FeedWrite;

impl Scope for FeedWrite {
    const NAME: &'static str = FEED_WRITE;

    fn granted(p: &Principal) -> bool {
        p.kind == PrincipalKind::Account || p.has_scope(FEED_WRITE)
    }
}

/// Reading routes: any account, or an API key with `feed:read` or `feed:write`.
#[derive(Debug)]
pub struct FeedRead;

impl Scope for FeedRead {
    const NAME: &'static str = FEED_READ;

    fn granted(p: &Principal) -> bool {
        FeedWrite::granted(p) || p.has_scope(FEED_READ)
    }
}

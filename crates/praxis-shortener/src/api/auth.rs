//! Who may do what. Links belong to the principal that created them (its account id, or
//! `admin` for the bootstrap admin key): a caller sees, lists, changes and deletes only its
//! own links, and the admin sees all. API keys need the scope `links:read` to read and
//! `links:write` to create or change (access tokens from a login carry both). Creating can be
//! opened to anonymous callers with `anonymous_create` (owner `anonymous`; such links cannot
//! be managed later). The redirect is public.

use praxis_http::{Caller, Problem, Require, Scope};

use crate::settings::ShortenerSettings;
use crate::workers::links::Principal;

/// Scope of the reading routes (get, list, statistics, QR code).
pub const LINKS_READ: &str = "links:read";
/// Scope of the writing routes (create, bulk create, change, delete).
pub const LINKS_WRITE: &str = "links:write";

/// Reading routes: `links:read`.
#[derive(Debug)]
pub struct LinksRead;

impl Scope for LinksRead {
    const NAME: &'static str = LINKS_READ;
}

/// Changing routes: `links:write`.
#[derive(Debug)]
pub struct LinksWrite;

impl Scope for LinksWrite {
    const NAME: &'static str = LINKS_WRITE;
}

/// Who acts on links, for the link service.
pub fn acting<S: Scope>(who: &Require<S>) -> Principal<'_> {
    Principal {
        owner: who.subject(),
        admin: who.is_admin(),
    }
}

/// Who creates links: a caller with `links:write`, or an anonymous caller when
/// `anonymous_create` is on (credentials that are presented must still hold the scope).
pub fn creator<'a>(
    caller: &'a Caller,
    settings: &ShortenerSettings,
) -> Result<Principal<'a>, Problem> {
    if !(settings.anonymous_create && caller.is_anonymous()) {
        Require::<LinksWrite>::check(caller)?;
    }
    Ok(Principal {
        owner: caller.owner_id(),
        admin: caller.is_admin(),
    })
}

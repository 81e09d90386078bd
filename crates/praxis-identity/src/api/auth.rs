//! Scopes of the key routes: `keys:read` to list, `keys:write` to create and revoke (access
//! tokens from a login carry both; the admin role implies them). Account routes need any
//! authenticated caller, admin routes the admin role.

use praxis_http::Scope;

use crate::domain::scopes::{KEYS_READ, KEYS_WRITE};

/// Listing API keys: `keys:read`.
#[derive(Debug)]
pub struct KeysRead;

impl Scope for KeysRead {
    const NAME: &'static str = KEYS_READ;
}

/// Creating and revoking API keys: `keys:write`.
#[derive(Debug)]
pub struct KeysWrite;

impl Scope for KeysWrite {
    const NAME: &'static str = KEYS_WRITE;
}

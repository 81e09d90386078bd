//! Who may do what. A logged-in account (a JWT access token) is a chat user: it acts for
//! itself without any scope. An API key needs `chat:write` to send and manage, and `chat:read`
//! (or `chat:write`) to read, acting as its owner. The admin role gets no view into other
//! people's conversations: every route acts for the caller, inside the caller's conversations.

use praxis_http::auth::PrincipalKind;
use praxis_http::{Principal, Scope};

use crate::settings::{CHAT_READ, CHAT_WRITE};

/// Sending and managing: any account, or an API key with `chat:write`.
#[derive(Debug)]
pub struct ChatWrite;

impl Scope for ChatWrite {
    const NAME: &'static str = CHAT_WRITE;

    fn granted(p: &Principal) -> bool {
        p.kind == PrincipalKind::Account || p.has_scope(CHAT_WRITE)
    }
}

/// Reading: any account, or an API key with `chat:read` or `chat:write`.
#[derive(Debug)]
pub struct ChatRead;

impl Scope for ChatRead {
    const NAME: &'static str = CHAT_READ;

    fn granted(p: &Principal) -> bool {
        ChatWrite::granted(p) || p.has_scope(CHAT_READ)
    }
}

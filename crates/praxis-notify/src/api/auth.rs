//! Who may do what. Sending, templates, subscribers and dead letters need the scope
//! `notify:write` (reading templates and subscribers `notify:read`); the admin role implies
//! both. A message can be read by the principal that sent it, or the admin.

use praxis_http::{Principal, Scope};

use crate::settings::{NOTIFY_READ, NOTIFY_WRITE};

/// Writing routes: `notify:write`.
#[derive(Debug)]
pub struct NotifyWrite;

impl Scope for NotifyWrite {
    const NAME: &'static str = NOTIFY_WRITE;
}

/// Reading routes: `notify:read` or `notify:write`.
#[derive(Debug)]
pub struct NotifyRead;

impl Scope for NotifyRead {
    const NAME: &'static str = NOTIFY_READ;

    fn granted(p: &Principal) -> bool {
        p.has_scope(NOTIFY_READ) || p.has_scope(NOTIFY_WRITE)
    }
}

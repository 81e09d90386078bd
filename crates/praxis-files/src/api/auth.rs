//! Who may do what. A logged-in account acts for itself without any scope; an API key needs
//! `files:write` to upload and manage, and `files:read` (or `files:write`) to read, acting as
//! its owner. Files are private to their owner: the admin role sets quotas but reads no one's
//! files.

use praxis_http::auth::PrincipalKind;
use praxis_http::{Principal, Scope};

use crate::settings::{FILES_READ, FILES_WRITE};

/// Uploading and managing: any account, or an API key with `files:write`.
#[derive(Debug)]
pub struct FilesWrite;

impl Scope for FilesWrite {
    const NAME: &'static str = FILES_WRITE;

    fn granted(p: &Principal) -> bool {
        p.kind == PrincipalKind::Account || p.has_scope(FILES_WRITE)
    }
}

/// Reading: any account, or an API key with `files:read` or `files:write`.
#[derive(Debug)]
pub struct FilesRead;

impl Scope for FilesRead {
    const NAME: &'static str = FILES_READ;

    fn granted(p: &Principal) -> bool {
        FilesWrite::granted(p) || p.has_scope(FILES_READ)
    }
}

//! Request and response bodies of the identity routes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::Role;
use crate::store::{Account, ApiKeyRow};

/// RFC 3339 text of a unix-ms time (UTC).
pub fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Body of `POST /api/v1/identity/signup` and `POST /api/v1/identity/login`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Email address (case-insensitive).
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Password: 12 to 128 characters at sign-up.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// Body of `POST /api/v1/identity/signup` as the OpenAPI document states it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "describes the sign-up body in the OpenAPI document"
)]
pub struct SignUp {
    /// Email address (case-insensitive), at most 254 characters.
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    email: String,
    /// Password: 12 to 128 characters, not only spaces.
    #[schema(
        example = "correct horse battery staple",
        min_length = 12,
        max_length = 128,
        pattern = r"[^\s\u0085]"
    )]
    password: String,
}

/// Body of `POST /api/v1/identity/login` as the OpenAPI document states it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the login body in the OpenAPI document")]
pub struct Login {
    /// Email address (case-insensitive); anything not blank (an address of no account is a
    /// 401 like a wrong password).
    #[schema(example = "ada@example.com", pattern = r"[^\s\u0085]")]
    email: String,
    /// Password: 1 to 512 characters.
    #[schema(
        example = "correct horse battery staple",
        min_length = 1,
        max_length = 512
    )]
    password: String,
}

/// An account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    /// Account id (UUIDv7).
    pub id: String,
    /// Normalized email.
    pub email: String,
    /// `user` or `admin`.
    pub role: Role,
    /// Plan tier.
    pub plan: String,
    /// Creation time (RFC 3339, UTC).
    pub created_at: String,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.clone(),
            email: a.email.clone(),
            role: a.role,
            plan: a.plan.clone(),
            created_at: rfc3339(a.created_at),
        }
    }
}

/// Tokens of a session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenPair {
    /// JWT access token: send it as `Authorization: Bearer <token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Refresh token (`prt_...`): exchange it at `/api/v1/identity/refresh`. Single use.
    pub refresh_token: String,
    /// Seconds until the refresh token (and its family) expires.
    pub refresh_expires_in: u64,
    /// The account.
    pub account: AccountView,
}

/// Body of `POST /api/v1/identity/refresh` and `POST /api/v1/identity/logout`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token (`prt_...`).
    #[schema(pattern = "^prt_[A-Za-z0-9_-]{43}$")]
    pub refresh_token: String,
}

/// Body of `PUT /api/v1/identity/me/password`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password (at most 512 characters).
    #[schema(max_length = 512)]
    pub current_password: String,
    /// The new password (12 to 128 characters, not only spaces).
    #[schema(min_length = 12, max_length = 128, pattern = r"[^\s\u0085]")]
    pub new_password: String,
}

/// Who the credentials belong to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MeView {
    /// Account id, or `admin` for the bootstrap admin key.
    pub subject: String,
    /// `access_token`, `api_key` or `bootstrap_admin`.
    pub credential: &'static str,
    /// Id of the API key used, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Scopes of the credential.
    pub scopes: Vec<String>,
    /// Whether the credential carries the admin role.
    pub admin: bool,
    /// Plan tier.
    pub plan: String,
    /// The account (absent for the bootstrap admin key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountView>,
}

/// Body of `POST /api/v1/identity/keys`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A name to recognise the key by (1 to 100 characters, not only spaces).
    #[schema(example = "ci deploy", max_length = 100, pattern = r"[^\s\u0085]")]
    pub name: String,
    /// Scopes granted to the key (1 to 32), a subset of the caller's (e.g. `links:read`).
    #[schema(example = json!(["links:read", "links:write"]), value_type = Vec<ScopeName>, min_items = 1, max_items = 32)]
    pub scopes: Vec<String>,
}

/// An API key, without its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    /// Key id (the part after `prx_`).
    pub id: String,
    /// The key's first characters, to recognise it (`prx_0190ab12…`).
    pub hint: String,
    /// Name.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last use (RFC 3339, recorded at most once a minute); absent if never used.
    pub last_used_at: Option<String>,
    /// Revocation time; absent while the key works.
    pub revoked_at: Option<String>,
}

impl From<&ApiKeyRow> for KeyView {
    fn from(k: &ApiKeyRow) -> Self {
        Self {
            id: k.id.clone(),
            hint: crate::domain::secrets::key_hint(&k.id),
            name: k.name.clone(),
            scopes: k.scopes.clone(),
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339),
            revoked_at: k.revoked_at.map(rfc3339),
        }
    }
}

/// A created API key: the only answer that shows the key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The full key (`prx_<id>_<secret>`): store it now, it is never shown again.
    pub key: String,
    /// The key's description.
    #[serde(flatten)]
    pub info: KeyView,
}

/// Query of listings.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1..=200 (default 50); outside that range is 400.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// A page of API keys, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyPage {
    /// Keys of this page (revoked ones included).
    pub items: Vec<KeyView>,
    /// Cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of accounts, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountPage {
    /// Accounts of this page.
    pub items: Vec<AccountView>,
    /// Cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Body of `PATCH /api/v1/identity/accounts/{id}` (admin).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    /// New role: `user` or `admin`.
    pub role: Option<Role>,
    /// New plan tier (`a-z 0-9 _ -`, 1 to 32 characters).
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    pub plan: Option<String>,
}

/// A scope (OpenAPI only): `<resource>:<action>`, each 1 to 32 of `a-z 0-9 _ -`.
#[derive(ToSchema)]
#[schema(pattern = "^[a-z0-9_-]{1,32}:[a-z0-9_-]{1,32}$")]
#[expect(dead_code, reason = "describes scopes in the OpenAPI document")]
pub struct ScopeName(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.5Z");
    }
}

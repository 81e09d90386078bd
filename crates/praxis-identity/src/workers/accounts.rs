//! Account use cases: sign-up, login, refresh-token rotation, logout, password change, and the
//! admin's account management.
//!
//! Refresh tokens rotate: each use marks the presented token used and issues a new one of the
//! same family (the family is one login). Presenting a token that was already used means two
//! parties hold it (the client and a thief), so the whole family is revoked and both must log
//! in again. A family's expiry is fixed at login; rotation does not extend it.

use std::net::IpAddr;

use praxis_http::auth::{Principal, PrincipalKind};

use praxis_infra::ratelimit::OnStoreFailure;

use crate::domain::email::normalize_email;
use crate::domain::password::{MAX_PASSWORD_CHARS, check_policy};
use crate::domain::secrets::{hash_secret, is_refresh_token, new_refresh_token};
use crate::domain::{Role, now_ms, scopes, validate_plan};
use crate::error::IdentityError;
use crate::store::{Account, ListKey, RefreshRow, Store};
use crate::workers::Core;
use crate::workers::jwt::Issued;

/// What a login or a refresh returns.
#[derive(Debug, Clone)]
pub struct Session {
    /// The signed access token.
    pub access: Issued,
    /// The new refresh token (shown once; stored only as a hash).
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
    /// The account.
    pub account: Account,
}

/// Longest password accepted at login, in characters (longer ones cannot exist, and would only
/// cost hashing).
const MAX_LOGIN_PASSWORD_CHARS: usize = 4 * MAX_PASSWORD_CHARS;

impl Core {
    /// Runs `f` with the hasher on a blocking thread, at most one run per core at a time.
    async fn hashing<T, F>(&self, f: F) -> Result<T, IdentityError>
    where
        F: FnOnce(&crate::domain::password::Hasher) -> T + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| IdentityError::Internal(format!("hashing pool closed: {e}")))?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || f(&hasher))
            .await
            .map_err(|e| IdentityError::Internal(format!("hashing thread failed: {e}")))
    }

    /// Creates an account with the `user` role and the `free` plan.
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<Account, IdentityError> {
        let mut errors = Vec::new();
        let email = match normalize_email(email) {
            Ok(e) => e,
            Err(m) => {
                errors.push(praxis_http::FieldError::new("email", m));
                String::new()
            }
        };
        if let Err(m) = check_policy(password) {
            errors.push(praxis_http::FieldError::new("password", m));
        }
        if !errors.is_empty() {
            return Err(IdentityError::Invalid(errors));
        }
        let owned = password.to_owned();
        let hash = self
            .hashing(move |h| h.hash(&owned))
            .await?
            .map_err(IdentityError::Internal)?;
        let now = now_ms();
        let account = Account {
            id: uuid::Uuid::now_v7().to_string(),
            email,
            password_hash: hash,
            role: Role::User,
            plan: praxis_http::auth::DEFAULT_PLAN.to_owned(),
            created_at: now,
            updated_at: now,
            password_changed_at: now,
        };
        if !self.store.insert_account(&account).await? {
            return Err(IdentityError::EmailTaken);
        }
        metrics::counter!("praxis_identity_signups_total").increment(1);
        tracing::info!(account = %account.id, "account created");
        Ok(account)
    }

    /// Checks email and password and opens a session. Unknown account and wrong password give
    /// the same answer after the same work (a dummy hash is verified for unknown accounts).
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<Session, IdentityError> {
        if email.trim().is_empty() {
            return Err(IdentityError::field("email", "is empty"));
        }
        if password.is_empty() || password.chars().count() > MAX_LOGIN_PASSWORD_CHARS {
            return Err(IdentityError::field(
                "password",
                format!("must be 1 to {MAX_LOGIN_PASSWORD_CHARS} characters"),
            ));
        }
        // Malformed emails are looked up as typed (they match nothing) rather than refused, so
        // the answer does not depend on the shape either.
        let key = normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
        self.login_allowed(&key, client).await?;
        let account = self.store.account_by_email(&key).await?;
        let stored = account
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |a| a.password_hash.clone());
        let owned = password.to_owned();
        let ok = self.hashing(move |h| h.verify(&owned, &stored)).await?;
        let account = match account {
            Some(a) if ok => a,
            _ => {
                self.login_failed(&key).await;
                metrics::counter!("praxis_identity_logins_total", "result" => "failed")
                    .increment(1);
                tracing::info!(client = ?client, "login failed");
                return Err(IdentityError::BadCredentials);
            }
        };
        if self.hasher.is_outdated(&account.password_hash) {
            let owned = password.to_owned();
            if let Ok(Ok(hash)) = self.hashing(move |h| h.hash(&owned)).await
                && let Err(e) = self.store.rehash_password(&account.id, &hash).await
            {
                tracing::warn!(error = %e, "upgrading a password hash failed");
            }
        }
        metrics::counter!("praxis_identity_logins_total", "result" => "ok").increment(1);
        let now = now_ms();
        let ttl_ms = i64::try_from(self.settings.refresh_token_ttl.as_millis()).unwrap_or(i64::MAX);
        let row = RefreshRow {
            id: uuid::Uuid::now_v7().to_string(),
            account_id: account.id.clone(),
            family_id: uuid::Uuid::now_v7().to_string(),
            created_at: now,
            expires_at: now.saturating_add(ttl_ms),
            used_at: None,
            revoked_at: None,
        };
        let token = new_refresh_token();
        let mut tx = self.store.db().begin_write().await?;
        Store::insert_refresh(&mut tx, &row, &hash_secret(&token)).await?;
        tx.commit().await.map_err(praxis_infra::InfraError::from)?;
        self.session(account, token, row.expires_at, now)
    }

    fn session(
        &self,
        account: Account,
        refresh_token: String,
        refresh_expires_at: i64,
        now: i64,
    ) -> Result<Session, IdentityError> {
        let granted: Vec<String> = scopes::ACCOUNT_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let access = self
            .tokens
            .issue(&account.id, account.role, &account.plan, &granted)
            .map_err(IdentityError::Internal)?;
        Ok(Session {
            access,
            refresh_token,
            refresh_expires_in: u64::try_from((refresh_expires_at - now) / 1000).unwrap_or(0),
            account,
        })
    }

    /// Exchanges a refresh token for a new access token and a new refresh token.
    pub async fn refresh(&self, token: &str) -> Result<Session, IdentityError> {
        if !is_refresh_token(token) {
            return Err(IdentityError::BadRefresh(
                "the refresh token is malformed".into(),
            ));
        }
        let now = now_ms();
        let mut tx = self.store.db().begin_write().await?;
        let Some(row) = Store::refresh_by_hash(&mut tx, &hash_secret(token)).await? else {
            return Err(IdentityError::BadRefresh(
                "the refresh token is not valid".into(),
            ));
        };
        if row.revoked_at.is_some() {
            return Err(IdentityError::BadRefresh(
                "the refresh token has been revoked; log in again".into(),
            ));
        }
        if row.expires_at <= now {
            return Err(IdentityError::BadRefresh(
                "the refresh token has expired; log in again".into(),
            ));
        }
        if row.used_at.is_some() || !Store::mark_used(&mut tx, &row.id, now).await? {
            let revoked = Store::revoke_family(&mut tx, &row.family_id, now).await?;
            tx.commit().await.map_err(praxis_infra::InfraError::from)?;
            metrics::counter!("praxis_identity_refresh_reuse_total").increment(1);
            tracing::warn!(account = %row.account_id, family = %row.family_id, revoked,
                "a rotated refresh token was used again; its family is revoked");
            return Err(IdentityError::BadRefresh(
                "the refresh token was already used; every session of this login has been revoked, log in again"
                    .into(),
            ));
        }
        let Some(account) = self.store.account_by_id(&row.account_id).await? else {
            return Err(IdentityError::BadRefresh(
                "the refresh token's account no longer exists".into(),
            ));
        };
        let next = RefreshRow {
            id: uuid::Uuid::now_v7().to_string(),
            account_id: row.account_id.clone(),
            family_id: row.family_id.clone(),
            created_at: now,
            expires_at: row.expires_at,
            used_at: None,
            revoked_at: None,
        };
        let token = new_refresh_token();
        Store::insert_refresh(&mut tx, &next, &hash_secret(&token)).await?;
        tx.commit().await.map_err(praxis_infra::InfraError::from)?;
        self.session(account, token, next.expires_at, now)
    }

    /// Revokes the family of a refresh token. Unknown tokens are ignored (the answer does not
    /// tell whether a token existed).
    pub async fn logout(&self, token: &str) -> Result<(), IdentityError> {
        if !is_refresh_token(token) {
            return Err(IdentityError::field(
                "refresh_token",
                "is not a refresh token (expected prt_...)",
            ));
        }
        let now = now_ms();
        let mut tx = self.store.db().begin_write().await?;
        if let Some(row) = Store::refresh_by_hash(&mut tx, &hash_secret(token)).await? {
            Store::revoke_family(&mut tx, &row.family_id, now).await?;
        }
        tx.commit().await.map_err(praxis_infra::InfraError::from)?;
        Ok(())
    }

    /// Changes the password of the principal's account after checking the current one, and
    /// revokes every refresh token of the account. Only access tokens may do this (an API key
    /// is not a proof of knowing the password).
    pub async fn change_password(
        &self,
        who: &Principal,
        current: &str,
        new: &str,
    ) -> Result<(), IdentityError> {
        if who.kind != PrincipalKind::Account {
            return Err(IdentityError::Forbidden(
                "changing the password needs an access token from a login, not an API key or the admin key"
                    .into(),
            ));
        }
        if let Err(m) = check_policy(new) {
            return Err(IdentityError::field("new_password", m));
        }
        if current.chars().count() > MAX_LOGIN_PASSWORD_CHARS {
            return Err(IdentityError::field(
                "current_password",
                format!("must be at most {MAX_LOGIN_PASSWORD_CHARS} characters"),
            ));
        }
        let Some(account) = self.store.account_by_id(&who.subject).await? else {
            return Err(IdentityError::NotFound(
                "the token's account no longer exists".into(),
            ));
        };
        self.login_allowed(&account.email, None).await?;
        let stored = account.password_hash.clone();
        let (cur, next) = (current.to_owned(), new.to_owned());
        let hashed = self
            .hashing(move |h| h.verify(&cur, &stored).then(|| h.hash(&next)))
            .await?;
        let hash = match hashed {
            None => {
                self.login_failed(&account.email).await;
                return Err(IdentityError::Invalid(vec![praxis_http::FieldError::new(
                    "current_password",
                    "is wrong",
                )]));
            }
            Some(r) => r.map_err(IdentityError::Internal)?,
        };
        let revoked = self
            .store
            .change_password(&account.id, &hash, now_ms())
            .await?;
        tracing::info!(account = %account.id, revoked, "password changed; refresh tokens revoked");
        Ok(())
    }

    /// The local account behind a principal: `None` for the bootstrap admin key, for users of
    /// an external identity provider who have no local account, and for deleted accounts.
    pub async fn account_of(&self, who: &Principal) -> Result<Option<Account>, IdentityError> {
        if who.kind == PrincipalKind::BootstrapAdmin {
            return Ok(None);
        }
        Ok(self.store.account_by_id(&who.subject).await?)
    }

    /// One page of accounts, newest first (`limit + 1` rows, so the caller can tell whether
    /// another page exists).
    pub async fn list_accounts(
        &self,
        after: Option<&ListKey>,
        limit: u32,
    ) -> Result<Vec<Account>, IdentityError> {
        Ok(self
            .store
            .list_accounts(after, limit.saturating_add(1))
            .await?)
    }

    /// Sets an account's role and/or plan (admin only, checked by the route). Cached API keys
    /// of the account are dropped so the new plan applies at once; access tokens carry the old
    /// role until they expire.
    pub async fn update_account(
        &self,
        id: &str,
        role: Option<Role>,
        plan: Option<&str>,
    ) -> Result<Account, IdentityError> {
        if let Some(p) = plan
            && let Err(m) = validate_plan(p)
        {
            return Err(IdentityError::field("plan", m));
        }
        let Some(account) = self.store.set_role_plan(id, role, plan, now_ms()).await? else {
            return Err(IdentityError::NotFound(format!(
                "no account with id `{id}`"
            )));
        };
        for key in self.store.api_key_ids(id).await? {
            if let Err(e) = self.key_cache.invalidate(&key).await {
                tracing::warn!(error = %e, "api key cache invalidation failed; stale until its ttl");
            }
        }
        tracing::info!(account = %id, role = account.role.as_str(), plan = %account.plan, "account updated");
        Ok(account)
    }

    /// Login abuse limits, checked before any password is verified: every attempt counts
    /// against the client IP (which also bounds the hashing work one client can cause), and
    /// the account must not have used up its failures. Either one exhausted is 429 with
    /// `Retry-After`, whatever the password. An unknown client IP (a server run without
    /// connection info) is not limited by IP.
    pub(crate) async fn login_allowed(
        &self,
        account: &str,
        client: Option<IpAddr>,
    ) -> Result<(), IdentityError> {
        if let Some(ip) = client {
            let key = format!("identity:login:ip:{ip}");
            let v = self
                .limiter
                .check(&key, &self.login_rules.ip, 1, OnStoreFailure::Local)
                .await;
            if !v.decision.allowed {
                return Err(self.too_many("ip", v.decision.retry_after));
            }
        }
        let v = self
            .limiter
            .check(
                &account_key(account),
                &self.login_rules.account,
                0,
                OnStoreFailure::Local,
            )
            .await;
        if v.decision.remaining == 0 {
            return Err(self.too_many(
                "account",
                v.decision.retry_after.or(Some(v.decision.reset_after)),
            ));
        }
        Ok(())
    }

    /// Counts a failed password check against the account.
    pub(crate) async fn login_failed(&self, account: &str) {
        self.limiter
            .check(
                &account_key(account),
                &self.login_rules.account,
                1,
                OnStoreFailure::Local,
            )
            .await;
    }

    fn too_many(&self, by: &'static str, retry: Option<std::time::Duration>) -> IdentityError {
        metrics::counter!("praxis_identity_login_limited_total", "by" => by).increment(1);
        tracing::info!(by, "login attempt refused by the abuse limit");
        IdentityError::TooManyAttempts(retry.unwrap_or(std::time::Duration::from_secs(1)))
    }
}

/// The limiter key of an account's failed logins: a hash of the normalized email, so no
/// address is written to Redis.
fn account_key(email: &str) -> String {
    let hash = blake3::hash(email.as_bytes()).to_hex();
    format!("identity:login:account:{}", &hash[..32])
}

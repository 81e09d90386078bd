//! API keys: create (the key is shown once), list, revoke, and resolve a presented key into a
//! principal.
//!
//! Resolving a key reads its row through a cache (L1 per process, Redis L2 when configured);
//! revocation invalidates the entry in every process at once, and the TTL bounds staleness if
//! an invalidation is lost. The secret's hash is compared in constant time after the lookup by
//! id. `last_used_at` is written at most once a minute per key (an in-process throttle plus a
//! conditional update, so several processes do not multiply the writes either).

use praxis_http::FieldError;
use praxis_http::auth::{AuthFailure, DEFAULT_PLAN, Principal, PrincipalKind};

use crate::domain::secrets::{hash_secret, new_api_key, parse_api_key, secret_matches};
use crate::domain::{now_ms, scopes};
use crate::error::IdentityError;
use crate::store::{ApiKeyRow, ListKey};
use crate::workers::Core;

/// Longest key name.
pub const MAX_NAME_CHARS: usize = 100;

impl Core {
    /// Creates a key for the principal's account with `requested` scopes, which must be a
    /// subset of the principal's own (the admin may grant any well-formed scope). Returns the
    /// row and the full key, which is never stored.
    pub async fn create_key(
        &self,
        who: &Principal,
        name: &str,
        requested: &[String],
    ) -> Result<(ApiKeyRow, String), IdentityError> {
        if who.kind == PrincipalKind::BootstrapAdmin {
            return Err(IdentityError::Forbidden(
                "the bootstrap admin key has no account: sign up, give the account the admin role, and create keys with it"
                    .into(),
            ));
        }
        let mut errors = Vec::new();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            errors.push(FieldError::new(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        if requested.is_empty() || requested.len() > scopes::MAX_SCOPES {
            errors.push(FieldError::new(
                "scopes",
                format!("must list 1 to {} scopes", scopes::MAX_SCOPES),
            ));
        }
        let mut granted: Vec<String> = Vec::new();
        for (i, s) in requested.iter().enumerate() {
            if let Err(m) = scopes::validate_scope(s) {
                errors.push(FieldError::new(format!("scopes[{i}]"), m));
            } else if !who.has_scope(s) {
                errors.push(FieldError::new(
                    format!("scopes[{i}]"),
                    format!("`{s}` is not held by the caller, so it cannot be granted"),
                ));
            } else if !granted.contains(s) {
                granted.push(s.clone());
            }
        }
        if !errors.is_empty() {
            return Err(IdentityError::Invalid(errors));
        }
        let Some(account) = self.account_of(who).await? else {
            return Err(IdentityError::Forbidden(
                "API keys belong to local accounts; these credentials have none".into(),
            ));
        };
        let (id, secret, key) = new_api_key();
        let row = ApiKeyRow {
            id,
            account_id: account.id,
            name: name.to_owned(),
            secret_hash: hash_secret(&secret),
            scopes: granted,
            created_at: now_ms(),
            last_used_at: None,
            revoked_at: None,
            owner_admin: account.role == crate::domain::Role::Admin,
            owner_plan: account.plan,
        };
        self.store.insert_api_key(&row).await?;
        // A lookup of this id may have cached "no such key" (someone probing ids).
        if let Err(e) = self.key_cache.invalidate(&row.id).await {
            tracing::warn!(error = %e, "api key cache invalidation failed");
        }
        metrics::counter!("praxis_identity_api_keys_created_total").increment(1);
        Ok((row, key))
    }

    /// One page of an account's keys, newest first (`limit + 1` rows).
    pub async fn list_keys(
        &self,
        account_id: &str,
        after: Option<&ListKey>,
        limit: u32,
    ) -> Result<Vec<ApiKeyRow>, IdentityError> {
        Ok(self
            .store
            .list_api_keys(account_id, after, limit.saturating_add(1))
            .await?)
    }

    /// Revokes a key of the principal's account (the admin may revoke any key). Revoking
    /// twice is fine. Every process stops accepting the key at once.
    pub async fn revoke_key(&self, who: &Principal, id: &str) -> Result<(), IdentityError> {
        let not_found = || IdentityError::NotFound(format!("no API key with id `{id}`"));
        let Some(row) = self.store.api_key(id).await? else {
            return Err(not_found());
        };
        if !(who.admin || row.account_id == who.subject) {
            return Err(not_found());
        }
        self.store.revoke_api_key(id, now_ms()).await?;
        if let Err(e) = self.key_cache.invalidate(id).await {
            tracing::warn!(error = %e, "api key cache invalidation failed; the key works until its cache ttl");
        }
        tracing::info!(key = %id, account = %row.account_id, "api key revoked");
        Ok(())
    }

    /// Resolves a presented `prx_` key.
    pub(crate) async fn authenticate_key(&self, presented: &str) -> Result<Principal, AuthFailure> {
        let Some((id, secret)) = parse_api_key(presented) else {
            return Err(AuthFailure::rejected(
                "the API key is malformed (expected prx_<key id>_<secret>)",
            ));
        };
        let store = self.store.clone();
        let owned = id.to_owned();
        let row = self
            .key_cache
            .get_or_load(id, || async move { store.api_key(&owned).await })
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "api key lookup failed");
                AuthFailure::Unavailable("the key store is unavailable; retry later".into())
            })?;
        let Some(row) = row else {
            return Err(AuthFailure::rejected("the API key is not valid"));
        };
        if !secret_matches(secret, &row.secret_hash) {
            return Err(AuthFailure::rejected("the API key is not valid"));
        }
        if row.revoked_at.is_some() {
            return Err(AuthFailure::rejected("the API key has been revoked"));
        }
        self.touch(&row.id).await;
        Ok(Principal {
            subject: row.account_id,
            kind: PrincipalKind::ApiKey { key_id: row.id },
            scopes: row.scopes,
            // API keys never carry the admin role: admin work needs a login.
            admin: false,
            plan: if row.owner_plan.is_empty() {
                DEFAULT_PLAN.to_owned()
            } else {
                row.owner_plan
            },
        })
    }

    /// Records a use of a key if none was recorded within `last_used_interval`.
    async fn touch(&self, id: &str) {
        let now = now_ms();
        let interval =
            i64::try_from(self.settings.last_used_interval.as_millis()).unwrap_or(i64::MAX);
        {
            let mut seen = self.last_used.lock();
            match seen.get(id) {
                Some(at) if now - *at < interval => return,
                _ => {
                    seen.insert(id.to_owned(), now);
                }
            }
        }
        match self.store.touch_api_key(id, now, interval).await {
            Ok(true) => {
                // The cached row carries last_used_at for listings only; they read the store.
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, key = %id, "recording an api key use failed"),
        }
    }
}

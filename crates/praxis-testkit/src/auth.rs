//! A test authenticator: fixed bearer tokens stand in for the identity system (which has its
//! own suite), so a suite names its callers and their scopes in a few lines.

use std::collections::HashMap;
use std::sync::Arc;

use praxis_http::AuthSettings;
use praxis_http::auth::{AuthFailure, Authenticator, DEFAULT_PLAN, Principal, PrincipalKind};

/// Resolves the tokens it was given; every other token is rejected (401).
#[derive(Debug, Clone, Default)]
pub struct TestAuthenticator {
    tokens: HashMap<String, Principal>,
    made_up: Option<Vec<String>>,
}

fn principal(subject: &str, kind: PrincipalKind, scopes: &[&str], admin: bool) -> Principal {
    Principal {
        subject: subject.to_owned(),
        kind,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        admin,
        plan: DEFAULT_PLAN.to_owned(),
    }
}

impl TestAuthenticator {
    /// An authenticator that accepts no token yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `token` is an access token of account `subject` with `scopes`.
    pub fn account(self, token: &str, subject: &str, scopes: &[&str]) -> Self {
        self.with(
            token,
            principal(subject, PrincipalKind::Account, scopes, false),
        )
    }

    /// `token` is an access token of account `subject` with the admin role.
    pub fn admin(self, token: &str, subject: &str, scopes: &[&str]) -> Self {
        self.with(
            token,
            principal(subject, PrincipalKind::Account, scopes, true),
        )
    }

    /// `token` is an API key of `subject` with `scopes` (its key id is the token).
    pub fn api_key(self, token: &str, subject: &str, scopes: &[&str]) -> Self {
        let kind = PrincipalKind::ApiKey {
            key_id: token.to_owned(),
        };
        self.with(token, principal(subject, kind, scopes, false))
    }

    /// Also accepts made-up users: `u:<id>` is an access token of account `<id>`, `key:<id>`
    /// an API key (id `k<id>`) of `<id>`; both with `scopes`.
    pub fn made_up_users(mut self, scopes: &[&str]) -> Self {
        self.made_up = Some(scopes.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    fn with(mut self, token: &str, principal: Principal) -> Self {
        self.tokens.insert(token.to_owned(), principal);
        self
    }

    /// Auth settings with `admin_key` as the bootstrap admin key and this authenticator.
    pub fn settings(self, admin_key: &str) -> AuthSettings {
        AuthSettings {
            admin_key: Some(admin_key.to_owned()),
            allow_anonymous_writes: false,
            authenticator: Some(Arc::new(self)),
        }
    }

    fn made_up(&self, bearer: &str) -> Option<Principal> {
        let scopes = self.made_up.as_ref()?;
        let (kind, subject) = if let Some(id) = bearer.strip_prefix("u:") {
            (PrincipalKind::Account, id)
        } else {
            let id = bearer.strip_prefix("key:")?;
            let key_id = format!("k{id}");
            (PrincipalKind::ApiKey { key_id }, id)
        };
        Some(Principal {
            subject: subject.to_owned(),
            kind,
            scopes: scopes.clone(),
            admin: false,
            plan: DEFAULT_PLAN.to_owned(),
        })
    }
}

#[async_trait::async_trait]
impl Authenticator for TestAuthenticator {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        self.tokens
            .get(bearer)
            .cloned()
            .or_else(|| self.made_up(bearer))
            .ok_or_else(|| AuthFailure::rejected("the bearer token is not valid"))
    }
}

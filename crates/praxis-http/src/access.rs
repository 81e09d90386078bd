//! What a route needs of its caller, checked before the handler runs: [`Require<S>`] is an
//! extractor that answers 401 to an anonymous caller and 403 to one without the scope `S`, and
//! then tells the handler who acts ([`Require::subject`]) and what it owns ([`Require::owns`]).
//!
//! A system names its scopes once as marker types:
//!
//! ```
//! use praxis_http::access::{Require, Scope};
//!
//! /// `links:read`.
//! pub struct LinksRead;
//! impl Scope for LinksRead {
//!     const NAME: &'static str = "links:read";
//! }
//!
//! async fn get_link(who: Require<LinksRead>) -> String {
//!     who.subject().to_owned()
//! }
//! ```

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::auth::{Caller, Principal, missing_scope};
use crate::problem::Problem;

/// A permission a route needs: a scope by default; a system may widen who holds it.
pub trait Scope: Send + Sync + 'static {
    /// The scope's name, as granted to API keys and named in the 403.
    const NAME: &'static str;

    /// Whether `principal` holds it: the scope itself (the admin implies every scope).
    fn granted(principal: &Principal) -> bool {
        principal.has_scope(Self::NAME)
    }

    /// The answer to a principal without it.
    fn refused() -> Problem {
        missing_scope(Self::NAME)
    }
}

/// Any authenticated caller.
#[derive(Debug)]
pub struct Authenticated;

impl Scope for Authenticated {
    const NAME: &'static str = "authenticated";

    fn granted(_: &Principal) -> bool {
        true
    }
}

/// The admin role (the bootstrap admin key, or an admin account).
#[derive(Debug)]
pub struct Admin;

impl Scope for Admin {
    const NAME: &'static str = "admin";

    fn granted(principal: &Principal) -> bool {
        principal.admin
    }

    fn refused() -> Problem {
        Problem::forbidden("this route needs the admin role")
    }
}

/// A caller that holds `S`; an extractor (401 when anonymous or the credentials are not
/// valid, 403 without `S`).
pub struct Require<S: Scope> {
    principal: Principal,
    scope: PhantomData<fn() -> S>,
}

impl<S: Scope> Require<S> {
    /// Checks `caller` for `S` (for routes whose need is only known inside the handler).
    pub fn check(caller: &Caller) -> Result<Self, Problem> {
        let principal = caller.require_principal()?;
        if !S::granted(principal) {
            return Err(S::refused());
        }
        Ok(Self {
            principal: principal.clone(),
            scope: PhantomData,
        })
    }

    /// The acting principal.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Who acts: the owner id recorded on what it creates (an account id, or `admin`).
    pub fn subject(&self) -> &str {
        &self.principal.subject
    }

    /// Whether the caller has the admin role.
    pub fn is_admin(&self) -> bool {
        self.principal.admin
    }

    /// Whether the caller may act on what `owner` owns: its own, or anything for the admin.
    pub fn owns(&self, owner: &str) -> bool {
        self.principal.admin || self.principal.subject == owner
    }
}

impl<S: Scope> std::fmt::Debug for Require<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Require")
            .field("scope", &S::NAME)
            .field("subject", &self.principal.subject)
            .finish()
    }
}

impl<S: Scope, St: Send + Sync> FromRequestParts<St> for Require<S> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        Self::check(&Caller::from_request_parts(parts, state).await?)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::auth::PrincipalKind;

    struct Read;
    impl Scope for Read {
        const NAME: &'static str = "things:read";
    }

    fn key(scopes: &[&str]) -> Caller {
        Caller::new(Some(Principal {
            subject: "u1".into(),
            kind: PrincipalKind::ApiKey {
                key_id: "k1".into(),
            },
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            admin: false,
            plan: "free".into(),
        }))
    }

    #[test]
    fn anonymous_is_401_and_a_missing_scope_403() {
        let anonymous = Require::<Read>::check(&Caller::new(None)).map(|_| ());
        assert_eq!(
            anonymous.map_err(|p| p.status),
            Err(StatusCode::UNAUTHORIZED)
        );
        let without = Require::<Read>::check(&key(&["other"])).map(|_| ());
        let refused = without.expect_err("scope missing");
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.detail.contains("things:read"), "{}", refused.detail);
    }

    #[test]
    fn holders_act_on_what_they_own() -> Result<(), Problem> {
        let who = Require::<Read>::check(&key(&["things:read"]))?;
        assert_eq!(who.subject(), "u1");
        assert!(who.owns("u1") && !who.owns("u2") && !who.is_admin());
        let admin = Require::<Admin>::check(&Caller::new(Some(Principal::bootstrap_admin())))?;
        assert!(admin.owns("u2"));
        let not_admin = Require::<Admin>::check(&key(&["things:read"])).map(|_| ());
        assert_eq!(not_admin.map_err(|p| p.status), Err(StatusCode::FORBIDDEN));
        Ok(())
    }
}

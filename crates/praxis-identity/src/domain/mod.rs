//! Pure rules of the identity system: email and password policy, password hashing, scopes,
//! roles, and the formats of refresh tokens and API keys. No I/O here.

pub mod email;
pub mod password;
pub mod scopes;
pub mod secrets;

/// The role of an account.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A regular account: manages its own resources.
    User,
    /// Sees and manages every account's resources, lists accounts, sets roles and plans.
    Admin,
}

impl Role {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Longest plan name.
pub const MAX_PLAN_LEN: usize = 32;

/// Checks a plan tier name: 1 to 32 of `a-z 0-9 _ -`.
pub fn validate_plan(plan: &str) -> Result<(), String> {
    if plan.is_empty() || plan.len() > MAX_PLAN_LEN {
        return Err(format!("must be 1 to {MAX_PLAN_LEN} characters"));
    }
    if !plan
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err("may hold only a-z, 0-9, '_' and '-'".to_owned());
    }
    Ok(())
}

/// The clock of every table: unix milliseconds (UTC).
pub use praxis_infra::sql::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for r in [Role::User, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn plans() {
        assert!(validate_plan("free").is_ok());
        assert!(validate_plan("pro-2").is_ok());
        assert!(validate_plan("").is_err());
        assert!(validate_plan("Pro").is_err());
        assert!(validate_plan(&"a".repeat(33)).is_err());
    }
}

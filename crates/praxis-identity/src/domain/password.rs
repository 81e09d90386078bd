//! Password policy and hashing.
//!
//! Policy (NIST SP 800-63B): 12 to 128 characters, no composition rules; length is what makes a
//! password strong, and composition rules push people to predictable patterns.
//!
//! Hashing: argon2id, version 0x13, with the first parameter set OWASP recommends (19 MiB of
//! memory, 2 iterations, 1 lane), a 16-byte random salt, stored as a PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) so parameters can be raised later without
//! breaking stored hashes (verification reads them from the string).

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng as _;

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in characters (bounds the hashing work a request can ask for).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Checks a new password against the policy.
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(format!(
            "must be at least {MIN_PASSWORD_CHARS} characters, got {n}"
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!(
            "must be at most {MAX_PASSWORD_CHARS} characters, got {n}"
        ));
    }
    if password.chars().all(char::is_whitespace) {
        return Err("must not be only whitespace".into());
    }
    Ok(())
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes (parallelism).
    pub lanes: u32,
}

impl HashCost {
    /// OWASP's recommended argon2id setting: m=19 MiB, t=2, p=1.
    pub const OWASP: HashCost = HashCost {
        memory_kib: 19 * 1024,
        iterations: 2,
        lanes: 1,
    };
}

impl Default for HashCost {
    fn default() -> Self {
        HashCost::OWASP
    }
}

/// Hashes and verifies passwords with fixed parameters.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish()
    }
}

impl Hasher {
    /// A hasher with these costs; an error names what argon2 refuses.
    pub fn new(cost: HashCost) -> Result<Self, String> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.lanes, None)
            .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string of `password` with a fresh random salt. CPU-heavy (tens of ms): call it
    /// from a blocking thread.
    pub fn hash(&self, password: &str) -> Result<String, String> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        self.argon2()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| format!("argon2 hashing failed: {e}"))
    }

    /// Whether `password` matches the PHC string `stored` (its own parameters are used). The
    /// final comparison is constant-time (argon2 compares outputs with `subtle`). A malformed
    /// stored hash verifies as false. CPU-heavy: call it from a blocking thread.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        match PasswordHash::new(stored) {
            Ok(parsed) => self
                .argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Whether a stored hash was made with other parameters than this hasher's (so it can be
    /// upgraded at the next successful login).
    pub fn is_outdated(&self, stored: &str) -> bool {
        let expected = format!(
            "$argon2id$v=19$m={},t={},p={}$",
            self.params.m_cost(),
            self.params.t_cost(),
            self.params.p_cost()
        );
        !stored.starts_with(&expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Hasher {
        Hasher::new(HashCost {
            memory_kib: 64,
            iterations: 1,
            lanes: 1,
        })
        .expect("valid")
    }

    #[test]
    fn policy_counts_characters() {
        assert!(check_policy("correct horse").is_ok());
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"é".repeat(12)).is_ok());
        assert!(check_policy(&"x".repeat(128)).is_ok());
        assert!(check_policy(&"x".repeat(129)).is_err());
        assert!(check_policy(&" ".repeat(20)).is_err());
    }

    #[test]
    fn hashes_verify_and_salts_differ() {
        let h = cheap();
        let a = h.hash("correct horse battery").expect("hash");
        let b = h.hash("correct horse battery").expect("hash");
        assert_ne!(a, b, "random salt");
        assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{a}");
        assert!(h.verify("correct horse battery", &a));
        assert!(!h.verify("correct horse battery!", &a));
        assert!(!h.verify("anything", "not a phc string"));
        assert!(!h.is_outdated(&a));
        assert!(Hasher::new(HashCost::OWASP).expect("owasp").is_outdated(&a));
    }

    #[test]
    fn owasp_parameters_are_the_default() {
        let h = Hasher::new(HashCost::default()).expect("valid");
        assert!(format!("{h:?}").contains("19456"));
    }
}

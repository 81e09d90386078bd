//! Where environment variables are read from: the process environment in production, a map in
//! tests (linkerd2-proxy style), so parsing is tested without touching the process env.

use std::collections::HashMap;

/// A read-only view of environment variables.
pub trait EnvSource {
    /// The value of `name`, or `Ok(None)` when unset. `Err` carries a message when the variable is
    /// set but unusable (not valid UTF-8).
    fn get(&self, name: &str) -> Result<Option<String>, String>;
}

/// The real process environment (`std::env::var`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err("is not valid UTF-8".to_owned()),
        }
    }
}

impl EnvSource for HashMap<String, String> {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(HashMap::get(self, name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_source_answers_from_the_map() {
        let map: HashMap<String, String> =
            [("PRAXIS_LISTEN".to_owned(), "0.0.0.0:1".to_owned())].into();
        assert_eq!(
            EnvSource::get(&map, "PRAXIS_LISTEN"),
            Ok(Some("0.0.0.0:1".to_owned()))
        );
        assert_eq!(EnvSource::get(&map, "PRAXIS_OTHER"), Ok(None));
    }

    #[test]
    fn process_env_reports_unset_variables_as_none() {
        assert_eq!(
            ProcessEnv.get("PRAXIS_SURELY_NOT_SET_ANYWHERE_4f2a9c"),
            Ok(None)
        );
    }
}

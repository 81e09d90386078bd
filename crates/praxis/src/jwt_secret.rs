//! The JWT secret used by `serve`: the configured one, or in embedded mode one generated into
//! `<data_dir>/jwt.secret` (mode 0600) on first start, like the admin key. The secret itself
//! is never logged.

use std::path::Path;

use anyhow::bail;

use crate::config::identity::read_jwt_secret_file;
use crate::config::{Config, Mode, Secret};
use crate::secret_file::{self, KeySource};

/// Returns the JWT secret for `serve`; in embedded mode without one, reads or creates
/// `<data_dir>/jwt.secret`. Scaled mode requires a configured secret: processes that do not
/// share a data dir would otherwise sign with different secrets and refuse each other's tokens.
pub fn resolve(cfg: &Config) -> anyhow::Result<(Secret, KeySource)> {
    if let Some(secret) = &cfg.identity.jwt_secret {
        return Ok((secret.clone(), KeySource::Configured));
    }
    if cfg.mode() == Mode::Scaled {
        bail!(
            "scaled mode needs a JWT secret shared by every process: set PRAXIS_JWT_SECRET or \
             jwt_secret_file (PRAXIS_JWT_SECRET_FILE, --jwt-secret-file)"
        );
    }
    read_or_generate(&cfg.generated_jwt_secret_path())
}

fn read_or_generate(path: &Path) -> anyhow::Result<(Secret, KeySource)> {
    secret_file::read_or_generate(path, read_jwt_secret_file, "secret")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn generates_once_with_owner_only_permissions_then_reuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested").join("jwt.secret");
        let (first, source) = read_or_generate(&path).expect("generate");
        assert_eq!(source, KeySource::Generated(path.clone()));
        assert_eq!(first.expose().len(), 64);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, source) = read_or_generate(&path).expect("reuse");
        assert_eq!(source, KeySource::Existing(path.clone()));
        assert_eq!(first, second);
    }

    #[test]
    fn a_broken_secret_file_is_an_error_not_a_new_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwt.secret");
        std::fs::write(&path, "short").expect("write");
        let err = read_or_generate(&path).expect_err("too short");
        assert!(err.to_string().contains("delete it"), "{err}");
    }
}

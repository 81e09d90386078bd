//! The JWT secret used by `serve`: the configured one, or in embedded mode one generated into
//! `<data_dir>/jwt.secret` (mode 0600) on first start, like the admin key. The secret itself
//! is never logged.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, bail};

use crate::admin_key::KeySource;
use crate::config::identity::read_jwt_secret_file;
use crate::config::{Config, Mode, Secret};

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
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data_dir {}", dir.display()))?;
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(mut file) => {
            file.write_all(generate().as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            let secret = read_jwt_secret_file(path).map_err(anyhow::Error::msg)?;
            Ok((secret, KeySource::Generated(path.to_path_buf())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let secret = read_jwt_secret_file(path)
                .map_err(|msg| anyhow::anyhow!("{msg} (delete it to generate a new secret)"))?;
            Ok((secret, KeySource::Existing(path.to_path_buf())))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// 64 hex characters from two random UUIDv4 (244 random bits).
fn generate() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
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

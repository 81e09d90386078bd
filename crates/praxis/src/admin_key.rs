//! The admin key used by `serve`: the configured one, or in embedded mode one generated into
//! `<data_dir>/admin.key` (mode 0600) on first start. The key itself is never logged.

use std::path::Path;

use anyhow::bail;

use crate::config::{self, Config, Mode, Secret};
use crate::secret_file;
use crate::secret_file::KeySource;

/// Returns the admin key for `serve`; in embedded mode without one, reads or creates
/// `<data_dir>/admin.key`. Scaled mode requires a configured key, because processes that do not
/// share a data dir would otherwise each invent their own.
pub fn resolve(cfg: &Config) -> anyhow::Result<(Secret, KeySource)> {
    if let Some(key) = &cfg.admin_key {
        return Ok((key.clone(), KeySource::Configured));
    }
    if cfg.mode() == Mode::Scaled {
        bail!(
            "scaled mode needs an admin key shared by every process: set PRAXIS_ADMIN_KEY or \
             admin_key_file (PRAXIS_ADMIN_KEY_FILE, --admin-key-file)"
        );
    }
    let path = cfg.generated_admin_key_path();
    read_or_generate(&path)
}

fn read_or_generate(path: &Path) -> anyhow::Result<(Secret, KeySource)> {
    secret_file::read_or_generate(path, config::read_admin_key_file, "key")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn generates_once_with_owner_only_permissions_then_reuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested").join("admin.key");
        let (first, source) = read_or_generate(&path).expect("generate");
        assert_eq!(source, KeySource::Generated(path.clone()));
        assert_eq!(first.expose().len(), 64);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!crate::secret_file::readable_by_others(&path));

        let (second, source) = read_or_generate(&path).expect("reuse");
        assert_eq!(source, KeySource::Existing(path.clone()));
        assert_eq!(first, second);
    }

    #[test]
    fn a_broken_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("admin.key");
        std::fs::write(&path, "short").expect("write");
        let err = read_or_generate(&path).expect_err("too short");
        assert!(err.to_string().contains("delete it"), "{err}");
    }
}

//! The webhook signing secret of the notify system: the configured one, or one generated into
//! `<data_dir>/notify-webhook.secret` (mode 0600) on first start and read back afterwards. It
//! signs webhooks and gateway requests (Standard Webhooks); receivers verify with it, so its
//! `whsec_...` form is what their owners need: read it from the file. Never logged.

use crate::config::notify::read_webhook_secret_file;
use crate::config::{Config, Mode, Secret};
use crate::secret_file::{self, KeySource};

/// Returns the webhook secret; without a configured one, reads or creates
/// `<data_dir>/notify-webhook.secret`. In scaled mode that works only when the processes share
/// the data dir (or the file is copied), so a warning says to configure one.
pub fn resolve(cfg: &Config) -> anyhow::Result<(Secret, KeySource)> {
    if let Some(secret) = &cfg.notify.webhook_secret {
        return Ok((secret.clone(), KeySource::Configured));
    }
    if cfg.mode() == Mode::Scaled {
        tracing::warn!(
            "notify_webhook_secret is not set in scaled mode: this process signs webhooks with \
             the secret in its data_dir; set PRAXIS_NOTIFY_WEBHOOK_SECRET or \
             notify_webhook_secret_file so every process signs with the same secret"
        );
    }
    secret_file::read_or_generate(
        &cfg.generated_webhook_secret_path(),
        read_webhook_secret_file,
        "webhook secret",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_file_reads_as_a_whsec_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify-webhook.secret");
        let (first, source) =
            secret_file::read_or_generate(&path, read_webhook_secret_file, "webhook secret")
                .expect("generate");
        assert_eq!(source, KeySource::Generated(path.clone()));
        assert!(first.expose().starts_with("whsec_"));
        let (second, _) =
            secret_file::read_or_generate(&path, read_webhook_secret_file, "webhook secret")
                .expect("reuse");
        assert_eq!(first, second);
    }
}

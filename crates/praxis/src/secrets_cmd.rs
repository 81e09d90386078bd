//! `praxis secrets`: lists the secrets the server uses and where each comes from, or prints one
//! for whoever must hold it too (a webhook receiver needs notify's `whsec_...` secret).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::SecretsCommand;
use crate::config::{Config, Mode};
use crate::secrets;

/// One secret the server uses.
struct Entry {
    /// Its key, e.g. `notify_webhook_secret`.
    key: String,
    /// The system that declared it (`None`: the server's own).
    system: Option<&'static str>,
    /// Configured (environment or a `*_file` key).
    configured: bool,
    /// The file it is generated into when not configured.
    file: PathBuf,
}

/// Runs the subcommand; exit status 2 for an unknown name, 1 when a secret cannot be read.
pub fn run(cfg: &Config, cmd: &SecretsCommand) -> ExitCode {
    let entries = entries(cfg);
    match cmd {
        SecretsCommand::List(_) => {
            for e in &entries {
                println!("{}  {}", e.key, source(cfg, e));
            }
            ExitCode::SUCCESS
        }
        SecretsCommand::Show { name, .. } => {
            let Some(entry) = entries.iter().find(|e| matches(&e.key, name)) else {
                let known: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
                eprintln!(
                    "praxis secrets: no secret {name:?}; the secrets are: {}",
                    known.join(", ")
                );
                return ExitCode::from(2);
            };
            match value(cfg, entry) {
                Ok(value) => {
                    println!("{value}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("praxis secrets: {}: {e:#}", entry.key);
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn entries(cfg: &Config) -> Vec<Entry> {
    let mut out = vec![
        Entry {
            key: "admin_key".to_owned(),
            system: None,
            configured: cfg.admin_key.is_some(),
            file: cfg.generated_admin_key_path(),
        },
        Entry {
            key: "jwt_secret".to_owned(),
            system: None,
            configured: cfg.jwt_secret.is_some(),
            file: cfg.generated_jwt_secret_path(),
        },
    ];
    out.extend(cfg.system_secrets.iter().map(|s| Entry {
        key: format!("{}_{}", s.system, s.spec.name),
        system: Some(s.system),
        configured: s.value.is_some(),
        file: cfg.data_dir.join(s.spec.file),
    }));
    out
}

/// `name` names `key`: the key itself, with dashes for underscores, or without `_secret`.
fn matches(key: &str, name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase().replace('-', "_");
    name == key || Some(name.as_str()) == key.strip_suffix("_secret")
}

fn source(cfg: &Config, e: &Entry) -> String {
    if e.configured {
        return "configured (environment or a *_file key)".to_owned();
    }
    if e.file.exists() {
        return format!("generated, in {}", e.file.display());
    }
    match cfg.mode() {
        Mode::Scaled if e.system.is_none() => {
            "not set: scaled mode needs it configured (serve refuses to start)".to_owned()
        }
        _ => format!(
            "not generated yet: the first serve (or `praxis secrets show`) writes {}",
            e.file.display()
        ),
    }
}

fn value(cfg: &Config, e: &Entry) -> anyhow::Result<String> {
    match (e.system, e.key.as_str()) {
        (None, "admin_key") => Ok(secrets::admin_key(cfg)?.expose().to_owned()),
        (None, _) => Ok(secrets::signing_secret(cfg)?.expose().to_owned()),
        (Some(system), key) => {
            let name = &key[system.len() + 1..];
            secrets::of_system(cfg, system)?
                .remove(name)
                .ok_or_else(|| anyhow::anyhow!("{system} declares no secret {name}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn names_are_read_with_dashes_and_without_the_suffix() {
        assert!(matches("notify_webhook_secret", "notify-webhook"));
        assert!(matches("notify_webhook_secret", "notify_webhook_secret"));
        assert!(matches("notify_webhook_secret", "NOTIFY-WEBHOOK-SECRET"));
        assert!(matches("admin_key", "admin-key"));
        assert!(matches("jwt_secret", "jwt"));
        assert!(!matches("admin_key", "admin"));
        assert!(!matches("notify_webhook_secret", "webhook"));
    }
}

//! `praxis config`: the effective configuration as TOML, secrets masked, each line commented
//! with where its value came from.

use super::keys::{self, Default as KeyDefault};
use super::units::{format_duration, format_size};
use super::values::mask_url;
use super::{Config, Origin};

/// Renders `cfg` as commented TOML.
pub fn render(cfg: &Config) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    for spec in keys::KEYS {
        let (value, note) = value_of(cfg, spec.name);
        let origin = cfg.origin(spec.name);
        let comment = match (&origin, spec.default, note) {
            (_, _, Some(note)) => note,
            (Origin::Default, KeyDefault::Derived(how), None) => format!("default: {how}"),
            (Origin::Default, KeyDefault::Unset(what), None) => format!("default: unset, {what}"),
            (origin, _, None) => origin.to_string(),
        };
        rows.push((format!("{} = {value}", spec.name), comment));
    }

    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let mut out = String::new();
    out.push_str("# praxis effective configuration (secrets masked)\n");
    out.push_str(&format!("# mode: {}\n", cfg.mode()));
    match &cfg.file {
        Some(path) => out.push_str(&format!("# config file: {}\n", path.display())),
        None => out.push_str("# config file: none\n"),
    }
    for (line, comment) in rows {
        out.push_str(&format!("{line:<width$}  # {comment}\n"));
    }
    if let Some(rl) = &cfg.rate_limit {
        out.push_str(&rate_limit_table(rl));
    }
    out
}

/// The HTTP rate-limit policies as a `[rate_limit]` table, after a comment naming their file.
fn rate_limit_table(rl: &super::rate_limit::HttpRateLimit) -> String {
    #[derive(serde::Serialize)]
    struct Wrapper<'a> {
        rate_limit: &'a praxis_http::ratelimit::RateLimitConfig,
    }
    let mut out = format!(
        "\n# [rate_limit]: {} policies, from {}\n",
        rl.config.policies.len(),
        rl.source.display()
    );
    match toml::to_string(&Wrapper {
        rate_limit: &rl.config,
    }) {
        Ok(text) => out.push_str(&text),
        Err(e) => out.push_str(&format!("# (cannot be printed: {e})\n")),
    }
    out
}

/// The TOML text of a key's value and, when the origin alone does not explain it, a note.
fn value_of(cfg: &Config, key: &str) -> (String, Option<String>) {
    let s = |v: &str| toml::Value::String(v.to_owned()).to_string();
    let opt = |v: &Option<String>| {
        v.as_deref()
            .map(mask_url)
            .map(|v| s(&v))
            .unwrap_or_else(|| s(""))
    };
    match key {
        "listen" => (s(&cfg.listen.to_string()), None),
        "data_dir" => (s(&cfg.data_dir.display().to_string()), None),
        "database_url" => (s(&mask_url(&cfg.database_url)), None),
        "redis_url" => (opt(&cfg.redis_url), None),
        "nats_url" => (opt(&cfg.nats_url), None),
        "admin_key" => match (&cfg.admin_key, &cfg.admin_key_file) {
            (Some(_), Some(_)) => (s("****"), Some("read from admin_key_file".to_owned())),
            (Some(_), None) => (s("****"), None),
            (None, _) => (
                s(""),
                Some(format!(
                    "unset: embedded serve uses (or generates) {}; scaled serve requires one",
                    cfg.generated_admin_key_path().display()
                )),
            ),
        },
        "admin_key_file" => (
            s(&cfg
                .admin_key_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()),
            None,
        ),
        "jwt_secret" => match (&cfg.identity.jwt_secret, &cfg.identity.jwt_secret_file) {
            (Some(_), Some(_)) => (s("****"), Some("read from jwt_secret_file".to_owned())),
            (Some(_), None) => (s("****"), None),
            (None, _) => (
                s(""),
                Some(format!(
                    "unset: embedded serve uses (or generates) {}; scaled serve requires one",
                    cfg.generated_jwt_secret_path().display()
                )),
            ),
        },
        "jwt_secret_file" => (
            s(&cfg
                .identity
                .jwt_secret_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()),
            None,
        ),
        "jwt_issuer" => (s(&cfg.identity.jwt_issuer), None),
        "jwt_audience" => (s(&cfg.identity.jwt_audience), None),
        "access_token_ttl" => (s(&format_duration(cfg.identity.access_token_ttl)), None),
        "refresh_token_ttl" => (s(&format_duration(cfg.identity.refresh_token_ttl)), None),
        "jwks_url" => (
            s(&cfg
                .identity
                .jwks_url
                .as_ref()
                .map(|u| mask_url(u.as_str()))
                .unwrap_or_default()),
            None,
        ),
        "jwks_issuer" => (
            s(cfg.identity.jwks_issuer.as_deref().unwrap_or_default()),
            None,
        ),
        "jwks_audience" => match &cfg.identity.jwks_audience {
            Some(a) => (s(a), None),
            None => (
                s(cfg.identity.effective_jwks_audience()),
                Some("default: jwt_audience".to_owned()),
            ),
        },
        "login_limit_account" => (s(&cfg.identity.login_limit_account.to_string()), None),
        "login_limit_ip" => (s(&cfg.identity.login_limit_ip.to_string()), None),
        "rate_limit_file" => match (&cfg.rate_limit, cfg.origin("rate_limit_file")) {
            (Some(rl), Origin::Default) => (
                s(""),
                Some(format!(
                    "unset: [rate_limit] table read from {}",
                    rl.source.display()
                )),
            ),
            (Some(rl), _) => (s(&rl.source.display().to_string()), None),
            (None, _) => (s(""), None),
        },
        "ratelimit_limits" => match (&cfg.ratelimit.limits, &cfg.ratelimit.limits_version) {
            (Some(path), Some(version)) => (
                s(&path.display().to_string()),
                Some(format!(
                    "{}, version {version}",
                    cfg.origin("ratelimit_limits")
                )),
            ),
            (Some(path), None) => (s(&path.display().to_string()), None),
            (None, _) => (s(""), None),
        },
        "ratelimit_grpc_listen" => (
            s(&cfg
                .ratelimit
                .grpc_listen
                .map(|a| a.to_string())
                .unwrap_or_default()),
            None,
        ),
        "notify_smtp_url" => match &cfg.notify.smtp {
            Some(smtp) => (s(&super::notify::format_smtp(smtp)), None),
            None => (
                s(""),
                Some(format!(
                    "default: unset, emails are written as .eml files under {}",
                    cfg.data_dir.join("notify").join("outbox").display()
                )),
            ),
        },
        "notify_smtp_ca_file" => (
            s(&cfg
                .notify
                .smtp_ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()),
            None,
        ),
        "notify_email_from" => (s(&cfg.notify.email_from), None),
        "notify_webhook_secret" => {
            match (&cfg.notify.webhook_secret, &cfg.notify.webhook_secret_file) {
                (Some(_), Some(_)) => (
                    s("****"),
                    Some("read from notify_webhook_secret_file".to_owned()),
                ),
                (Some(_), None) => (s("****"), None),
                (None, _) => (
                    s(""),
                    Some(format!(
                        "unset: serve uses (or generates) {}",
                        cfg.generated_webhook_secret_path().display()
                    )),
                ),
            }
        }
        "notify_webhook_secret_file" => (
            s(&cfg
                .notify
                .webhook_secret_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()),
            None,
        ),
        "notify_sms_url" => (opt(&cfg.notify.sms_url), None),
        "notify_push_url" => (opt(&cfg.notify.push_url), None),
        "notify_concurrency" => (s(&cfg.notify.concurrency.to_string()), None),
        "notify_max_attempts" => (s(&cfg.notify.max_attempts.to_string()), None),
        "notify_retry_base" => (s(&format_duration(cfg.notify.retry_base)), None),
        "notify_retry_max" => (s(&format_duration(cfg.notify.retry_max)), None),
        "notify_lease" => (s(&format_duration(cfg.notify.lease)), None),
        "notify_provider_timeout" => (s(&format_duration(cfg.notify.provider_timeout)), None),
        "notify_rate_limits" => (
            s(&super::notify::format_rate_limits(&cfg.notify.rate_limits)),
            None,
        ),
        "notify_breaker_failures" => (cfg.notify.breaker_failures.to_string(), None),
        "notify_breaker_open" => (s(&format_duration(cfg.notify.breaker_open)), None),
        "notify_breaker_max_open" => (s(&format_duration(cfg.notify.breaker_max_open)), None),
        "notify_webhook_allow_private" => (cfg.notify.webhook_allow_private.to_string(), None),
        "notify_webhook_allow_cidrs" => (
            s(&cfg
                .notify
                .webhook_allow_cidrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")),
            None,
        ),
        "notify_retention" => (s(&format_duration(cfg.notify.retention)), None),
        "notify_retention_interval" => (s(&format_duration(cfg.notify.retention_interval)), None),
        "base_url" => match &cfg.base_url {
            Some(url) => (s(url.as_str()), None),
            None => (
                s(""),
                Some(format!(
                    "default: unset, serve uses http://<bound address> (listen {})",
                    cfg.listen
                )),
            ),
        },
        "anonymous_create" => (cfg.anonymous_create.to_string(), None),
        "default_redirect" => (cfg.default_redirect.to_string(), None),
        "forward_query" => (cfg.forward_query.to_string(), None),
        "cache_capacity" => (cfg.cache_capacity.to_string(), None),
        "cache_ttl" => (s(&format_duration(cfg.cache_ttl)), None),
        "visit_stats" => (cfg.visit_stats.to_string(), None),
        "body_limit" => (s(&format_size(cfg.body_limit as u64)), None),
        "request_timeout" => (s(&format_duration(cfg.request_timeout)), None),
        "shutdown_grace" => (s(&format_duration(cfg.shutdown_grace)), None),
        "log_format" => (s(&cfg.log_format.to_string()), None),
        "log_level" => (s(&cfg.log_level), None),
        "access_log" => (cfg.access_log.to_string(), None),
        "metrics" => (cfg.metrics.to_string(), None),
        "prefix" => (s(&cfg.prefix), None),
        "feed_celebrity_threshold" => (cfg.feed.celebrity_threshold.to_string(), None),
        "feed_timeline_cap" => (cfg.feed.timeline_cap.to_string(), None),
        "feed_active_window" => (s(&format_duration(cfg.feed.active_window)), None),
        "feed_fanout_batch" => (cfg.feed.fanout_batch.to_string(), None),
        "only" => (
            toml::Value::Array(
                cfg.only
                    .iter()
                    .map(|n| toml::Value::String(n.clone()))
                    .collect(),
            )
            .to_string(),
            None,
        ),
        other => (s(""), Some(format!("no renderer for {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::super::{LoadOptions, load};
    use super::*;

    fn cfg(env: &[(&str, &str)], flags: &[(&'static str, &str)]) -> Config {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        load(&LoadOptions {
            env: &env,
            flags: flags.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            config_flag: None,
            default_file: PathBuf::from("/nonexistent/praxis.toml"),
            known_systems: &["shortener"],
        })
        .expect("config loads")
    }

    fn line<'a>(out: &'a str, key: &str) -> &'a str {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no line for {key} in\n{out}"))
    }

    #[test]
    fn every_key_is_printed_with_its_origin() {
        let out = render(&cfg(
            &[("PRAXIS_PREFIX", "envp")],
            &[("listen", "0.0.0.0:9")],
        ));
        for spec in keys::KEYS {
            line(&out, spec.name);
        }
        assert!(line(&out, "listen").ends_with("# flag --listen"), "{out}");
        assert!(line(&out, "prefix").contains("\"envp\""), "{out}");
        assert!(
            line(&out, "prefix").ends_with("# env PRAXIS_PREFIX"),
            "{out}"
        );
        assert!(line(&out, "log_level").ends_with("# default"), "{out}");
        assert!(line(&out, "body_limit").contains("\"2MiB\""), "{out}");
        assert!(line(&out, "only").contains("[\"shortener\"]"), "{out}");
        assert!(out.contains("# mode: embedded"), "{out}");
    }

    #[test]
    fn secrets_and_url_passwords_are_masked() {
        let out = render(&cfg(
            &[
                ("PRAXIS_ADMIN_KEY", "super-secret-admin-key"),
                (
                    "PRAXIS_JWT_SECRET",
                    "super-secret-jwt-secret-0123456789abcdef",
                ),
                ("PRAXIS_DATABASE_URL", "postgres://u:pgsecret@127.0.0.1/db"),
            ],
            &[],
        ));
        assert!(!out.contains("super-secret-admin-key"), "{out}");
        assert!(!out.contains("super-secret-jwt"), "{out}");
        assert!(
            line(&out, "jwt_secret").starts_with("jwt_secret = \"****\""),
            "{out}"
        );
        assert!(!out.contains("pgsecret"), "{out}");
        assert!(
            line(&out, "admin_key").starts_with("admin_key = \"****\""),
            "{out}"
        );
        assert!(
            line(&out, "admin_key").ends_with("# env PRAXIS_ADMIN_KEY"),
            "{out}"
        );
        assert!(out.contains("# mode: scaled"), "{out}");
    }

    #[test]
    fn notify_secrets_are_masked() {
        let out = render(&cfg(
            &[
                (
                    "PRAXIS_NOTIFY_SMTP_URL",
                    "smtps://mailer:smtp-secret-pw@mail.example.com",
                ),
                (
                    "PRAXIS_NOTIFY_WEBHOOK_SECRET",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                ),
            ],
            &[("notify_rate_limits", "smtp=10/1s")],
        ));
        assert!(!out.contains("smtp-secret-pw"), "{out}");
        assert!(!out.contains("MfKQ9r8"), "{out}");
        assert!(
            line(&out, "notify_smtp_url")
                .starts_with("notify_smtp_url = \"smtps://mailer:****@mail.example.com:465\""),
            "{out}"
        );
        assert!(
            line(&out, "notify_webhook_secret").starts_with("notify_webhook_secret = \"****\""),
            "{out}"
        );
        assert!(
            line(&out, "notify_rate_limits").contains("\"smtp=10/1s\""),
            "{out}"
        );
    }

    #[test]
    fn output_parses_as_toml() {
        let out = render(&cfg(&[], &[]));
        let table: toml::Table = toml::from_str(&out).expect("valid TOML");
        assert_eq!(table.len(), keys::KEYS.len());
    }
}

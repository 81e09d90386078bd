//! `praxis config`: the effective configuration as TOML, secrets masked, each line commented
//! with where its value came from: the server's keys, then the `[rate_limit]` table, then one
//! section per system.

use super::keys::{Default as KeyDefault, KeySpec};
use super::values::mask_url;
use super::{Config, Origin};

/// Renders `cfg` as commented TOML.
pub fn render(cfg: &Config) -> String {
    let mut out = String::new();
    out.push_str("# praxis effective configuration (secrets masked)\n");
    out.push_str(&format!("# mode: {}\n", cfg.mode()));
    match &cfg.file {
        Some(path) => out.push_str(&format!("# config file: {}\n", path.display())),
        None => out.push_str("# config file: none\n"),
    }
    let rows: Vec<(String, String)> = cfg
        .keys
        .iter()
        .filter(|spec| spec.section.is_none())
        .map(|spec| {
            let (value, note) = value_of(cfg, spec.name);
            (
                format!("{} = {value}", spec.name),
                comment(spec, &cfg.origin(spec.name), note),
            )
        })
        .collect();
    push_rows(&mut out, rows);
    if let Some(rl) = &cfg.rate_limit {
        out.push_str(&rate_limit_table(rl));
    }
    for system in &cfg.systems {
        let section = system.name();
        out.push_str(&format!("\n[{section}]\n"));
        let values = system.values();
        let rows = cfg
            .keys
            .iter()
            .filter(|spec| spec.section == Some(section))
            .map(|spec| {
                let id = spec.id();
                let (value, note) = match values.iter().find(|(k, _)| k == spec.name) {
                    Some((_, value)) => (toml_of(value), None),
                    None => secret_value(cfg, spec),
                };
                (
                    format!("{} = {value}", spec.name),
                    comment(spec, &cfg.origin(&id), note),
                )
            })
            .collect();
        push_rows(&mut out, rows);
    }
    out
}

/// A section value as TOML: numbers and booleans bare, everything else a string; URL
/// passwords masked.
fn toml_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => value.to_string(),
        other => toml::Value::String(mask_url(&super::keys::text_of(other).unwrap_or_default()))
            .to_string(),
    }
}

/// A system secret or its `_file` key, masked.
fn secret_value(cfg: &Config, spec: &KeySpec) -> (String, Option<String>) {
    let s = |v: &str| toml::Value::String(v.to_owned()).to_string();
    let Some(secret) = cfg.system_secrets.iter().find(|secret| {
        Some(secret.system) == spec.section
            && (secret.spec.name == spec.name || secret.spec.file_key == spec.name)
    }) else {
        return (s(""), None);
    };
    if spec.name != secret.spec.name {
        let file = secret.file.as_ref().map(|p| p.display().to_string());
        return (s(&file.unwrap_or_default()), None);
    }
    match (&secret.value, &secret.file) {
        (Some(_), Some(_)) => (s("****"), Some(format!("read from {}_file", spec.name))),
        (Some(_), None) => (s("****"), None),
        (None, _) => (
            s(""),
            Some(format!(
                "unset: serve uses (or generates) {}",
                cfg.data_dir.join(secret.spec.file).display()
            )),
        ),
    }
}

fn comment(spec: &KeySpec, origin: &Origin, note: Option<String>) -> String {
    match (origin, &spec.default, note) {
        (_, _, Some(note)) => note,
        (Origin::Default, KeyDefault::Derived(how), None) => format!("default: {how}"),
        (Origin::Default, KeyDefault::Unset(what), None) => format!("default: unset, {what}"),
        (origin, _, None) => origin.to_string(),
    }
}

fn push_rows(out: &mut String, rows: Vec<(String, String)>) {
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (line, comment) in rows {
        out.push_str(&format!("{line:<width$}  # {comment}\n"));
    }
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
        "blobs_url" => match &cfg.blobs_url {
            Some(url) => (s(url), None),
            None => (
                s(""),
                Some(format!(
                    "unset: local files under {}",
                    cfg.data_dir.join("blobs").display()
                )),
            ),
        },
        "tls_ca_file" => (
            s(&cfg
                .tls_ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()),
            None,
        ),
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
        "jwt_secret" => match (&cfg.jwt_secret, &cfg.jwt_secret_file) {
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
                .jwt_secret_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()),
            None,
        ),
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
        "body_limit" => (
            s(&praxis_kit::text::format_size(cfg.body_limit as u64)),
            None,
        ),
        "request_timeout" => (
            s(&praxis_kit::text::format_duration(cfg.request_timeout)),
            None,
        ),
        "shutdown_grace" => (
            s(&praxis_kit::text::format_duration(cfg.shutdown_grace)),
            None,
        ),
        "log_format" => (s(&cfg.log_format.to_string()), None),
        "log_level" => (s(&cfg.log_level), None),
        "access_log" => (cfg.access_log.to_string(), None),
        "metrics" => (cfg.metrics.to_string(), None),
        "admin_listen" => match cfg.admin_listen {
            Some(addr) => (s(&addr.to_string()), None),
            None => (
                s(""),
                Some("unset: /metrics is served on listen".to_owned()),
            ),
        },
        "otel_endpoint" => match &cfg.otel_endpoint {
            Some(url) => (s(url.as_str()), None),
            None => (s(""), Some("unset: spans are not exported".to_owned())),
        },
        "prefix" => (s(&cfg.prefix), None),
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

    fn cfg(env: &[(&str, &str)], flags: &[(&str, &str)]) -> Config {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        load(&LoadOptions {
            env: &env,
            flags: flags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            config_flag: None,
            default_file: PathBuf::from("/nonexistent/praxis.toml"),
            systems: crate::systems::SYSTEMS,
        })
        .expect("config loads")
    }

    /// The line of `key` in `section` (`None`: the server's keys at the top).
    fn line<'a>(out: &'a str, section: Option<&str>, key: &str) -> &'a str {
        let start = match section {
            Some(name) => out
                .find(&format!("\n[{name}]\n"))
                .unwrap_or_else(|| panic!("no [{name}] in\n{out}")),
            None => 0,
        };
        out[start..]
            .lines()
            .skip(1)
            .take_while(|l| section.is_some() || !l.starts_with('['))
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no line for {key} in\n{out}"))
    }

    #[test]
    fn every_key_is_printed_with_its_origin() {
        let c = cfg(
            &[("PRAXIS_PREFIX", "envp"), ("PRAXIS_CACHE_TTL", "5m")],
            &[("listen", "0.0.0.0:9"), ("feed_timeline_cap", "900")],
        );
        let out = render(&c);
        for spec in c.keys.iter() {
            line(&out, spec.section, spec.name);
        }
        assert!(
            line(&out, None, "listen").ends_with("# flag --listen"),
            "{out}"
        );
        assert!(line(&out, None, "prefix").contains("\"envp\""), "{out}");
        assert!(
            line(&out, None, "prefix").ends_with("# env PRAXIS_PREFIX"),
            "{out}"
        );
        assert!(
            line(&out, None, "log_level").ends_with("# default"),
            "{out}"
        );
        assert!(line(&out, None, "body_limit").contains("\"2MiB\""), "{out}");
        assert!(line(&out, None, "only").contains("\"shortener\""), "{out}");
        let ttl = line(&out, Some("shortener"), "cache_ttl");
        assert!(ttl.starts_with("cache_ttl = \"5m\""), "{ttl}");
        assert!(ttl.ends_with("# env PRAXIS_CACHE_TTL"), "{ttl}");
        let cap = line(&out, Some("feed"), "timeline_cap");
        assert!(cap.starts_with("timeline_cap = 900"), "{cap}");
        assert!(cap.ends_with("# flag --feed-timeline-cap"), "{cap}");
        assert!(
            line(&out, Some("notify"), "sms_url")
                .ends_with("# default: unset, the sms channel is off"),
            "{out}"
        );
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
            line(&out, None, "jwt_secret").starts_with("jwt_secret = \"****\""),
            "{out}"
        );
        assert!(!out.contains("pgsecret"), "{out}");
        assert!(
            line(&out, None, "admin_key").starts_with("admin_key = \"****\""),
            "{out}"
        );
        assert!(
            line(&out, None, "admin_key").ends_with("# env PRAXIS_ADMIN_KEY"),
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
            line(&out, Some("notify"), "smtp_url")
                .starts_with("smtp_url = \"smtps://mailer:****@mail.example.com:465\""),
            "{out}"
        );
        assert!(
            line(&out, Some("notify"), "webhook_secret").starts_with("webhook_secret = \"****\""),
            "{out}"
        );
        assert!(
            line(&out, Some("notify"), "rate_limits").contains("\"smtp=10/1s\""),
            "{out}"
        );
    }

    #[test]
    fn output_parses_as_toml_with_one_table_per_system() {
        let c = cfg(&[], &[]);
        let out = render(&c);
        let table: toml::Table = toml::from_str(&out).expect("valid TOML");
        let server = c.keys.iter().filter(|k| k.section.is_none()).count();
        assert_eq!(table.len(), server + c.systems.len(), "{out}");
        for system in &c.systems {
            assert!(table[system.name()].is_table(), "{out}");
        }
    }
}

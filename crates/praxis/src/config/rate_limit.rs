//! The HTTP layer's rate-limit policies in the configuration: the `[rate_limit]` table of the
//! config file (tables do not fit the flat `PRAXIS_*` scheme), or a separate TOML file holding
//! that table named by `rate_limit_file` (which has an environment variable and a flag);
//! validated at start by `praxis_http::ratelimit::RateLimits::new`, errors naming the file, the
//! policy and the field. (The decision service's keys are its own `[ratelimit]` section.)

use std::path::{Path, PathBuf};

use praxis_http::ratelimit::{RateLimitConfig, RateLimits};

use super::layers::{Layers, Origin};
use super::{ConfigError, Reader};

/// The key of the table in the config file.
pub const TABLE: &str = super::layers::RATE_LIMIT_TABLE;

/// The HTTP layer's validated policies and where they came from.
#[derive(Debug, Clone)]
pub struct HttpRateLimit {
    /// As written (printed by `praxis config`).
    pub config: RateLimitConfig,
    /// Validated, for `HttpOptions::rate_limit`.
    pub limits: RateLimits,
    /// The file they were read from.
    pub source: PathBuf,
}

/// Reads `rate_limit_file` or the `[rate_limit]` table (not both). `None` when something is
/// invalid (the errors are recorded).
pub(super) fn read(r: &mut Reader<'_>, layers: &Layers) -> Option<Option<HttpRateLimit>> {
    let file = r.optional("rate_limit_file", |t| Ok(PathBuf::from(t.trim())));
    match (file?, &layers.rate_limit) {
        (Some(path), Some(_)) => {
            let at = r.origin("rate_limit_file").locate("rate_limit_file");
            let table = layers
                .file
                .as_ref()
                .map_or_else(String::new, |f| format!(" in {}", f.display()));
            r.errors.push(ConfigError::new(
                at,
                format!(
                    "is set to {} and so is the [rate_limit] table{table}; set only one of them",
                    path.display()
                ),
            ));
            None
        }
        (Some(path), None) => {
            let origin = r.origin("rate_limit_file");
            let read = from_file(&path);
            Some(Some(r.check("rate_limit_file", &origin, read)?))
        }
        (None, Some(table)) => {
            let source = layers.file.clone().unwrap_or_default();
            let origin = Origin::File(source.clone());
            r.origins.insert(TABLE.to_owned(), origin.clone());
            let parsed = from_table(table.clone(), &source).map_err(|m| {
                // The locator already names the file.
                m.trim_start_matches(&format!("{}: ", source.display()))
                    .to_owned()
            });
            Some(Some(r.check(TABLE, &origin, parsed)?))
        }
        (None, None) => Some(None),
    }
}

/// Reads a `rate_limit_file`: a TOML file whose only top-level key is the `[rate_limit]`
/// table. Errors start with the file's path.
pub fn from_file(path: &Path) -> Result<HttpRateLimit, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| {
        format!(
            "{}: is not valid TOML: {}",
            path.display(),
            e.to_string().trim_end()
        )
    })?;
    let Some(value) = table.remove(TABLE) else {
        return Err(format!(
            "{}: has no [rate_limit] table (expected the same table as in praxis.toml)",
            path.display()
        ));
    };
    if let Some(other) = table.keys().next() {
        return Err(format!(
            "{}: unknown key {other:?} (the file holds only the [rate_limit] table)",
            path.display()
        ));
    }
    from_table(value, path)
}

/// Deserializes and validates the `[rate_limit]` table read from `source`. Errors start with
/// the file's path and name the policy and the field.
pub fn from_table(value: toml::Value, source: &Path) -> Result<HttpRateLimit, String> {
    let names = policy_names(&value);
    let config: RateLimitConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        format!(
            "{}: {}: {}",
            source.display(),
            with_policy_name(&path, &names),
            e.inner()
        )
    })?;
    let limits = RateLimits::new(&config).map_err(|e| {
        format!(
            "{}: {}: {}: {}",
            source.display(),
            e.location,
            e.field,
            e.message
        )
    })?;
    Ok(HttpRateLimit {
        config,
        limits,
        source: source.to_path_buf(),
    })
}

/// The `name` of each entry of `policies`, as written.
fn policy_names(value: &toml::Value) -> Vec<Option<String>> {
    value
        .get("policies")
        .and_then(toml::Value::as_array)
        .map(|policies| {
            policies
                .iter()
                .map(|p| p.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `policies[1].limit` -> `policy "api" (policies[1]).limit` when the policy has a name.
fn with_policy_name(path: &str, names: &[Option<String>]) -> String {
    let Some(rest) = path.strip_prefix("policies[") else {
        return path.to_owned();
    };
    let Some((index, tail)) = rest.split_once(']') else {
        return path.to_owned();
    };
    match index.parse::<usize>().ok().and_then(|i| names.get(i)) {
        Some(Some(name)) => format!("policy {name:?} (policies[{index}]){tail}"),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Value {
        let mut t: toml::Table = toml::from_str(text).expect("toml");
        t.remove(TABLE).expect("rate_limit table")
    }

    #[test]
    fn tables_are_validated_naming_file_policy_and_field() {
        let src = Path::new("/etc/praxis.toml");
        let ok = from_table(
            table(
                "[[rate_limit.policies]]\nname = \"login\"\nmatch = { route = \"/x\" }\nkey = \"ip\"\nlimit = 5\nperiod = \"1m\"\n",
            ),
            src,
        )
        .expect("valid");
        assert_eq!(ok.limits.policy_names().collect::<Vec<_>>(), ["login"]);

        let e = from_table(
            table(
                "[[rate_limit.policies]]\nname = \"login\"\nkey = \"ip\"\nlimit = 5\nperiod = \"1x\"\n",
            ),
            src,
        )
        .expect_err("bad period");
        assert!(
            e.starts_with("/etc/praxis.toml: policy \"login\": period: \"1x\" is not a period"),
            "{e}"
        );

        let e = from_table(
            table(
                "[[rate_limit.policies]]\nname = \"a\"\nkey = \"ip\"\nlimit = 5\nperiod = \"1m\"\n[[rate_limit.policies]]\nname = \"api\"\nkey = \"ip\"\nlimit = \"many\"\nperiod = \"1m\"\n",
            ),
            src,
        )
        .expect_err("bad type");
        assert!(
            e.starts_with("/etc/praxis.toml: policy \"api\" (policies[1]).limit: invalid type"),
            "{e}"
        );

        let e = from_table(table("[rate_limit]\ntrusted = []\n"), src).expect_err("unknown");
        assert!(e.contains("unknown field `trusted`"), "{e}");
    }

    #[test]
    fn a_rate_limit_file_holds_the_table_only() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("limits.toml");
        std::fs::write(
            &path,
            "[rate_limit]\ntrusted_proxies = [\"10.0.0.0/8\"]\n[[rate_limit.policies]]\nname = \"all\"\nkey = \"global\"\nlimit = 100\nperiod = \"1s\"\n",
        )
        .expect("write");
        let ok = from_file(&path).expect("loads");
        assert_eq!(ok.config.trusted_proxies, vec!["10.0.0.0/8".to_owned()]);
        assert_eq!(ok.source, path);

        std::fs::write(&path, "listen = \"x\"\n[rate_limit]\n").expect("write");
        let e = from_file(&path).expect_err("extra key");
        assert!(e.contains("unknown key \"listen\""), "{e}");
        std::fs::write(&path, "x = 1\n").expect("write");
        assert!(
            from_file(&path)
                .expect_err("no table")
                .contains("no [rate_limit] table")
        );
        let e = from_file(&dir.path().join("missing.toml")).expect_err("missing");
        assert!(e.starts_with("cannot read"), "{e}");
    }
}

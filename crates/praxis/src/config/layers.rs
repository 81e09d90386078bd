//! Gathers the raw text of every key from its four layers (defaults < `praxis.toml` < `PRAXIS_*`
//! environment < flags) and remembers where the winning value came from.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::ConfigError;
use super::keys::{KeySpec, KeyTable};
use super::source::EnvSource;

/// The key of the HTTP rate-limit policies' table in the config file (`[rate_limit]`): kept
/// whole for `super::rate_limit`, since tables have no environment variable nor flag.
pub const RATE_LIMIT_TABLE: &str = "rate_limit";

/// Where a key's effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The key's built-in default.
    Default,
    /// The config file at this path.
    File(PathBuf),
    /// The environment variable of that name.
    Env(String),
    /// The command-line flag of that name.
    Flag(String),
}

impl Origin {
    /// How an error names a value of `key` (its identity, `listen` or `feed.timeline_cap`)
    /// from this origin: `PRAXIS_LISTEN`, `--listen`, `listen in /etc/praxis.toml`,
    /// `listen (default)`.
    pub fn locate(&self, key: &str) -> String {
        match self {
            Origin::Default => format!("{key} (default)"),
            Origin::File(path) => format!("{key} in {}", path.display()),
            Origin::Env(var) => var.clone(),
            Origin::Flag(flag) => flag.clone(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// The winning raw value of one key. `text == None` means "explicitly unset" (an empty value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    /// The value as written; `None` when it was set to the empty string.
    pub text: Option<String>,
    /// Where it came from.
    pub origin: Origin,
}

/// Which config file to read and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChoice {
    /// A path named by `--config` or `PRAXIS_CONFIG`: it must exist.
    Required(PathBuf, Origin),
    /// The default `./praxis.toml`: read when present.
    IfPresent(PathBuf),
}

/// The raw values of every set key, plus the config file that was read.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    values: HashMap<String, Raw>,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    /// The `[rate_limit]` table of the config file, if any (tables have no environment
    /// variable nor flag; see `super::rate_limit`).
    pub rate_limit: Option<toml::Value>,
}

impl Layers {
    /// The winning raw value of the key with identity `id`, `None` when no layer set it.
    pub fn get(&self, id: &str) -> Option<&Raw> {
        self.values.get(id)
    }

    fn set(&mut self, key: &KeySpec, text: String, origin: Origin) {
        let text = (!text.trim().is_empty()).then_some(text);
        self.values.insert(key.id(), Raw { text, origin });
    }
}

/// Decides which config file to read: `--config` (given as `flag`), else `PRAXIS_CONFIG`, else
/// `default_path` if it exists.
pub fn choose_file(
    flag: Option<&Path>,
    env: &dyn EnvSource,
    default_path: &Path,
) -> Result<FileChoice, ConfigError> {
    if let Some(path) = flag {
        return Ok(FileChoice::Required(
            path.to_path_buf(),
            Origin::Flag("--config".into()),
        ));
    }
    match env.get("PRAXIS_CONFIG") {
        Ok(Some(path)) if !path.trim().is_empty() => Ok(FileChoice::Required(
            PathBuf::from(path),
            Origin::Env("PRAXIS_CONFIG".into()),
        )),
        Ok(_) => Ok(FileChoice::IfPresent(default_path.to_path_buf())),
        Err(msg) => Err(ConfigError::new("PRAXIS_CONFIG", msg)),
    }
}

/// Reads every layer. Collects every problem rather than stopping at the first. `flags` are
/// (flat name, text) pairs, the flat name being how the flag was spelled (`cache_capacity` for
/// `--cache-capacity`).
pub fn collect(
    file: &FileChoice,
    env: &dyn EnvSource,
    flags: &[(String, String)],
    table: &KeyTable,
) -> Result<Layers, Vec<ConfigError>> {
    let mut layers = Layers::default();
    let mut errors = Vec::new();

    if let Err(mut errs) = read_file(file, &mut layers, table) {
        errors.append(&mut errs);
    }

    for key in table.iter() {
        for var in key.env_vars() {
            match env.get(&var) {
                Ok(Some(text)) => layers.set(key, text, Origin::Env(var)),
                Ok(None) => {}
                Err(msg) => errors.push(ConfigError::new(var, msg)),
            }
        }
    }

    for (name, text) in flags {
        match table.by_flat_name(name) {
            Some(key) if !key.secret => {
                let flag = format!("--{}", name.replace('_', "-"));
                layers.set(key, text.clone(), Origin::Flag(flag));
            }
            _ => errors.push(ConfigError::new(
                format!("--{}", name.replace('_', "-")),
                "is not a configuration flag".to_owned(),
            )),
        }
    }

    if errors.is_empty() {
        Ok(layers)
    } else {
        Err(errors)
    }
}

fn read_file(
    choice: &FileChoice,
    layers: &mut Layers,
    table: &KeyTable,
) -> Result<(), Vec<ConfigError>> {
    let path = match choice {
        FileChoice::Required(path, origin) => {
            if !path.is_file() {
                return Err(vec![ConfigError::new(
                    origin.locate("config"),
                    format!("config file {} does not exist", path.display()),
                )]);
            }
            path
        }
        FileChoice::IfPresent(path) => {
            if !path.is_file() {
                return Ok(());
            }
            path
        }
    };
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.clone());
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError::new(
            shown.display().to_string(),
            format!("cannot read config file: {e}"),
        )]
    })?;
    let toml_table: toml::Table = toml::from_str(&text).map_err(|e| {
        vec![ConfigError::new(
            shown.display().to_string(),
            format!("is not valid TOML: {}", e.to_string().trim_end()),
        )]
    })?;
    layers.file = Some(shown.clone());

    let mut errors = Vec::new();
    let origin = Origin::File(shown.clone());
    for (name, value) in toml_table {
        if name == RATE_LIMIT_TABLE {
            if value.is_table() {
                layers.rate_limit = Some(value);
            } else {
                errors.push(ConfigError::new(
                    origin.locate(&name),
                    "expected a table ([rate_limit] with policies, trusted_proxies, plans)"
                        .to_owned(),
                ));
            }
            continue;
        }
        if let toml::Value::Table(section) = &value
            && table.is_section(&name)
        {
            for (key_name, value) in section {
                match table.in_section(&name, key_name) {
                    Some(key) => set_from_file(layers, &mut errors, key, value, &origin),
                    None => errors.push(ConfigError::new(
                        shown.display().to_string(),
                        format!(
                            "unknown key {key_name:?} in [{name}] (its keys: {})",
                            section_keys(table, &name)
                        ),
                    )),
                }
            }
            continue;
        }
        match table.by_flat_name(&name) {
            Some(key) => set_from_file(layers, &mut errors, key, &value, &origin),
            None => errors.push(ConfigError::new(
                shown.display().to_string(),
                format!(
                    "unknown key {name:?} (known keys: {}, one [section] per system, and the [rate_limit] table)",
                    table.names()
                ),
            )),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Records the value of `key` read from the file, or the reason it cannot be.
fn set_from_file(
    layers: &mut Layers,
    errors: &mut Vec<ConfigError>,
    key: &KeySpec,
    value: &toml::Value,
    origin: &Origin,
) {
    if key.secret {
        errors.push(ConfigError::new(
            origin.locate(&key.id()),
            format!(
                "secrets are not read from the config file; set {} or {}_file instead",
                key.env_var(),
                key.name
            ),
        ));
        return;
    }
    match toml_text(value) {
        Ok(text) => layers.set(key, text, origin.clone()),
        Err(found) => errors.push(ConfigError::new(
            origin.locate(&key.id()),
            format!("expected a string, number or boolean, found {found}"),
        )),
    }
}

/// The keys of section `name`, comma-separated.
fn section_keys(table: &KeyTable, name: &str) -> String {
    table
        .iter()
        .filter(|k| k.section == Some(name))
        .map(|k| k.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text of a scalar TOML value (floats included; arrays of scalars become comma-separated lists); `Err` names
/// the type when it is not one.
fn toml_text(value: &toml::Value) -> Result<String, &'static str> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Datetime(_) => Err("a datetime"),
        toml::Value::Table(_) => Err("a table"),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::Array(_) | toml::Value::Table(_) => Err("a nested array"),
                other => toml_text(other),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|parts| parts.join(",")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> KeyTable {
        KeyTable::new(crate::systems::SYSTEMS)
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("praxis.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "listen = \"1.1.1.1:1\"\ndata_dir = \"/f\"\nprefix = \"p\"\n",
        );
        let env = env(&[("PRAXIS_LISTEN", "2.2.2.2:2"), ("PRAXIS_DATA_DIR", "/e")]);
        let flags = vec![("listen".to_owned(), "3.3.3.3:3".to_owned())];
        let layers =
            collect(&FileChoice::IfPresent(path.clone()), &env, &flags, &table()).expect("ok");
        let listen = layers.get("listen").expect("set");
        assert_eq!(listen.text.as_deref(), Some("3.3.3.3:3"));
        assert_eq!(listen.origin, Origin::Flag("--listen".into()));
        let data_dir = layers.get("data_dir").expect("set");
        assert_eq!(data_dir.text.as_deref(), Some("/e"));
        assert_eq!(data_dir.origin, Origin::Env("PRAXIS_DATA_DIR".into()));
        let prefix = layers.get("prefix").expect("set");
        assert!(matches!(prefix.origin, Origin::File(_)));
        assert!(layers.get("redis_url").is_none());
        assert!(layers.file.is_some());
    }

    #[test]
    fn unknown_file_keys_are_errors_naming_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "lisen = \"1.1.1.1:1\"\n");
        let errs =
            collect(&FileChoice::IfPresent(path), &env(&[]), &[], &table()).expect_err("unknown");
        let msg = errs[0].to_string();
        assert!(msg.contains("unknown key \"lisen\""), "{msg}");
        assert!(msg.contains("praxis.toml"), "{msg}");
    }

    #[test]
    fn secrets_are_refused_in_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "admin_key = \"0123456789abcdef\"\n");
        let errs =
            collect(&FileChoice::IfPresent(path), &env(&[]), &[], &table()).expect_err("secret");
        let msg = errs[0].to_string();
        assert!(msg.contains("admin_key in"), "{msg}");
        assert!(msg.contains("PRAXIS_ADMIN_KEY"), "{msg}");
        assert!(!msg.contains("0123456789abcdef"), "{msg}");
    }

    #[test]
    fn non_scalar_values_and_bad_toml_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "listen = 1979-05-27\n");
        let errs =
            collect(&FileChoice::IfPresent(path), &env(&[]), &[], &table()).expect_err("datetime");
        assert!(errs[0].to_string().contains("found a datetime"));

        let path = write(&dir, "listen = \n");
        let errs =
            collect(&FileChoice::IfPresent(path), &env(&[]), &[], &table()).expect_err("toml");
        assert!(errs[0].to_string().contains("is not valid TOML"));
    }

    #[test]
    fn arrays_become_lists_and_scalars_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "only = [\"shortener\"]\nbody_limit = 4096\nmetrics = false\n",
        );
        let layers = collect(&FileChoice::IfPresent(path), &env(&[]), &[], &table()).expect("ok");
        let text = |k: &str| layers.get(k).and_then(|r| r.text.clone());
        assert_eq!(text("only").as_deref(), Some("shortener"));
        assert_eq!(text("body_limit").as_deref(), Some("4096"));
        assert_eq!(text("metrics").as_deref(), Some("false"));
    }

    #[test]
    fn missing_default_file_is_fine_but_a_named_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.toml");
        let layers = collect(
            &FileChoice::IfPresent(missing.clone()),
            &env(&[]),
            &[],
            &table(),
        )
        .expect("absent ok");
        assert!(layers.file.is_none());
        let choice = choose_file(None, &env(&[("PRAXIS_CONFIG", "/nope/x.toml")]), &missing)
            .expect("choice");
        let errs = collect(&choice, &env(&[]), &[], &table()).expect_err("must exist");
        assert!(
            errs[0].to_string().starts_with("PRAXIS_CONFIG: "),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn empty_values_mean_explicitly_unset() {
        let layers = collect(
            &FileChoice::IfPresent(PathBuf::from("/nonexistent/praxis.toml")),
            &env(&[("PRAXIS_REDIS_URL", "")]),
            &[],
            &table(),
        )
        .expect("ok");
        let raw = layers.get("redis_url").expect("set");
        assert_eq!(raw.text, None);
    }

    #[test]
    fn secret_flags_do_not_exist() {
        let errs = collect(
            &FileChoice::IfPresent(PathBuf::from("/nonexistent/praxis.toml")),
            &env(&[]),
            &[("admin_key".to_owned(), "x".to_owned())],
            &table(),
        )
        .expect_err("secret flag");
        assert!(errs[0].to_string().contains("--admin-key"));
    }

    #[test]
    fn sections_flat_names_and_legacy_names_reach_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "cache_ttl = \"1m\"\nfeed_timeline_cap = 900\n[notify]\nlease = \"90s\"\n",
        );
        let env = env(&[
            ("PRAXIS_CACHE_CAPACITY", "5"),
            ("PRAXIS_FEED_FANOUT_BATCH", "7"),
        ]);
        let layers = collect(&FileChoice::IfPresent(path), &env, &[], &table()).expect("ok");
        let text = |k: &str| layers.get(k).and_then(|r| r.text.clone());
        assert_eq!(text("shortener.cache_ttl").as_deref(), Some("1m"));
        assert_eq!(text("feed.timeline_cap").as_deref(), Some("900"));
        assert_eq!(text("notify.lease").as_deref(), Some("90s"));
        assert_eq!(text("shortener.cache_capacity").as_deref(), Some("5"));
        assert_eq!(
            layers
                .get("shortener.cache_capacity")
                .map(|r| r.origin.clone()),
            Some(Origin::Env("PRAXIS_CACHE_CAPACITY".into()))
        );
        assert_eq!(text("feed.fanout_batch").as_deref(), Some("7"));
    }

    #[test]
    fn the_section_name_beats_the_legacy_name() {
        let env = env(&[
            ("PRAXIS_CACHE_CAPACITY", "5"),
            ("PRAXIS_SHORTENER_CACHE_CAPACITY", "6"),
        ]);
        let layers = collect(
            &FileChoice::IfPresent(PathBuf::from("/nonexistent/praxis.toml")),
            &env,
            &[],
            &table(),
        )
        .expect("ok");
        let raw = layers.get("shortener.cache_capacity").expect("set");
        assert_eq!(raw.text.as_deref(), Some("6"));
    }

    #[test]
    fn unknown_keys_in_a_section_name_the_section() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "[feed]\ntimeline = 3\n");
        let errs =
            collect(&FileChoice::IfPresent(path), &env(&[]), &[], &table()).expect_err("unknown");
        let msg = errs[0].to_string();
        assert!(msg.contains("unknown key \"timeline\" in [feed]"), "{msg}");
        assert!(msg.contains("timeline_cap"), "{msg}");
    }
}

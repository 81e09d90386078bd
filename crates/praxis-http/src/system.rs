//! A system as a plug-in. Each system crate implements [`System`] once: its name, its config
//! section (a serde struct with defaults and validation, plus one documented [`Key`] per
//! field), its migrations, the secrets it needs, and how it starts (routes, bus consumers,
//! background tasks). The binary holds one list of `&dyn Plugin` and nothing else per system:
//! it reads each section from the layered configuration, applies every migration once, resolves
//! the secrets, starts the selected systems and serves their routes.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use praxis_infra::{InfraError, MigrationSet, Platform};
use praxis_kit::text::{TextError, from_texts};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{AuthSettings, Authenticator};
use crate::client_ip::Cidr;
use crate::service::Service;

/// One documented key of a system's config section (`[feed] celebrity_threshold = 3`). The key
/// is also read as the flat `<system>_<key>` (file, `PRAXIS_<SYSTEM>_<KEY>`, `--<system>-<key>`)
/// and, when it had one before sections existed, under its `legacy` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The field's name in the section.
    pub name: &'static str,
    /// One line: what it does (shown by `praxis config` and `--help`).
    pub doc: &'static str,
    /// The flat name the key had before sections, when it was not `<system>_<key>`.
    pub legacy: Option<&'static str>,
    /// What an unset value means, for keys without a value by default.
    pub unset: Option<&'static str>,
}

impl Key {
    /// A key with its one-line documentation.
    pub const fn new(name: &'static str, doc: &'static str) -> Self {
        Self {
            name,
            doc,
            legacy: None,
            unset: None,
        }
    }

    /// The flat name this key had before sections (`cache_capacity` for the shortener's).
    pub const fn legacy(self, name: &'static str) -> Self {
        Self {
            legacy: Some(name),
            ..self
        }
    }

    /// What leaving the key unset means (`"the sms channel is off"`).
    pub const fn unset(self, meaning: &'static str) -> Self {
        Self {
            unset: Some(meaning),
            ..self
        }
    }
}

/// A secret a system needs. It is never read from the config file nor a flag: the binary takes
/// `PRAXIS_<SYSTEM>_<NAME>` or the file named by `<name>_file`, and otherwise generates one into
/// `<data_dir>/<file>` (mode 0600) so that it survives restarts.
#[derive(Debug, Clone, Copy)]
pub struct SecretSpec {
    /// Its key in the system's section (`webhook_secret`).
    pub name: &'static str,
    /// The key naming a file that holds it: `<name>_file` (`webhook_secret_file`).
    pub file_key: &'static str,
    /// One line: what it signs or protects, and its format.
    pub doc: &'static str,
    /// The file under `data_dir` a generated secret is kept in.
    pub file: &'static str,
    /// Makes a new secret.
    pub generate: fn() -> String,
    /// Checks a configured (or stored) secret and returns its canonical form; the message says
    /// what is expected, never the value.
    pub read: fn(&str) -> Result<String, String>,
}

/// A problem that involves a key of a section, found by [`Settings::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The key whose value is refused.
    pub key: &'static str,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl SettingError {
    /// An error about `key`.
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}

/// Collects the problems of a section in [`Settings::validate`], each naming its key.
#[derive(Debug, Default)]
pub struct Checks(Vec<SettingError>);

impl Checks {
    /// No problem yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` against `key` unless `ok`.
    pub fn require(&mut self, ok: bool, key: &'static str, message: impl Into<String>) {
        if !ok {
            self.fail(key, message);
        }
    }

    /// Records a problem of `key`.
    pub fn fail(&mut self, key: &'static str, message: impl Into<String>) {
        self.0.push(SettingError::new(key, message));
    }

    /// Records problems found by a helper.
    pub fn extend(&mut self, errors: impl IntoIterator<Item = SettingError>) {
        self.0.extend(errors);
    }

    /// `Ok` when nothing was recorded, every problem otherwise.
    pub fn finish(self) -> Result<(), Vec<SettingError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

/// The problems of a section as one configuration error naming the system and each key.
pub fn invalid_settings(system: &str, errors: &[SettingError]) -> InfraError {
    let each: Vec<String> = errors
        .iter()
        .map(|e| format!("{system}.{}: {}", e.key, e.message))
        .collect();
    InfraError::Config(each.join("; "))
}

/// Applies migration sets in order (each set once, by name), as the binary does before it
/// starts any system; for tests and programs that start a system without the binary.
pub async fn apply_migrations(
    platform: &Platform,
    sets: &[&'static MigrationSet],
) -> Result<(), InfraError> {
    let mut done: Vec<&str> = Vec::new();
    for set in sets {
        if !done.contains(&set.system) {
            platform.db.migrate(set).await?;
            done.push(set.system);
        }
    }
    Ok(())
}

/// A system's config section: read from text per key (see [`praxis_kit::text`]), with the
/// struct's `Default` for every key that is not set (`#[serde(default)]`).
pub trait Settings:
    Serialize + DeserializeOwned + Default + Clone + fmt::Debug + Send + Sync + 'static
{
    /// Checks ranges and keys that depend on each other; every problem names its key.
    fn validate(&self) -> Result<(), Vec<SettingError>> {
        Ok(())
    }
}

/// What the binary hands a system when it starts it.
#[derive(Clone)]
pub struct StartContext {
    /// Every adapter (database, bus, caches, broadcaster, limiter, tasks, shutdown).
    pub platform: Platform,
    /// Public base URL of this deployment (short links, unsubscribe links).
    pub base_url: url::Url,
    /// Namespace of Redis keys and NATS subjects (`prefix`).
    pub prefix: String,
    /// How callers are authenticated; the authenticator is set once the system that
    /// authenticates (identity) has started.
    pub auth: AuthSettings,
    /// The server's signing secret: HS256 access tokens, and keys derived from it (notify's
    /// subscriber tokens). Shared by every process of a deployment.
    pub signing_secret: Arc<str>,
    /// Proxies whose `X-Forwarded-For` is believed (`[rate_limit] trusted_proxies`).
    pub trusted_proxies: Vec<Cidr>,
    /// This system's own secrets, by [`SecretSpec::name`].
    pub secrets: HashMap<&'static str, String>,
}

impl fmt::Debug for StartContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartContext")
            .field("base_url", &self.base_url.as_str())
            .field("prefix", &self.prefix)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl StartContext {
    /// The secret `name` that the system declared in [`System::secrets`].
    pub fn secret(&self, name: &str) -> Result<&str, InfraError> {
        self.secrets.get(name).map(String::as_str).ok_or_else(|| {
            InfraError::Config(format!(
                "secret {name} was not resolved: declare it in the system's secrets()"
            ))
        })
    }
}

/// A started system.
pub struct Started {
    /// Its routes and their OpenAPI description.
    pub service: Service,
    /// How it resolves bearer tokens, for a system that authenticates callers (identity).
    pub authenticator: Option<Arc<dyn Authenticator>>,
}

impl From<Service> for Started {
    fn from(service: Service) -> Self {
        Self {
            service,
            authenticator: None,
        }
    }
}

impl fmt::Debug for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Started")
            .field("service", &self.service)
            .field("authenticator", &self.authenticator.is_some())
            .finish()
    }
}

/// What [`System::start`] returns.
pub type StartFuture<'a> = Pin<Box<dyn Future<Output = Result<Started, InfraError>> + Send + 'a>>;

/// A system: one crate, plugged into the binary with one line.
pub trait System: Send + Sync + 'static {
    /// Its config section.
    type Settings: Settings;

    /// Its name: `--only`, the `[name]` section of the config file, logs.
    fn name(&self) -> &'static str;

    /// One documented key per field of [`System::Settings`] (a test checks they match).
    fn keys(&self) -> &'static [Key];

    /// Every migration set it needs, shared ones included (the idempotency table); the binary
    /// applies each set once per start, before any system starts.
    fn migrations(&self) -> &'static [&'static MigrationSet];

    /// The secrets it needs, resolved by the binary into [`StartContext::secrets`].
    fn secrets(&self) -> &'static [SecretSpec] {
        &[]
    }

    /// Whether it authenticates callers for every system ([`Started::authenticator`]). Such a
    /// system starts in every process, before the others; its routes are served only where it
    /// is selected.
    fn authenticates(&self) -> bool {
        false
    }

    /// Every metric family it records, with its help text (`# HELP` on `/metrics`).
    fn metrics(&self) -> &'static [praxis_infra::MetricDoc] {
        &[]
    }

    /// Starts its workers and consumers and returns its routes. Migrations have been applied.
    fn start<'a>(&'a self, settings: Self::Settings, ctx: &'a StartContext) -> StartFuture<'a>;
}

/// The object-safe face of a [`System`], for the binary's list (`&dyn Plugin`); every
/// `System` is one.
pub trait Plugin: Send + Sync {
    /// See [`System::name`].
    fn name(&self) -> &'static str;
    /// See [`System::keys`].
    fn keys(&self) -> &'static [Key];
    /// See [`System::migrations`].
    fn migrations(&self) -> &'static [&'static MigrationSet];
    /// See [`System::secrets`].
    fn secrets(&self) -> &'static [SecretSpec];
    /// See [`System::authenticates`].
    fn authenticates(&self) -> bool;
    /// See [`System::metrics`].
    fn metrics(&self) -> &'static [praxis_infra::MetricDoc];
    /// The default value of every key (`Null`: unset by default), as serde sees the section.
    fn defaults(&self) -> Vec<(String, serde_json::Value)>;
    /// Reads the section from the text of the keys that are set (`None`: set empty) and
    /// validates it. Reports every key that is wrong.
    fn configure(
        &'static self,
        values: &[(&str, Option<&str>)],
    ) -> Result<Box<dyn Configured>, Vec<TextError>>;
}

/// A system with its section read: ready to show and to start.
pub trait Configured: Send + Sync + fmt::Debug {
    /// The system's name.
    fn name(&self) -> &'static str;
    /// The effective value of every key (`Null`: unset), as serde sees the section.
    fn values(&self) -> Vec<(String, serde_json::Value)>;
    /// Starts the system with its section.
    fn start<'a>(&'a self, ctx: &'a StartContext) -> StartFuture<'a>;
}

impl<S: System> Plugin for S {
    fn name(&self) -> &'static str {
        System::name(self)
    }

    fn keys(&self) -> &'static [Key] {
        System::keys(self)
    }

    fn migrations(&self) -> &'static [&'static MigrationSet] {
        System::migrations(self)
    }

    fn secrets(&self) -> &'static [SecretSpec] {
        System::secrets(self)
    }

    fn authenticates(&self) -> bool {
        System::authenticates(self)
    }

    fn metrics(&self) -> &'static [praxis_infra::MetricDoc] {
        System::metrics(self)
    }

    fn defaults(&self) -> Vec<(String, serde_json::Value)> {
        fields_of(&S::Settings::default())
    }

    fn configure(
        &'static self,
        values: &[(&str, Option<&str>)],
    ) -> Result<Box<dyn Configured>, Vec<TextError>> {
        let settings = match from_texts::<S::Settings>(values.iter().copied()) {
            Ok(settings) => settings,
            Err(first) => {
                // Each key alone, so that every wrong key is reported at once.
                let mut errors: Vec<TextError> = values
                    .iter()
                    .filter_map(|pair| from_texts::<S::Settings>([*pair]).err())
                    .collect();
                if errors.is_empty() {
                    errors.push(first);
                }
                return Err(errors);
            }
        };
        settings.validate().map_err(|errors| {
            errors
                .into_iter()
                .map(|e| TextError {
                    key: Some(e.key.to_owned()),
                    message: e.message,
                })
                .collect::<Vec<_>>()
        })?;
        Ok(Box::new(WithSettings {
            system: self,
            settings,
        }))
    }
}

/// A system and its section.
struct WithSettings<S: System> {
    system: &'static S,
    settings: S::Settings,
}

impl<S: System> fmt::Debug for WithSettings<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Configured")
            .field("system", &System::name(self.system))
            .field("settings", &self.settings)
            .finish()
    }
}

impl<S: System> Configured for WithSettings<S> {
    fn name(&self) -> &'static str {
        System::name(self.system)
    }

    fn values(&self) -> Vec<(String, serde_json::Value)> {
        fields_of(&self.settings)
    }

    fn start<'a>(&'a self, ctx: &'a StartContext) -> StartFuture<'a> {
        self.system.start(self.settings.clone(), ctx)
    }
}

/// Every field of a settings struct with its value (fields with `with` helpers are text).
fn fields_of<T: Serialize>(settings: &T) -> Vec<(String, serde_json::Value)> {
    match serde_json::to_value(settings) {
        Ok(serde_json::Value::Object(fields)) => fields.into_iter().collect(),
        _ => Vec::new(),
    }
}

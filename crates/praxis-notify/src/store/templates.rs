//! Template versions: checked when created, compiled once per `(name, version)` and kept in a
//! small in-process cache (versions are immutable, so a cached version is never stale).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use praxis_http::FieldError;
use praxis_infra::InfraError;
use serde_json::Value;
use sqlx::AnyConnection;

use crate::domain::channel::Channel;
use crate::domain::model::TemplateRecord;
use crate::domain::template::{CompiledTemplate, TemplateSource, compile};
use crate::store::Store;

/// Compiled versions kept in memory; the cache is emptied when it grows past this.
const CACHE_CAPACITY: usize = 1024;

/// One version of a template, compiled.
#[derive(Debug, Clone)]
pub struct TemplateVersion {
    /// Template name.
    pub name: String,
    /// Version.
    pub version: i64,
    /// The sources, per channel.
    pub sources: BTreeMap<Channel, TemplateSource>,
    /// The compiled parts, per channel.
    pub compiled: BTreeMap<Channel, CompiledTemplate>,
    /// Example data, if given at creation.
    pub example_data: Option<Value>,
    /// Who created the version.
    pub created_by: String,
    /// When, unix ms.
    pub created_at: i64,
}

impl TemplateVersion {
    /// The variables every channel's part reads, sorted, without duplicates.
    pub fn variables(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .compiled
            .values()
            .flat_map(CompiledTemplate::variables)
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Per-channel sources and their compiled parts.
pub type CompiledSources = (
    BTreeMap<Channel, TemplateSource>,
    BTreeMap<Channel, CompiledTemplate>,
);

/// Compiled versions by `(name, version)`.
type Cache = HashMap<(String, i64), Arc<TemplateVersion>>;

/// Parses and compiles per-channel sources. Field errors name `<prefix><channel>` for an
/// unknown channel and `<prefix><channel>.<part>` with the line and column for a template that
/// does not parse.
pub fn compile_sources(
    name: &str,
    sources: &Value,
    prefix: &str,
) -> Result<CompiledSources, Vec<FieldError>> {
    let Some(map) = sources.as_object() else {
        return Err(vec![FieldError::new(
            prefix.trim_end_matches('.'),
            "must be an object of channel parts, e.g. {\"email\": {\"subject\": \"..\", \"text\": \"..\"}}",
        )]);
    };
    if map.is_empty() {
        return Err(vec![FieldError::new(
            prefix.trim_end_matches('.'),
            "must have a part for at least one channel (email, webhook, sms, push, in_app)",
        )]);
    }
    let mut errors = Vec::new();
    let mut parsed = BTreeMap::new();
    let mut compiled = BTreeMap::new();
    for (key, value) in map {
        let field = format!("{prefix}{key}");
        let Some(channel) = Channel::parse(key) else {
            errors.push(FieldError::new(
                field,
                "is not a channel (expected email, webhook, sms, push or in_app)",
            ));
            continue;
        };
        let source: TemplateSource = match serde_json::from_value(value.clone()) {
            Ok(s) => s,
            Err(e) => {
                errors.push(FieldError::new(
                    field,
                    format!(
                        "must be {{\"subject\"?, \"text\", \"html\"?}} with string values: {e}"
                    ),
                ));
                continue;
            }
        };
        match compile(name, &source) {
            Ok(c) => {
                compiled.insert(channel, c);
                parsed.insert(channel, source);
            }
            Err(e) => errors.push(FieldError::new(
                format!("{field}.{}", e.part),
                e.to_string(),
            )),
        }
    }
    if errors.is_empty() {
        Ok((parsed, compiled))
    } else {
        Err(errors)
    }
}

/// Renders every channel of `version` with `data`; field errors name `<prefix><channel>.<part>`
/// with the line, column and the missing variable.
pub fn check_render(
    version: &TemplateVersion,
    channels: &[Channel],
    data: &Value,
    prefix: &str,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for channel in channels {
        if let Some(c) = version.compiled.get(channel)
            && let Err(e) = c.render(data)
        {
            errors.push(FieldError::new(
                format!("{prefix}{}.{}", channel.as_str(), e.part),
                e.to_string(),
            ));
        }
    }
    errors
}

/// Compiled template versions, loaded on demand. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Templates {
    store: Store,
    cache: Arc<Mutex<Cache>>,
}

impl Templates {
    /// A registry reading `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A version of `name` (`None`: the latest), compiled; `None` when it does not exist.
    pub async fn get(
        &self,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<Arc<TemplateVersion>>, InfraError> {
        if let Some(hit) = self.cached(name, version) {
            return Ok(Some(hit));
        }
        let record = self.store.template(name, version).await?;
        self.compiled(record)
    }

    /// [`Templates::get`] reading on `conn` (inside a transaction, for example).
    pub async fn get_on(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<Arc<TemplateVersion>>, InfraError> {
        if let Some(hit) = self.cached(name, version) {
            return Ok(Some(hit));
        }
        let record = Store::template_on(conn, name, version).await?;
        self.compiled(record)
    }

    /// A numbered version already compiled.
    fn cached(&self, name: &str, version: Option<i64>) -> Option<Arc<TemplateVersion>> {
        let v = version?;
        self.cache.lock().get(&(name.to_owned(), v)).cloned()
    }

    /// The compiled form of a stored version, compiled once and cached.
    fn compiled(
        &self,
        record: Option<TemplateRecord>,
    ) -> Result<Option<Arc<TemplateVersion>>, InfraError> {
        let Some(record) = record else {
            return Ok(None);
        };
        if let Some(hit) = self.cached(&record.name, Some(record.version)) {
            return Ok(Some(hit));
        }
        let compiled = Arc::new(compile_record(record)?);
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert((compiled.name.clone(), compiled.version), compiled.clone());
        Ok(Some(compiled))
    }
}

/// Compiles a stored version (stored sources compiled when they were created, so an error
/// here means the stored row was changed by hand).
pub fn compile_record(record: TemplateRecord) -> Result<TemplateVersion, InfraError> {
    let (sources, compiled) =
        compile_sources(&record.name, &record.sources, "").map_err(|errors| {
            InfraError::Codec(format!(
                "stored template {} version {} does not compile: {}",
                record.name,
                record.version,
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
    Ok(TemplateVersion {
        name: record.name,
        version: record.version,
        sources,
        compiled,
        example_data: record.example_data,
        created_by: record.created_by,
        created_at: record.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sources_compile_or_name_the_failing_part() {
        let ok = json!({"email": {"subject": "Hi {{ name }}", "text": "Hello {{ name }}"}, "webhook": {"text": "{{ n }}"}});
        let (sources, compiled) = compile_sources("t", &ok, "channels.").expect("compiles");
        assert_eq!(sources.len(), 2);
        assert_eq!(compiled.len(), 2);

        let bad = json!({"email": {"text": "line one\n{% if %}"}, "fax": {"text": "x"}});
        let errors = compile_sources("t", &bad, "channels.").expect_err("fails");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"channels.email.text"), "{errors:?}");
        assert!(fields.contains(&"channels.fax"), "{errors:?}");
        let syntax = errors
            .iter()
            .find(|e| e.field == "channels.email.text")
            .expect("syntax");
        assert!(syntax.message.contains("line 2"), "{syntax:?}");

        assert!(compile_sources("t", &json!({}), "channels.").is_err());
        assert!(compile_sources("t", &json!([1]), "channels.").is_err());
        assert!(compile_sources("t", &json!({"email": {"subject": "x"}}), "channels.").is_err());
    }

    #[test]
    fn renders_are_checked_per_channel() {
        let (sources, compiled) =
            compile_sources("t", &json!({"email": {"text": "Hi {{ name }}"}}), "")
                .expect("compiles");
        let v = TemplateVersion {
            name: "t".into(),
            version: 1,
            sources,
            compiled,
            example_data: None,
            created_by: "admin".into(),
            created_at: 0,
        };
        assert_eq!(v.variables(), vec!["name".to_owned()]);
        assert!(check_render(&v, &[Channel::Email], &json!({"name": "Ada"}), "").is_empty());
        let errors = check_render(&v, &[Channel::Email], &json!({}), "template.");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "template.email.text");
        assert!(errors[0].message.contains("name"), "{errors:?}");
    }
}

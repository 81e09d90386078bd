//! Scenario files (TOML): an optional seeding step, key generators and a weighted mix of
//! request templates. See the crate docs for the format.
//!
//! Parsing rejects unknown fields (so a typo is an error, not a silent default) and every
//! validation error names the field it is about, e.g. `request[1].weight`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::keys::{KeyGen, KeySpec};
use crate::schedule::Arrival;
use crate::template::Template;
use crate::workload::{KindParts, RequestKind, Target, Workload};

/// A scenario that cannot be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or a field has the wrong type or name.
    #[error("invalid scenario {path}: {message}")]
    Parse {
        /// The file (or `<inline>`).
        path: String,
        /// The parser's message, which quotes the offending line and key.
        message: String,
    },
    /// A field has a value that is not allowed.
    #[error("invalid scenario {path}: `{field}`: {message}")]
    Invalid {
        /// The file (or `<inline>`).
        path: String,
        /// The offending field, e.g. `request[1].weight` or `keys.hot.n`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl ScenarioError {
    /// The field an `Invalid` error is about.
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Load settings a scenario may suggest; command-line flags override them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadDefaults {
    /// Requests per second.
    pub rate: Option<f64>,
    /// Measured duration, e.g. "30s".
    pub duration: Option<String>,
    /// Warm-up, e.g. "5s".
    pub warmup: Option<String>,
    /// Connections.
    pub connections: Option<usize>,
    /// Worker threads.
    pub threads: Option<usize>,
    /// Arrival process.
    pub arrival: Option<Arrival>,
    /// Per-request timeout, e.g. "5s".
    pub timeout: Option<String>,
}

/// A `[[request]]` template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// The kind's name (its histogram's key); unique.
    pub name: String,
    /// Relative weight in the mix (default 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// HTTP method (default GET).
    #[serde(default = "get")]
    pub method: String,
    /// Path (and query) template, relative to the base URL's path.
    pub path: String,
    /// Header templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body template (JSON by default: `content-type: application/json` is added if absent).
    pub body: Option<String>,
    /// The expected status; any other is an error. Default: anything below 400.
    pub expect_status: Option<u16>,
    /// Name of an environment variable holding a bearer token for `Authorization`.
    pub auth_env: Option<String>,
}

/// `[seed.check]`: skip seeding when this request already returns this status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCheck {
    /// Path to GET.
    pub path: String,
    /// Status that means "already seeded".
    pub status: u16,
}

/// `[seed]`: create data before the run, in batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSpec {
    /// HTTP method (default POST).
    #[serde(default = "post")]
    pub method: String,
    /// Path of the bulk endpoint.
    pub path: String,
    /// How many items to create; item keys run over `[0, count)`.
    pub count: u64,
    /// Items per request (default 1000).
    #[serde(default = "thousand")]
    pub batch: u64,
    /// Template of one item; `{key}` is the item's index.
    pub item: String,
    /// Template of a request body; `{items}` is the comma-separated items.
    pub body: String,
    /// Extra headers (static).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Name of an environment variable holding a bearer token for `Authorization`.
    pub auth_env: Option<String>,
    /// Parallel requests (default 4).
    #[serde(default = "four")]
    pub concurrency: usize,
    /// Accepted statuses (default: any 2xx).
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Optional probe that skips seeding when the data is already there.
    pub check: Option<SeedCheck>,
}

fn one() -> u32 {
    1
}
fn four() -> usize {
    4
}
fn thousand() -> u64 {
    1000
}
fn get() -> String {
    "GET".to_owned()
}
fn post() -> String {
    "POST".to_owned()
}

/// A parsed scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name used in reports.
    pub name: String,
    /// What the scenario measures.
    #[serde(default)]
    pub description: String,
    /// Default base URL (`http://host:port[/prefix]`); the command line may override it.
    pub base_url: Option<String>,
    /// Suggested load settings.
    #[serde(default)]
    pub load: LoadDefaults,
    /// Optional seeding step.
    pub seed: Option<SeedSpec>,
    /// Key generators by placeholder name.
    #[serde(default)]
    pub keys: BTreeMap<String, KeySpec>,
    /// The request mix.
    #[serde(default, rename = "request")]
    pub requests: Vec<RequestSpec>,
    /// Where it was read from (`<inline>` for strings).
    #[serde(skip)]
    pub source: String,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates scenario text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, ScenarioError> {
        let mut scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: source.to_owned(),
            message: e.to_string(),
        })?;
        scenario.source = source.to_owned();
        scenario.validate()?;
        Ok(scenario)
    }

    fn invalid(&self, field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.source.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        if self.name.trim().is_empty() {
            return Err(self.invalid("name", "must not be empty"));
        }
        if let Some(url) = &self.base_url {
            Target::parse(url).map_err(|e| self.invalid("base_url", e.to_string()))?;
        }
        self.validate_load()?;
        for (name, spec) in &self.keys {
            if !is_ident(name) {
                return Err(self.invalid(
                    format!("keys.{name}"),
                    "key names must be identifiers ([A-Za-z_][A-Za-z0-9_]*)",
                ));
            }
            KeyGen::new(spec).map_err(|e| self.invalid(format!("keys.{name}"), e.to_string()))?;
        }
        if self.requests.is_empty() {
            return Err(self.invalid("request", "at least one [[request]] is required"));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.requests.iter().enumerate() {
            let field = |f: &str| format!("request[{i}].{f}");
            if r.name.trim().is_empty() {
                return Err(self.invalid(field("name"), "must not be empty"));
            }
            if !names.insert(r.name.as_str()) {
                return Err(self.invalid(field("name"), format!("duplicate name `{}`", r.name)));
            }
            if let Some(s) = r.expect_status
                && !(100..=599).contains(&s)
            {
                return Err(self.invalid(field("expect_status"), "must be in 100..=599"));
            }
            if !r.path.starts_with('/') {
                return Err(self.invalid(field("path"), "must start with '/'"));
            }
        }
        if self.requests.iter().all(|r| r.weight == 0) {
            return Err(self.invalid("request[0].weight", "the weights must not all be zero"));
        }
        if let Some(seed) = &self.seed {
            if seed.batch == 0 {
                return Err(self.invalid("seed.batch", "must be at least 1"));
            }
            if seed.concurrency == 0 {
                return Err(self.invalid("seed.concurrency", "must be at least 1"));
            }
            if !seed.path.starts_with('/') {
                return Err(self.invalid("seed.path", "must start with '/'"));
            }
            let key = BTreeMap::from([("key".to_owned(), 0)]);
            Template::compile(&seed.item, &key)
                .map_err(|e| self.invalid("seed.item", e.to_string()))?;
            let items = BTreeMap::from([("items".to_owned(), 0)]);
            let body = Template::compile(&seed.body, &items)
                .map_err(|e| self.invalid("seed.body", e.to_string()))?;
            if body.keys().count() != 1 {
                return Err(self.invalid("seed.body", "must contain `{items}` exactly once"));
            }
        }
        // Compiling the templates checks placeholders, methods, headers and paths.
        let target =
            Target::parse("http://127.0.0.1:80").map_err(|e| self.invalid("", e.to_string()))?;
        self.compile_with(target).map(|_| ())
    }

    fn validate_load(&self) -> Result<(), ScenarioError> {
        let l = &self.load;
        if let Some(rate) = l.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(self.invalid("load.rate", "must be a positive number"));
        }
        for (name, value) in [
            ("load.duration", &l.duration),
            ("load.warmup", &l.warmup),
            ("load.timeout", &l.timeout),
        ] {
            if let Some(v) = value {
                crate::units::parse_duration(v).map_err(|e| self.invalid(name, e.to_string()))?;
            }
        }
        if l.connections == Some(0) {
            return Err(self.invalid("load.connections", "must be at least 1"));
        }
        if l.threads == Some(0) {
            return Err(self.invalid("load.threads", "must be at least 1"));
        }
        Ok(())
    }

    /// The target: `base_override` (from the command line) or the scenario's `base_url`.
    pub fn target(&self, base_override: Option<&str>) -> Result<Target, ScenarioError> {
        let url = base_override.or(self.base_url.as_deref()).ok_or_else(|| {
            self.invalid(
                "base_url",
                "no base URL: set base_url in the scenario or pass a URL on the command line",
            )
        })?;
        Target::parse(url).map_err(|e| self.invalid("base_url", e.to_string()))
    }

    /// Compiles the scenario into a workload against `base_override` or `base_url`.
    pub fn compile(&self, base_override: Option<&str>) -> Result<Workload, ScenarioError> {
        self.compile_with(self.target(base_override)?)
    }

    fn compile_with(&self, target: Target) -> Result<Workload, ScenarioError> {
        let mut index = BTreeMap::new();
        let mut keys = Vec::new();
        for (name, spec) in &self.keys {
            index.insert(name.clone(), keys.len());
            keys.push(
                KeyGen::new(spec)
                    .map_err(|e| self.invalid(format!("keys.{name}"), e.to_string()))?,
            );
        }
        let prefix = target.path_prefix().to_owned();
        let mut kinds = Vec::new();
        for (i, r) in self.requests.iter().enumerate() {
            let field = |f: &str| format!("request[{i}].{f}");
            let compile = |f: &str, text: &str| {
                Template::compile(text, &index).map_err(|e| self.invalid(field(f), e.to_string()))
            };
            let path = compile("path", &r.path)?;
            let mut headers = Vec::new();
            for (name, value) in &r.headers {
                headers.push((name.clone(), compile(&format!("headers.{name}"), value)?));
            }
            if let Some(var) = &r.auth_env {
                headers.push((
                    "authorization".to_owned(),
                    Template::compile(&bearer(var), &BTreeMap::new())
                        .map_err(|e| self.invalid(field("auth_env"), e.to_string()))?,
                ));
            }
            let body = match &r.body {
                Some(b) => Some(compile("body", b)?),
                None => None,
            };
            let kind = RequestKind::build(
                &target,
                &prefix,
                KindParts {
                    name: r.name.clone(),
                    weight: r.weight,
                    method: r.method.clone(),
                    path,
                    headers,
                    body,
                    expect: r.expect_status,
                },
                &keys,
            )
            .map_err(|e| self.invalid(field(kind_field(&e)), e.to_string()))?;
            kinds.push(kind);
        }
        Workload::new(self.name.clone(), target, prefix, kinds, keys)
            .map_err(|e| self.invalid("request", e.to_string()))
    }
}

fn kind_field(e: &crate::workload::KindError) -> &'static str {
    match e {
        crate::workload::KindError::Method(_) => "method",
        crate::workload::KindError::Path(_) => "path",
        crate::workload::KindError::Header(_) => "headers",
    }
}

/// `Bearer <token>` from the environment variable `var`, braces escaped for templates; an
/// unset variable gives no token (the server then answers 401, which the run reports).
pub fn bearer(var: &str) -> String {
    let token = std::env::var(var).unwrap_or_default();
    format!("Bearer {}", token.replace('{', "{{"))
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "mix"
base_url = "http://127.0.0.1:8080/prefix"

[load]
rate = 500
duration = "5s"
arrival = "poisson"

[keys.hot]
dist = "zipf"
n = 1000
s = 1.1

[keys.code]
dist = "uniform"
n = 3521614606208
format = "base62"
width = 7

[[request]]
name = "redirect"
weight = 9
path = "/k{hot}"
expect_status = 301

[[request]]
name = "create"
method = "POST"
path = "/api/v1/links"
body = '{"url": "https://example.com/{code}"}'
headers = { "idempotency-key" = "bench-{code}" }
expect_status = 201
"#;

    fn err(text: &str) -> ScenarioError {
        match Scenario::parse(text, "<test>") {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_and_compiles() {
        let s = Scenario::parse(GOOD, "<test>").unwrap();
        assert_eq!(s.name, "mix");
        assert_eq!(s.load.rate, Some(500.0));
        assert_eq!(s.load.arrival, Some(Arrival::Poisson));
        assert_eq!(s.requests.len(), 2);
        assert_eq!(s.requests[0].method, "GET");
        let w = s.compile(None).unwrap();
        assert_eq!(w.kind_names(), vec!["redirect", "create"]);
        assert_eq!(w.prefix, "/prefix");
        let w = s.compile(Some("http://10.0.0.1:9")).unwrap();
        assert_eq!(w.target.port, 9);
        assert_eq!(w.prefix, "");
    }

    #[test]
    fn unknown_field_is_named() {
        let e = err(&GOOD.replace("expect_status = 301", "expect_statu = 301"));
        assert!(e.to_string().contains("expect_statu"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_line() {
        let e = err(&GOOD.replace("weight = 9", "weight = \"nine\""));
        assert!(e.to_string().contains("weight"), "{e}");
    }

    #[test]
    fn unknown_placeholder_names_field() {
        let e = err(&GOOD.replace("/k{hot}", "/k{cold}"));
        assert_eq!(e.field(), Some("request[0].path"));
        assert!(e.to_string().contains("{cold}"), "{e}");
    }

    #[test]
    fn invalid_values_name_fields() {
        let cases = [
            (GOOD.replace("n = 1000\n", "n = 0\n"), "keys.hot"),
            (GOOD.replace("rate = 500", "rate = -5"), "load.rate"),
            (
                GOOD.replace("duration = \"5s\"", "duration = \"5 parsecs\""),
                "load.duration",
            ),
            (
                GOOD.replace("name = \"create\"", "name = \"redirect\""),
                "request[1].name",
            ),
            (
                GOOD.replace("path = \"/k{hot}\"", "path = \"k{hot}\""),
                "request[0].path",
            ),
            (
                GOOD.replace("method = \"POST\"", "method = \"P O\""),
                "request[1].method",
            ),
            (
                GOOD.replace("expect_status = 201", "expect_status = 999"),
                "request[1].expect_status",
            ),
            (
                GOOD.replace("http://127.0.0.1:8080/prefix", "https://x"),
                "base_url",
            ),
        ];
        for (text, field) in cases {
            let e = err(&text);
            assert_eq!(e.field(), Some(field), "{e}");
            assert!(e.to_string().contains(field), "{e}");
        }
        let e = err(&GOOD.replace("weight = 9", "weight = 0").replace(
            "path = \"/api/v1/links\"",
            "path = \"/api/v1/links\"\nweight = 0",
        ));
        assert_eq!(e.field(), Some("request[0].weight"));
    }

    #[test]
    fn missing_requests() {
        let e = err("name = \"x\"\n");
        assert_eq!(e.field(), Some("request"));
    }

    #[test]
    fn missing_base_url_is_reported_at_compile() {
        let s = Scenario::parse(
            &GOOD.replace("base_url = \"http://127.0.0.1:8080/prefix\"", ""),
            "<t>",
        )
        .unwrap();
        let e = s.compile(None).unwrap_err();
        assert_eq!(e.field(), Some("base_url"));
        assert!(s.compile(Some("http://127.0.0.1:1")).is_ok());
    }

    #[test]
    fn seed_section() {
        let text = format!(
            "{GOOD}\n[seed]\npath = \"/api/v1/links/bulk\"\ncount = 10\nitem = '{{\"url\": \"https://e/{{key}}\", \"alias\": \"k{{key}}\"}}'\nbody = '{{\"links\": [{{items}}]}}'\n"
        );
        let s = Scenario::parse(&text, "<t>").unwrap();
        let seed = s.seed.unwrap();
        assert_eq!(
            (seed.batch, seed.concurrency, seed.method.as_str()),
            (1000, 4, "POST")
        );
        let bad = text.replace("[{items}]", "[]");
        assert_eq!(err(&bad).field(), Some("seed.body"));
        let bad = text.replace("k{key}", "k{kee}");
        assert_eq!(err(&bad).field(), Some("seed.item"));
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let mut found = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
                s.compile(Some("http://127.0.0.1:8080")).unwrap();
                found += 1;
            }
        }
        assert!(found >= 3, "found {found} scenarios in {}", dir.display());
    }
}

//! The limits of the decision service: files in the format of envoyproxy/ratelimit's
//! configuration (one domain per file, nested descriptors with `key`, optional `value`,
//! `rate_limit {unit, requests_per_unit, unlimited}`, `shadow_mode`), written in TOML; and
//! their compiled form, [`Rules`], which answers "which limit applies to this descriptor".
//!
//! ```toml
//! domain = "edge"
//!
//! [[descriptors]]                 # every client IP: 100 per second
//! key = "remote_address"
//! rate_limit = { unit = "second", requests_per_unit = 100 }
//!
//! [[descriptors]]                 # one client IP that gets more
//! key = "remote_address"
//! value = "10.0.0.7"
//! rate_limit = { unit = "second", requests_per_unit = 1000 }
//!
//! [[descriptors]]
//! key = "path"
//! value = "/api/v1/links"
//!
//!   [[descriptors.descriptors]]   # (path=/api/v1/links, api_key=<any>): 600 per minute
//!   key = "api_key"
//!   rate_limit = { unit = "minute", requests_per_unit = 600 }
//! ```
//!
//! Matching follows envoyproxy/ratelimit: the entries of a request descriptor are walked down
//! the tree, at each level preferring the node with the same key and value, then a node whose
//! value ends in `*` and is a prefix of the request's value, then a node with the key and no
//! value (any value). The limit applies only when the walk reaches a node with a `rate_limit`
//! at the request descriptor's **last** entry: a shorter or longer descriptor is not limited.
//! Counters are per domain and per the request's actual entries, so a key-only node counts each
//! value separately (each IP, each API key).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use praxis_infra::ratelimit::{Algorithm, OnStoreFailure, Quota, Rule};
use serde::{Deserialize, Serialize};

/// Most nesting levels of descriptors in a domain.
pub const MAX_DEPTH: usize = 16;

/// One domain's file, as written (envoyproxy/ratelimit's structure).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// The domain requests name (`RateLimitRequest.domain`); unique across files.
    pub domain: String,
    /// The top-level descriptors.
    #[serde(default)]
    pub descriptors: Vec<DescriptorConfig>,
    /// praxis extension: what to decide when the shared store (Redis) fails: `open`,
    /// `closed` (the check answers 503 / gRPC `UNAVAILABLE`, so the caller's own failure mode
    /// applies) or `local` (the default: decide in-process).
    #[serde(default)]
    pub on_store_failure: Option<String>,
}

/// One descriptor node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescriptorConfig {
    /// The entry key this node matches.
    pub key: String,
    /// The entry value this node matches: exact, a prefix when it ends in `*`, any value when
    /// absent.
    #[serde(default)]
    pub value: Option<String>,
    /// The limit of descriptors that end at this node.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Count, but always answer `OK` for this node's limit.
    #[serde(default)]
    pub shadow_mode: bool,
    /// Nodes matching the next entry.
    #[serde(default)]
    pub descriptors: Vec<DescriptorConfig>,
}

/// A node's limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// A name for the limit (shown in `current_limit.name` and metrics).
    #[serde(default)]
    pub name: Option<String>,
    /// `second`, `minute`, `hour`, `day`, `week`, `month` (30 days) or `year` (365 days).
    #[serde(default)]
    pub unit: Option<String>,
    /// Requests allowed per unit; 0 refuses every request.
    #[serde(default)]
    pub requests_per_unit: Option<u64>,
    /// No limit at all (and no `unit` nor `requests_per_unit`).
    #[serde(default)]
    pub unlimited: bool,
    /// praxis extension: `fixed-window` (the default, as envoyproxy/ratelimit counts),
    /// `sliding-window`, `sliding-log`, `token-bucket` or `gcra`.
    #[serde(default)]
    pub algorithm: Option<String>,
}

/// The unit of a limit, as Envoy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Unit {
    /// One second.
    Second,
    /// 60 seconds.
    Minute,
    /// 3600 seconds.
    Hour,
    /// 86,400 seconds.
    Day,
    /// 7 days.
    Week,
    /// 30 days (as envoyproxy/ratelimit counts a month).
    Month,
    /// 365 days.
    Year,
}

impl Unit {
    const ALL: [Unit; 7] = [
        Unit::Second,
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Week,
        Unit::Month,
        Unit::Year,
    ];

    /// The length of one unit.
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3600,
            Unit::Day => 86_400,
            Unit::Week => 7 * 86_400,
            Unit::Month => 30 * 86_400,
            Unit::Year => 365 * 86_400,
        })
    }

    /// Lowercase name, as written in limit files.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Year => "year",
        }
    }

    /// Parses a unit name, ignoring ASCII case.
    pub fn parse(text: &str) -> Option<Unit> {
        Unit::ALL
            .into_iter()
            .find(|u| u.name().eq_ignore_ascii_case(text.trim()))
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A limit file that cannot be used: which file, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{message}", .file.display(), .field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct LimitsError {
    /// The file (or folder) at fault.
    pub file: PathBuf,
    /// The failing field as a path (`descriptors[0].descriptors[1].rate_limit.unit`), when
    /// the error is about one.
    pub field: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl LimitsError {
    fn new(file: &Path, field: Option<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            field,
            message: message.into(),
        }
    }
}

/// What a matched node does.
#[derive(Debug, Clone)]
pub(crate) enum Limit {
    /// No limit (`unlimited = true`).
    Unlimited,
    /// `requests_per_unit = 0`: every request is over the limit.
    Blocked { name: Option<String>, unit: Unit },
    /// A limit decided by the limiter.
    Limited {
        name: Option<String>,
        unit: Unit,
        requests_per_unit: u32,
        rule: Rule,
    },
}

/// Counters of one limit (registered once per node).
#[derive(Debug)]
pub(crate) struct NodeMetrics {
    pub(crate) ok: metrics::Counter,
    pub(crate) over_limit: metrics::Counter,
    pub(crate) shadow_over_limit: metrics::Counter,
}

/// A compiled node.
#[derive(Debug)]
pub(crate) struct Node {
    /// `key` or `key=value` steps from the domain, joined by `.` (metrics label).
    pub(crate) path: String,
    pub(crate) limit: Option<Limit>,
    pub(crate) shadow: bool,
    pub(crate) children: Level,
    pub(crate) metrics: OnceLock<NodeMetrics>,
}

/// The nodes of one level.
#[derive(Debug, Default)]
pub(crate) struct Level {
    /// key -> value -> node.
    exact: HashMap<String, HashMap<String, Node>>,
    /// `(key, prefix, node)` in file order (values ending in `*`).
    prefixes: Vec<(String, String, Node)>,
    /// key -> node without a value.
    any: HashMap<String, Node>,
}

impl Level {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty() && self.any.is_empty()
    }

    fn find(&self, key: &str, value: &str) -> Option<&Node> {
        if let Some(node) = self.exact.get(key).and_then(|values| values.get(value)) {
            return Some(node);
        }
        self.prefixes
            .iter()
            .find(|(k, prefix, _)| k == key && value.starts_with(prefix.as_str()))
            .map(|(_, _, node)| node)
            .or_else(|| self.any.get(key))
    }

    fn count(&self) -> usize {
        let nodes = self
            .exact
            .values()
            .flat_map(HashMap::values)
            .chain(self.prefixes.iter().map(|(_, _, n)| n))
            .chain(self.any.values());
        nodes
            .map(|n| usize::from(n.limit.is_some()) + n.children.count())
            .sum()
    }
}

/// A compiled domain.
#[derive(Debug)]
pub(crate) struct Domain {
    pub(crate) on_failure: OnStoreFailure,
    pub(crate) root: Level,
}

impl Domain {
    /// The node whose limit applies to a descriptor with these entries (envoyproxy/ratelimit's
    /// walk), or `None` when no limit applies.
    pub(crate) fn find<'a, I>(&self, entries: I) -> Option<&Node>
    where
        I: ExactSizeIterator<Item = (&'a str, &'a str)>,
    {
        let last = entries.len().checked_sub(1)?;
        let mut level = &self.root;
        for (i, (key, value)) in entries.enumerate() {
            let node = level.find(key, value)?;
            if i == last {
                return node.limit.is_some().then_some(node);
            }
            if node.children.is_empty() {
                return None;
            }
            level = &node.children;
        }
        None
    }
}

/// Every domain's compiled limits, as loaded from one file or folder at one time.
#[derive(Debug, Default)]
pub struct Rules {
    pub(crate) domains: HashMap<String, Domain>,
    /// The content hash of the files (16 hex digits), `"none"` without a limit file.
    pub version: String,
    /// Domain names and how many limits each has, sorted by name.
    pub summary: Vec<(String, usize)>,
}

impl Rules {
    /// No domain: every descriptor is answered `OK` without a limit.
    pub fn empty() -> Rules {
        Rules {
            domains: HashMap::new(),
            version: "none".to_owned(),
            summary: Vec::new(),
        }
    }

    /// Loads `path`: one domain file (`*.toml`), or a folder whose `*.toml` files hold one
    /// domain each (other files are ignored, as are hidden ones).
    pub fn load(path: &Path) -> Result<Rules, LimitsError> {
        let files = files_of(path)?;
        let mut hasher = blake3::Hasher::new();
        let mut domains = HashMap::new();
        let mut summary = Vec::new();
        let mut origin: HashMap<String, PathBuf> = HashMap::new();
        for file in &files {
            let text = std::fs::read_to_string(file)
                .map_err(|e| LimitsError::new(file, None, format!("cannot read it: {e}")))?;
            hasher.update(file.as_os_str().as_encoded_bytes());
            hasher.update(&[0]);
            hasher.update(text.as_bytes());
            hasher.update(&[0]);
            let cfg: DomainConfig = toml::from_str(&text).map_err(|e| {
                LimitsError::new(
                    file,
                    None,
                    format!("is not a valid limits file: {}", e.to_string().trim_end()),
                )
            })?;
            let domain = compile_domain(&cfg)
                .map_err(|(field, message)| LimitsError::new(file, Some(field), message))?;
            if let Some(first) = origin.get(&cfg.domain) {
                return Err(LimitsError::new(
                    file,
                    Some("domain".to_owned()),
                    format!(
                        "domain {:?} is also defined in {}; each domain must be in one file",
                        cfg.domain,
                        first.display()
                    ),
                ));
            }
            origin.insert(cfg.domain.clone(), file.clone());
            summary.push((cfg.domain.clone(), domain.root.count()));
            domains.insert(cfg.domain.clone(), domain);
        }
        summary.sort();
        let hash = hasher.finalize().to_hex();
        Ok(Rules {
            domains,
            version: hash.as_str()[..16].to_owned(),
            summary,
        })
    }

    /// Parses and compiles one domain given as text (tests, or limits built in code).
    pub fn from_toml(text: &str) -> Result<Rules, LimitsError> {
        let here = Path::new("<inline>");
        let cfg: DomainConfig = toml::from_str(text).map_err(|e| {
            LimitsError::new(
                here,
                None,
                format!("is not a valid limits file: {}", e.to_string().trim_end()),
            )
        })?;
        let domain = compile_domain(&cfg)
            .map_err(|(field, message)| LimitsError::new(here, Some(field), message))?;
        let version = blake3::hash(text.as_bytes()).to_hex().as_str()[..16].to_owned();
        let summary = vec![(cfg.domain.clone(), domain.root.count())];
        Ok(Rules {
            domains: HashMap::from([(cfg.domain, domain)]),
            version,
            summary,
        })
    }

    pub(crate) fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.get(name)
    }
}

/// The files making up the limits at `path`, sorted.
pub(crate) fn files_of(path: &Path) -> Result<Vec<PathBuf>, LimitsError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| LimitsError::new(path, None, format!("cannot read it: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path)
        .map_err(|e| LimitsError::new(path, None, format!("cannot list the folder: {e}")))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| LimitsError::new(path, None, format!("cannot list it: {e}")))?;
        let p = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') && name.ends_with(".toml") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

type FieldErr = (String, String);

fn compile_domain(cfg: &DomainConfig) -> Result<Domain, FieldErr> {
    let d = cfg.domain.trim();
    if d.is_empty() || d.len() > 255 || d != cfg.domain {
        return Err((
            "domain".to_owned(),
            format!(
                "{:?} is not a domain (expected 1 to 255 characters without surrounding spaces)",
                cfg.domain
            ),
        ));
    }
    let on_failure = match &cfg.on_store_failure {
        None => OnStoreFailure::Local,
        Some(m) => m
            .parse::<OnStoreFailure>()
            .map_err(|e| ("on_store_failure".to_owned(), e.to_string()))?,
    };
    let root = compile_level(&cfg.descriptors, "descriptors", "", 1)?;
    Ok(Domain { on_failure, root })
}

fn compile_level(
    descriptors: &[DescriptorConfig],
    at: &str,
    parent_path: &str,
    depth: usize,
) -> Result<Level, FieldErr> {
    if depth > MAX_DEPTH {
        return Err((
            at.to_owned(),
            format!("descriptors nest deeper than {MAX_DEPTH} levels"),
        ));
    }
    let mut level = Level::default();
    for (i, d) in descriptors.iter().enumerate() {
        let here = format!("{at}[{i}]");
        let err = |field: &str, message: String| (format!("{here}.{field}"), message);
        if d.key.is_empty() || d.key.len() > 256 {
            return Err(err(
                "key",
                format!("{:?} is not a key (expected 1 to 256 characters)", d.key),
            ));
        }
        if d.value.as_ref().is_some_and(|v| v.len() > 1024) {
            return Err(err("value", "is longer than 1024 characters".to_owned()));
        }
        let step = match &d.value {
            Some(v) => format!("{}={v}", d.key),
            None => d.key.clone(),
        };
        let path = if parent_path.is_empty() {
            step
        } else {
            format!("{parent_path}.{step}")
        };
        let limit = match &d.rate_limit {
            None => None,
            Some(rl) => Some(compile_limit(rl).map_err(|(f, m)| err(&f, m))?),
        };
        if limit.is_none() && d.descriptors.is_empty() {
            return Err((
                here,
                format!(
                    "descriptor {path:?} has neither a rate_limit nor nested descriptors, so it \
                     can never apply"
                ),
            ));
        }
        if d.shadow_mode && limit.is_none() {
            return Err(err(
                "shadow_mode",
                "applies to a rate_limit, and this descriptor has none".to_owned(),
            ));
        }
        let children = compile_level(
            &d.descriptors,
            &format!("{here}.descriptors"),
            &path,
            depth + 1,
        )?;
        let node = Node {
            path: path.clone(),
            limit,
            shadow: d.shadow_mode,
            children,
            metrics: OnceLock::new(),
        };
        let duplicate = match &d.value {
            None => level.any.insert(d.key.clone(), node).is_some(),
            Some(v) => match v.strip_suffix('*') {
                Some(prefix) => {
                    let dup = level
                        .prefixes
                        .iter()
                        .any(|(k, p, _)| *k == d.key && p == prefix);
                    level
                        .prefixes
                        .push((d.key.clone(), prefix.to_owned(), node));
                    dup
                }
                None => level
                    .exact
                    .entry(d.key.clone())
                    .or_default()
                    .insert(v.clone(), node)
                    .is_some(),
            },
        };
        if duplicate {
            return Err((
                here,
                format!("descriptor {path:?} is defined twice at this level"),
            ));
        }
    }
    Ok(level)
}

fn compile_limit(rl: &RateLimitConfig) -> Result<Limit, FieldErr> {
    let field = |f: &str| format!("rate_limit.{f}");
    if let Some(name) = &rl.name
        && (name.is_empty() || name.len() > 128)
    {
        return Err((
            field("name"),
            "must be 1 to 128 characters when set".to_owned(),
        ));
    }
    if rl.unlimited {
        if rl.unit.is_some() || rl.requests_per_unit.is_some() || rl.algorithm.is_some() {
            return Err((
                field("unlimited"),
                "an unlimited rate_limit takes no unit, requests_per_unit nor algorithm".to_owned(),
            ));
        }
        return Ok(Limit::Unlimited);
    }
    let Some(unit_text) = &rl.unit else {
        return Err((
            field("unit"),
            "is missing (expected second, minute, hour, day, week, month or year)".to_owned(),
        ));
    };
    let unit = Unit::parse(unit_text).ok_or_else(|| {
        (
            field("unit"),
            format!(
                "{unit_text:?} is not a unit (expected second, minute, hour, day, week, month or \
                 year)"
            ),
        )
    })?;
    let Some(n) = rl.requests_per_unit else {
        return Err((
            field("requests_per_unit"),
            "is missing (expected a number of requests per unit, 0 to 4294967295)".to_owned(),
        ));
    };
    let requests_per_unit = u32::try_from(n).map_err(|_| {
        (
            field("requests_per_unit"),
            format!("{n} is too large (at most 4294967295)"),
        )
    })?;
    let algorithm = match &rl.algorithm {
        None => Algorithm::FixedWindow,
        Some(a) => a
            .parse::<Algorithm>()
            .map_err(|e| (field("algorithm"), e.to_string()))?,
    };
    if requests_per_unit == 0 {
        return Ok(Limit::Blocked {
            name: rl.name.clone(),
            unit,
        });
    }
    let quota =
        Quota::new(n, unit.duration()).map_err(|e| (field("requests_per_unit"), e.to_string()))?;
    Ok(Limit::Limited {
        name: rl.name.clone(),
        unit,
        requests_per_unit,
        rule: Rule::new(algorithm, quota),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Rules {
        Rules::from_toml(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn path_of(rules: &Rules, entries: &[(&str, &str)]) -> Option<String> {
        rules
            .domain("d")
            .and_then(|d| d.find(entries.iter().map(|(k, v)| (*k, *v))))
            .map(|n| n.path.clone())
    }

    const TREE: &str = r#"
domain = "d"

[[descriptors]]
key = "remote_address"
rate_limit = { unit = "second", requests_per_unit = 10 }

[[descriptors]]
key = "remote_address"
value = "10.0.0.7"
rate_limit = { unit = "second", requests_per_unit = 100 }

[[descriptors]]
key = "path"
value = "/api/*"
rate_limit = { unit = "minute", requests_per_unit = 50 }

[[descriptors]]
key = "path"
value = "/api/v1/links"

  [[descriptors.descriptors]]
  key = "api_key"
  rate_limit = { unit = "minute", requests_per_unit = 600 }

  [[descriptors.descriptors]]
  key = "api_key"
  value = "vip"
  rate_limit = { unlimited = true }
"#;

    #[test]
    fn the_most_specific_node_wins() {
        let r = rules(TREE);
        assert_eq!(
            path_of(&r, &[("remote_address", "1.2.3.4")]).as_deref(),
            Some("remote_address")
        );
        assert_eq!(
            path_of(&r, &[("remote_address", "10.0.0.7")]).as_deref(),
            Some("remote_address=10.0.0.7")
        );
        // The exact value beats the prefix; the exact node has no limit of its own.
        assert_eq!(path_of(&r, &[("path", "/api/v1/links")]), None);
        assert_eq!(
            path_of(&r, &[("path", "/api/v1/other")]).as_deref(),
            Some("path=/api/*")
        );
        assert_eq!(
            path_of(&r, &[("path", "/api/v1/links"), ("api_key", "k1")]).as_deref(),
            Some("path=/api/v1/links.api_key")
        );
        assert_eq!(
            path_of(&r, &[("path", "/api/v1/links"), ("api_key", "vip")]).as_deref(),
            Some("path=/api/v1/links.api_key=vip")
        );
        // Longer than the tree, unknown keys, no entries: no limit.
        assert_eq!(
            path_of(&r, &[("remote_address", "1.2.3.4"), ("x", "y")]),
            None
        );
        assert_eq!(path_of(&r, &[("nope", "1")]), None);
        assert_eq!(path_of(&r, &[]), None);
        assert_eq!(r.summary, vec![("d".to_owned(), 5)]);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("domain = \"\"\n", "domain", "is not a domain"),
            (
                "domain = \"d\"\n[[descriptors]]\nkey = \"k\"\nrate_limit = { unit = \"fortnight\", requests_per_unit = 1 }\n",
                "descriptors[0].rate_limit.unit",
                "\"fortnight\" is not a unit",
            ),
            (
                "domain = \"d\"\n[[descriptors]]\nkey = \"k\"\n[[descriptors.descriptors]]\nkey = \"\"\nrate_limit = { unit = \"second\", requests_per_unit = 1 }\n",
                "descriptors[0].descriptors[0].key",
                "is not a key",
            ),
            (
                "domain = \"d\"\n[[descriptors]]\nkey = \"k\"\nrate_limit = { unit = \"second\" }\n",
                "descriptors[0].rate_limit.requests_per_unit",
                "is missing",
            ),
            (
                "domain = \"d\"\n[[descriptors]]\nkey = \"k\"\nrate_limit = { unlimited = true, unit = \"second\" }\n",
                "descriptors[0].rate_limit.unlimited",
                "takes no unit",
            ),
            (
                "domain = \"d\"\n[[descriptors]]\nkey = \"k\"\nrate_limit = { unit = \"second\", requests_per_unit = 1, algorithm = \"leaky\" }\n",
                "descriptors[0].rate_limit.algorithm",
                "leaky",
            ),
            (
                "domain = \"d\"\n[[descriptors]]\nkey = \"k\"\nrate_limit = { unit = \"second\", requests_per_unit = 1 }\n[[descriptors]]\nkey = \"k\"\nrate_limit = { unit = \"second\", requests_per_unit = 2 }\n",
                "descriptors[1]",
                "defined twice",
            ),
            (
                "domain = \"d\"\n[[descriptors]]\nkey = \"k\"\n",
                "descriptors[0]",
                "can never apply",
            ),
            (
                "domain = \"d\"\n[[descriptors]]\nkey = \"k\"\nshadow_mode = true\n[[descriptors.descriptors]]\nkey = \"j\"\nrate_limit = { unit = \"second\", requests_per_unit = 1 }\n",
                "descriptors[0].shadow_mode",
                "has none",
            ),
            (
                "domain = \"d\"\non_store_failure = \"maybe\"\n",
                "on_store_failure",
                "maybe",
            ),
        ];
        for (text, field, message) in cases {
            let e = Rules::from_toml(text).expect_err(text);
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
            assert!(e.message.contains(message), "{e}");
        }
        let e = Rules::from_toml("domain = \"d\"\nreplaces = 1\n").expect_err("unknown");
        assert!(e.message.contains("unknown field `replaces`"), "{e}");
        assert!(
            e.to_string()
                .starts_with("<inline>: is not a valid limits file"),
            "{e}"
        );
    }

    #[test]
    fn limits_compile_to_rules() {
        let r = rules(
            "domain = \"d\"\n[[descriptors]]\nkey = \"k\"\nrate_limit = { unit = \"HOUR\", requests_per_unit = 0 }\n[[descriptors]]\nkey = \"g\"\nrate_limit = { unit = \"minute\", requests_per_unit = 7, algorithm = \"gcra\", name = \"g7\" }\n",
        );
        let d = r.domain("d").expect("domain");
        let blocked = d.find([("k", "x")].into_iter()).expect("k");
        assert!(matches!(
            blocked.limit,
            Some(Limit::Blocked {
                unit: Unit::Hour,
                ..
            })
        ));
        let g = d.find([("g", "x")].into_iter()).expect("g");
        let Some(Limit::Limited {
            rule,
            requests_per_unit,
            name,
            ..
        }) = &g.limit
        else {
            panic!("limited");
        };
        assert_eq!(*requests_per_unit, 7);
        assert_eq!(rule.algorithm, Algorithm::Gcra);
        assert_eq!(rule.quota.period(), Duration::from_secs(60));
        assert_eq!(name.as_deref(), Some("g7"));
        assert_eq!(Unit::parse(" Month "), Some(Unit::Month));
        assert_eq!(Unit::Year.duration(), Duration::from_secs(365 * 86_400));
    }

    #[test]
    fn folders_hold_one_domain_per_file() {
        let dir = tempfile::tempdir().expect("dir");
        let one = "domain = \"a\"\n[[descriptors]]\nkey = \"k\"\nrate_limit = { unit = \"second\", requests_per_unit = 1 }\n";
        std::fs::write(dir.path().join("a.toml"), one).expect("write");
        std::fs::write(dir.path().join("b.toml"), one.replace("\"a\"", "\"b\"")).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
        let r = Rules::load(dir.path()).expect("loads");
        assert_eq!(r.summary, vec![("a".to_owned(), 1), ("b".to_owned(), 1)]);
        assert_eq!(r.version.len(), 16);
        let again = Rules::load(dir.path()).expect("loads");
        assert_eq!(again.version, r.version);

        std::fs::write(dir.path().join("c.toml"), one).expect("write");
        let e = Rules::load(dir.path()).expect_err("duplicate domain");
        assert!(e.file.ends_with("c.toml"), "{e}");
        assert!(e.message.contains("also defined in"), "{e}");

        let e = Rules::load(&dir.path().join("missing.toml")).expect_err("missing");
        assert!(e.message.starts_with("cannot read it"), "{e}");
    }
}

//! The compiled workload: the target server, the request kinds with their weights, and the
//! per-connection [`RequestGen`] that turns them into ready-to-send hyper requests.
//!
//! Everything that can be prepared once is: static URIs, header maps (with `Host`), static
//! bodies (`Bytes`, cloned by reference count). A dynamic request costs a weighted pick, one
//! draw per key and a render into a reused buffer.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::keys::KeyGen;
use crate::template::Template;

/// The body type every generated request uses.
pub type ReqBody = Full<Bytes>;

/// A target URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a valid absolute URL.
    #[error("invalid URL `{0}`: expected http://host[:port][/path]")]
    Invalid(String),
    /// Only plain HTTP/1.1 is supported.
    #[error("unsupported scheme in `{0}`: only http:// is supported")]
    Scheme(String),
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// Host name or address to connect to.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `Host` header value (the URL's authority).
    pub authority: String,
    /// Path and query of the URL (`/` when absent).
    pub path_and_query: String,
}

impl Target {
    /// Parses an `http://` URL.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| TargetError::Invalid(url.to_owned()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(TargetError::Scheme(url.to_owned())),
            None => return Err(TargetError::Invalid(url.to_owned())),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| TargetError::Invalid(url.to_owned()))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(TargetError::Invalid(url.to_owned()));
        }
        Ok(Target {
            url: url.to_owned(),
            host,
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }

    /// The URL's path without a trailing slash, used as a prefix for scenario paths.
    pub fn path_prefix(&self) -> &str {
        let path = self
            .path_and_query
            .split('?')
            .next()
            .unwrap_or(&self.path_and_query);
        path.trim_end_matches('/')
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum BodySpec {
    /// No body.
    Empty,
    /// The same bytes every time.
    Static(Bytes),
    /// Rendered per request.
    Template(Template),
}

/// One request kind (a scenario's `[[request]]`, or "default" in URL mode).
#[derive(Debug, Clone)]
pub struct RequestKind {
    /// The kind's name: the key of its histogram.
    pub name: String,
    /// Relative weight in the mix.
    pub weight: u32,
    /// HTTP method.
    pub method: Method,
    /// Path and query, prefix included.
    pub path: Template,
    /// Pre-built URI when the path is static.
    pub static_uri: Option<Uri>,
    /// Static headers, `Host` included.
    pub headers: HeaderMap,
    /// Headers rendered per request.
    pub dynamic_headers: Vec<(HeaderName, Template)>,
    /// The body.
    pub body: BodySpec,
    /// The expected status; `None` accepts anything below 400.
    pub expect: Option<u16>,
    /// Distinct generator indices this kind draws, sorted.
    pub used_keys: Vec<usize>,
}

/// A request kind that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// The method is not a valid HTTP token.
    #[error("invalid method `{0}`")]
    Method(String),
    /// The rendered path is not a valid origin-form request target.
    #[error("invalid path `{0}`: it must start with '/' and be a valid URI path")]
    Path(String),
    /// A header name or value is invalid.
    #[error("invalid header `{0}`")]
    Header(String),
}

/// The parts of a request kind before validation.
#[derive(Debug, Clone)]
pub struct KindParts {
    /// The kind's name.
    pub name: String,
    /// Relative weight.
    pub weight: u32,
    /// Method name.
    pub method: String,
    /// Path template (prefix not included).
    pub path: Template,
    /// Headers: name and value template.
    pub headers: Vec<(String, Template)>,
    /// Optional body template.
    pub body: Option<Template>,
    /// Expected status.
    pub expect: Option<u16>,
}

impl RequestKind {
    /// Validates and prepares a kind for `target`. Static parts are built once here.
    pub fn build(
        target: &Target,
        prefix: &str,
        parts: KindParts,
        keys: &[Arc<KeyGen>],
    ) -> Result<Self, KindError> {
        let method = Method::from_bytes(parts.method.as_bytes())
            .map_err(|_| KindError::Method(parts.method.clone()))?;
        let mut headers = HeaderMap::new();
        let host = HeaderValue::from_str(&target.authority)
            .map_err(|_| KindError::Header("host".to_owned()))?;
        headers.insert(HOST, host);
        let mut dynamic_headers = Vec::new();
        for (name, value) in parts.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| KindError::Header(name.clone()))?;
            match value.static_text() {
                Some(text) => {
                    let v = HeaderValue::from_str(&text)
                        .map_err(|_| KindError::Header(name.clone()))?;
                    headers.append(header, v);
                }
                None => {
                    // Check that a sample rendering is a valid header value.
                    let sample = render_sample(&value, keys);
                    HeaderValue::from_str(&sample).map_err(|_| KindError::Header(name.clone()))?;
                    dynamic_headers.push((header, value));
                }
            }
        }
        let body = match parts.body {
            None => BodySpec::Empty,
            Some(t) => {
                if !headers.contains_key(CONTENT_TYPE)
                    && !dynamic_headers.iter().any(|(n, _)| n == CONTENT_TYPE)
                {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                match t.static_text() {
                    Some(text) => BodySpec::Static(Bytes::from(text)),
                    None => BodySpec::Template(t),
                }
            }
        };
        let path = parts.path;
        let sample = format!("{prefix}{}", render_sample(&path, keys));
        let valid = sample.starts_with('/')
            && sample
                .parse::<Uri>()
                .is_ok_and(|u| u.scheme().is_none() && u.authority().is_none());
        if !valid {
            return Err(KindError::Path(sample));
        }
        let static_uri = match path.static_text() {
            Some(text) => Some(
                format!("{prefix}{text}")
                    .parse::<Uri>()
                    .map_err(|_| KindError::Path(text.clone()))?,
            ),
            None => None,
        };
        let mut used_keys: Vec<usize> = path.keys().collect();
        for (_, t) in &dynamic_headers {
            used_keys.extend(t.keys());
        }
        if let BodySpec::Template(t) = &body {
            used_keys.extend(t.keys());
        }
        used_keys.sort_unstable();
        used_keys.dedup();
        Ok(RequestKind {
            name: parts.name,
            weight: parts.weight,
            method,
            path,
            static_uri,
            headers,
            dynamic_headers,
            body,
            expect: parts.expect,
            used_keys,
        })
    }
}

/// Renders `t` with every key at its largest value (the longest rendering).
fn render_sample(t: &Template, keys: &[Arc<KeyGen>]) -> String {
    let mut out = String::new();
    t.render_with(&mut out, |i, out| {
        if let Some(k) = keys.get(i) {
            k.write(k.max_value(), out);
        }
    });
    out
}

/// Everything a run sends: target, kinds, generators.
#[derive(Debug)]
pub struct Workload {
    /// A name for reports (the scenario name, or "url").
    pub name: String,
    /// The server.
    pub target: Target,
    /// Path prefix applied to every kind (from the scenario's base URL).
    pub prefix: String,
    /// The request kinds; the index is the kind id.
    pub kinds: Vec<RequestKind>,
    /// The key generators; templates refer to them by index.
    pub keys: Vec<Arc<KeyGen>>,
    cumulative: Vec<u64>,
}

/// A workload that cannot be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// No request kinds.
    #[error("at least one request is required")]
    NoKinds,
    /// All weights are zero.
    #[error("the total request weight must be positive")]
    ZeroWeight,
}

impl Workload {
    /// Assembles a workload; weights must not all be zero.
    pub fn new(
        name: String,
        target: Target,
        prefix: String,
        kinds: Vec<RequestKind>,
        keys: Vec<Arc<KeyGen>>,
    ) -> Result<Self, WorkloadError> {
        if kinds.is_empty() {
            return Err(WorkloadError::NoKinds);
        }
        let mut total = 0u64;
        let cumulative = kinds
            .iter()
            .map(|k| {
                total += u64::from(k.weight);
                total
            })
            .collect();
        if total == 0 {
            return Err(WorkloadError::ZeroWeight);
        }
        Ok(Workload {
            name,
            target,
            prefix,
            kinds,
            keys,
            cumulative,
        })
    }

    /// URL mode: GET the URL, kind "default", any status below 400 is a success unless
    /// `expect` is set.
    pub fn from_url(url: &str, expect: Option<u16>) -> Result<Self, crate::BenchError> {
        let target = Target::parse(url)?;
        let keys = BTreeMap::new();
        let path = Template::compile(&target.path_and_query.replace('{', "{{"), &keys)
            .map_err(|e| crate::BenchError::Config(e.to_string()))?;
        let kind = RequestKind::build(
            &target,
            "",
            KindParts {
                name: "default".to_owned(),
                weight: 1,
                method: "GET".to_owned(),
                path,
                headers: Vec::new(),
                body: None,
                expect,
            },
            &[],
        )
        .map_err(|e| crate::BenchError::Config(e.to_string()))?;
        Ok(Workload::new(
            "url".to_owned(),
            target,
            String::new(),
            vec![kind],
            Vec::new(),
        )?)
    }

    /// The kind names, in kind-id order.
    pub fn kind_names(&self) -> Vec<String> {
        self.kinds.iter().map(|k| k.name.clone()).collect()
    }

    fn pick(&self, rng: &mut SmallRng) -> usize {
        if self.kinds.len() == 1 {
            return 0;
        }
        let total = self.cumulative.last().copied().unwrap_or(1);
        let r = rng.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= r)
    }
}

/// A request that could not be rendered (a bug in validation; counted as an I/O error).
#[derive(Debug, thiserror::Error)]
#[error("cannot build request: {0}")]
pub struct BuildError(String);

/// Per-connection copies of a kind's pre-built parts. They have their own reference counts,
/// so cloning them per request never touches a counter shared with other threads.
#[derive(Debug)]
struct LocalParts {
    uri: Option<Uri>,
    headers: HeaderMap,
    body: Bytes,
}

impl LocalParts {
    fn new(kind: &RequestKind) -> Self {
        let mut headers = HeaderMap::with_capacity(kind.headers.len());
        for (name, value) in &kind.headers {
            let name =
                HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
            let mut copy =
                HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
            copy.set_sensitive(value.is_sensitive());
            headers.append(name, copy);
        }
        LocalParts {
            uri: kind
                .static_uri
                .as_ref()
                .map(|u| Uri::try_from(u.to_string()).unwrap_or_else(|_| u.clone())),
            headers,
            body: match &kind.body {
                BodySpec::Static(b) => Bytes::copy_from_slice(b),
                BodySpec::Empty | BodySpec::Template(_) => Bytes::new(),
            },
        }
    }
}

/// Per-connection request factory: its own RNG, buffers and copies of the static parts, so
/// the hot path shares nothing writable with other connections.
#[derive(Debug)]
pub struct RequestGen {
    workload: Arc<Workload>,
    local: Vec<LocalParts>,
    rng: SmallRng,
    values: Vec<u64>,
    buf: String,
}

impl RequestGen {
    /// A generator whose random choices are reproducible from `seed`.
    pub fn new(workload: Arc<Workload>, seed: u64) -> Self {
        let n = workload.keys.len();
        RequestGen {
            local: workload.kinds.iter().map(LocalParts::new).collect(),
            workload,
            rng: SmallRng::seed_from_u64(seed),
            values: vec![0; n],
            buf: String::with_capacity(128),
        }
    }

    /// Picks a kind by weight and builds its request. Returns the kind id too.
    pub fn next_request(&mut self) -> Result<(usize, Request<ReqBody>), BuildError> {
        let workload = &*self.workload;
        let kind_id = workload.pick(&mut self.rng);
        let kind = &workload.kinds[kind_id];
        let local = &self.local[kind_id];
        for &k in &kind.used_keys {
            self.values[k] = workload.keys[k].sample(&mut self.rng);
        }
        let uri = match &local.uri {
            Some(uri) => uri.clone(),
            None => {
                self.buf.clear();
                self.buf.push_str(&workload.prefix);
                render(&kind.path, &workload.keys, &self.values, &mut self.buf);
                Uri::try_from(self.buf.as_str()).map_err(|e| BuildError(e.to_string()))?
            }
        };
        let body = match &kind.body {
            BodySpec::Empty | BodySpec::Static(_) => local.body.clone(),
            BodySpec::Template(t) => {
                self.buf.clear();
                render(t, &workload.keys, &self.values, &mut self.buf);
                Bytes::copy_from_slice(self.buf.as_bytes())
            }
        };
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = kind.method.clone();
        *req.uri_mut() = uri;
        *req.headers_mut() = local.headers.clone();
        for (name, t) in &kind.dynamic_headers {
            self.buf.clear();
            render(t, &workload.keys, &self.values, &mut self.buf);
            let v = HeaderValue::from_str(&self.buf).map_err(|e| BuildError(e.to_string()))?;
            req.headers_mut().append(name.clone(), v);
        }
        Ok((kind_id, req))
    }
}

/// Appends `t` rendered with the current key values to `buf`.
fn render(t: &Template, keys: &[Arc<KeyGen>], values: &[u64], buf: &mut String) {
    t.render_with(buf, |i, out| {
        if let (Some(k), Some(v)) = (keys.get(i), values.get(i)) {
            k.write(*v, out);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Dist, KeyFormat, KeySpec};

    #[test]
    fn parses_targets() {
        let t = Target::parse("http://127.0.0.1:8080/k1?x=1").unwrap();
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, 8080);
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path_and_query, "/k1?x=1");
        assert_eq!(t.path_prefix(), "/k1");
        let t = Target::parse("http://localhost").unwrap();
        assert_eq!((t.port, t.path_and_query.as_str()), (80, "/"));
        assert_eq!(t.path_prefix(), "");
        let t = Target::parse("http://[::1]:9/").unwrap();
        assert_eq!(t.host, "::1");
        assert!(matches!(
            Target::parse("https://x/"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            Target::parse("not a url"),
            Err(TargetError::Invalid(_))
        ));
        assert!(matches!(
            Target::parse("/relative"),
            Err(TargetError::Invalid(_))
        ));
    }

    #[test]
    fn url_mode_builds_a_static_get() {
        let w = Arc::new(Workload::from_url("http://127.0.0.1:1/abc", Some(301)).unwrap());
        let mut g = RequestGen::new(Arc::clone(&w), 1);
        let (kind, req) = g.next_request().unwrap();
        assert_eq!(kind, 0);
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri(), "/abc");
        assert_eq!(req.headers()[HOST], "127.0.0.1:1");
        assert_eq!(w.kinds[0].expect, Some(301));
    }

    #[test]
    fn dynamic_kinds_render_keys_and_weights_are_respected() {
        let target = Target::parse("http://h:1/api").unwrap();
        let key = KeyGen::new(&KeySpec {
            dist: Dist::Uniform,
            n: Some(62),
            s: None,
            format: KeyFormat::Base62,
            width: 2,
            offset: 0,
        })
        .unwrap();
        let names = BTreeMap::from([("c".to_owned(), 0)]);
        let keys = vec![key];
        let mk = |name: &str, weight, path: &str, body: Option<&str>| {
            RequestKind::build(
                &target,
                "/api",
                KindParts {
                    name: name.to_owned(),
                    weight,
                    method: if body.is_some() { "POST" } else { "GET" }.to_owned(),
                    path: Template::compile(path, &names).unwrap(),
                    headers: vec![(
                        "x-code".to_owned(),
                        Template::compile("c-{c}", &names).unwrap(),
                    )],
                    body: body.map(|b| Template::compile(b, &names).unwrap()),
                    expect: None,
                },
                &keys,
            )
            .unwrap()
        };
        let kinds = vec![
            mk("get", 3, "/x/{c}", None),
            mk("post", 1, "/y", Some(r#"{"c":"{c}"}"#)),
        ];
        let w = Arc::new(
            Workload::new("t".into(), target.clone(), "/api".into(), kinds, keys).unwrap(),
        );
        let mut g = RequestGen::new(w, 9);
        let mut counts = [0u32; 2];
        for _ in 0..4000 {
            let (k, req) = g.next_request().unwrap();
            counts[k] += 1;
            let code = req.headers()["x-code"].to_str().unwrap().to_owned();
            assert_eq!(code.len(), 4);
            if k == 0 {
                assert_eq!(req.uri().path(), format!("/api/x/{}", &code[2..]));
            } else {
                assert_eq!(req.uri().path(), "/api/y");
                assert_eq!(req.headers()[CONTENT_TYPE], "application/json");
            }
        }
        let share = f64::from(counts[0]) / 4000.0;
        assert!((share - 0.75).abs() < 0.04, "{share}");
    }

    #[test]
    fn bad_kinds_are_rejected() {
        let target = Target::parse("http://h:1").unwrap();
        let names = BTreeMap::new();
        let parts = |method: &str, path: &str| KindParts {
            name: "x".into(),
            weight: 1,
            method: method.into(),
            path: Template::compile(path, &names).unwrap(),
            headers: vec![],
            body: None,
            expect: None,
        };
        assert!(matches!(
            RequestKind::build(&target, "", parts("G E T", "/"), &[]),
            Err(KindError::Method(_))
        ));
        assert!(matches!(
            RequestKind::build(&target, "", parts("GET", "no-slash"), &[]),
            Err(KindError::Path(_))
        ));
        assert!(matches!(
            RequestKind::build(&target, "", parts("GET", "/a b"), &[]),
            Err(KindError::Path(_))
        ));
    }
}

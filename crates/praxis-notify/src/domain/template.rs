//! Templates: minijinja, per channel (subject, text, html), checked at creation.
//!
//! A [`TemplateSource`] has up to three parts: `subject` (email subject, push title), `text`
//! (the plain-text body every channel can use) and `html` (the email HTML body). [`compile`]
//! parses all of them once, so a syntax error is reported when the template is created (with
//! the part, line and column), never at send time. [`CompiledTemplate::render`] then renders
//! the parts with the message's data:
//!
//! - **Strict undefined**: reading a variable the data does not have is an error naming the
//!   part, the line, the column and the variable (minijinja's `UndefinedBehavior::Strict`);
//!   `{% if x is defined %}` and `{{ x | default("...") }}` still work for optional values.
//! - **Escaping**: the `html` part is auto-escaped (HTML); `subject` and `text` are not (they
//!   are not HTML). `{{ value | safe }}` opts out in the HTML part.
//! - Text keeps a trailing newline as written. The subject is one line: line breaks become
//!   spaces and surrounding whitespace is trimmed (a header cannot hold a line break).
//! - Only the template's own parts exist: `{% include %}`/`{% extends %}` of other templates
//!   fail at render time with the part and line.
//!
//! [`CompiledTemplate::variables`] lists the top-level variables the parts read (static
//! analysis: a variable read only under `{% if x is defined %}` is listed as well), without
//! minijinja's global functions (`range`, `dict`, `namespace`, ...). The API uses it to reject
//! a send whose data lacks a variable before queueing it.

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// The source of a template, as stored and as sent to the API.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TemplateSource {
    /// Subject line (email) or title (push, in-app); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Plain-text body.
    pub text: String,
    /// HTML body (email); optional, auto-escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// A rendered template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The subject (empty when the template has none), one line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body, when the template has one.
    pub html: Option<String>,
}

/// A template that failed to compile or render.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// Which part: `"subject"`, `"text"`, `"html"` (or `"data"` when the data is not an
    /// object).
    pub part: &'static str,
    /// 1-based line in that part, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) in that part, when known.
    pub column: Option<usize>,
    /// What is wrong, e.g. `syntax error: unexpected end of input` or `undefined variable
    /// "name"`.
    pub detail: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.part)?;
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, " line {l} column {c}")?,
            (Some(l), None) => write!(f, " line {l}")?,
            _ => {}
        }
        write!(f, ": {}", self.detail)
    }
}

/// A compiled template: cheap to clone (shared), safe to use from many tasks.
#[derive(Clone)]
pub struct CompiledTemplate {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    env: Environment<'static>,
    /// `(part, source)` for the parts this template has.
    sources: Vec<(&'static str, String)>,
    variables: BTreeSet<String>,
}

impl fmt::Debug for CompiledTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledTemplate")
            .field("name", &self.inner.name)
            .field(
                "parts",
                &self
                    .inner
                    .sources
                    .iter()
                    .map(|(p, _)| *p)
                    .collect::<Vec<_>>(),
            )
            .field("variables", &self.inner.variables)
            .finish()
    }
}

/// Compiles every part of `source`; `name` is for logs and `Debug` only.
pub fn compile(name: &str, source: &TemplateSource) -> Result<CompiledTemplate, TemplateError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| TemplateError {
            part: "text",
            line: None,
            column: None,
            detail: e.to_string(),
        })?;
    env.set_syntax(syntax);
    // Spans in errors (line and column), also in release builds.
    env.set_debug(true);
    env.set_auto_escape_callback(|part| {
        if part == "html" {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    let mut sources = Vec::new();
    for (part, src) in [
        ("subject", source.subject.as_deref()),
        ("text", Some(source.text.as_str())),
        ("html", source.html.as_deref()),
    ] {
        let Some(src) = src else { continue };
        env.add_template_owned(part, src.to_owned())
            .map_err(|e| error_from(part, src, &e))?;
        sources.push((part, src.to_owned()));
    }
    let globals: BTreeSet<String> = env.globals().map(|(k, _)| k.to_owned()).collect();
    let mut variables = BTreeSet::new();
    for (part, _) in &sources {
        let tmpl = env.get_template(part).map_err(|e| TemplateError {
            part,
            line: None,
            column: None,
            detail: e.to_string(),
        })?;
        variables.extend(
            tmpl.undeclared_variables(false)
                .into_iter()
                .filter(|v| !globals.contains(v)),
        );
    }
    Ok(CompiledTemplate {
        inner: Arc::new(Inner {
            name: name.to_owned(),
            env,
            sources,
            variables,
        }),
    })
}

impl CompiledTemplate {
    /// The name given to [`compile`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether the template has an HTML part.
    pub fn has_html(&self) -> bool {
        self.inner.sources.iter().any(|(p, _)| *p == "html")
    }

    /// Whether the template has a subject part.
    pub fn has_subject(&self) -> bool {
        self.inner.sources.iter().any(|(p, _)| *p == "subject")
    }

    /// The top-level variables the parts read (see the [module docs](self)).
    pub fn variables(&self) -> BTreeSet<String> {
        self.inner.variables.clone()
    }

    /// Renders every part with `data`, which must be a JSON object (or `null` for a template
    /// without variables).
    pub fn render(&self, data: &serde_json::Value) -> Result<Rendered, TemplateError> {
        let ctx = match data {
            serde_json::Value::Object(_) | serde_json::Value::Null => to_value(data),
            other => {
                return Err(TemplateError {
                    part: "data",
                    line: None,
                    column: None,
                    detail: format!("data must be a JSON object, not {}", json_kind(other)),
                });
            }
        };
        let mut out = Rendered {
            subject: String::new(),
            text: String::new(),
            html: None,
        };
        for (part, src) in &self.inner.sources {
            let rendered = self
                .inner
                .env
                .get_template(part)
                .and_then(|t| t.render(ctx.clone()))
                .map_err(|e| error_from(part, src, &e))?;
            match *part {
                "subject" => out.subject = one_line(&rendered),
                "text" => out.text = rendered,
                _ => out.html = Some(rendered),
            }
        }
        Ok(out)
    }
}

/// Collapses a rendered subject to one trimmed line.
fn one_line(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// JSON to a minijinja value (minijinja's `serde` feature is not enabled in the workspace).
fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(to_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// Line and column (1-based, in characters) of byte `offset` in `src`.
fn line_column(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let mut offset = offset;
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn error_from(part: &'static str, src: &str, e: &minijinja::Error) -> TemplateError {
    let range = e.range();
    let (line, column) = match range.clone() {
        Some(r) => {
            let (l, c) = line_column(src, r.start);
            (Some(l), Some(c))
        }
        None => (e.line(), None),
    };
    let what = e
        .detail()
        .map(str::to_owned)
        .unwrap_or_else(|| e.kind().to_string());
    let detail = match e.kind() {
        ErrorKind::SyntaxError => format!("syntax error: {what}"),
        ErrorKind::UndefinedError => {
            let expr = range.and_then(|r| src.get(r)).map(str::trim);
            match expr.and_then(variable_of) {
                Some(var) => format!("undefined variable \"{var}\""),
                None => match expr {
                    Some(expr) => format!("undefined value in \"{expr}\""),
                    None => "undefined value".to_owned(),
                },
            }
        }
        _ => what,
    };
    TemplateError {
        part,
        line,
        column,
        detail,
    }
}

/// The variable path an undefined error's expression starts with (`user.name` in
/// `user.name | upper`), when the expression is a plain lookup.
fn variable_of(expr: &str) -> Option<String> {
    let path: String = expr
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    let path = path.trim_end_matches('.');
    let first = path.chars().next()?;
    (first.is_alphabetic() || first == '_').then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn src(subject: Option<&str>, text: &str, html: Option<&str>) -> TemplateSource {
        TemplateSource {
            subject: subject.map(str::to_owned),
            text: text.to_owned(),
            html: html.map(str::to_owned),
        }
    }

    #[test]
    fn renders_every_part() {
        let t = compile(
            "welcome",
            &src(
                Some("Hello {{ name }}"),
                "Hi {{ name }},\nyou have {{ count }} new messages.\n",
                Some("<p>Hi {{ name }}</p>"),
            ),
        )
        .expect("compiles");
        let r = t
            .render(&json!({"name": "Ada", "count": 3}))
            .expect("renders");
        assert_eq!(r.subject, "Hello Ada");
        assert_eq!(r.text, "Hi Ada,\nyou have 3 new messages.\n");
        assert_eq!(r.html.as_deref(), Some("<p>Hi Ada</p>"));
        assert!(t.has_html() && t.has_subject());
        assert_eq!(t.name(), "welcome");
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let t = compile(
            "x",
            &src(
                Some("{{ v }}"),
                "{{ v }}",
                Some("<b>{{ v }}</b>{{ v | safe }}"),
            ),
        )
        .expect("compiles");
        let r = t
            .render(&json!({"v": "<a href=\"x\">&</a>"}))
            .expect("renders");
        assert_eq!(r.text, "<a href=\"x\">&</a>");
        assert_eq!(r.subject, "<a href=\"x\">&</a>");
        assert_eq!(
            r.html.as_deref(),
            Some("<b>&lt;a href=&quot;x&quot;&gt;&amp;&lt;&#x2f;a&gt;</b><a href=\"x\">&</a>")
        );
    }

    #[test]
    fn syntax_errors_name_part_line_and_column() {
        let e = compile("x", &src(None, "line one\nab {{ name ", None)).expect_err("bad syntax");
        assert_eq!(e.part, "text");
        assert_eq!(e.line, Some(2));
        assert!(e.column.is_some(), "{e:?}");
        assert!(e.detail.starts_with("syntax error"), "{e}");

        let e = compile("x", &src(Some("ok"), "ok", Some("<p>\n\n  {% if %}</p>")))
            .expect_err("bad syntax");
        assert_eq!(e.part, "html");
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().starts_with("html line 3 column "), "{e}");

        let e = compile("x", &src(Some("{% for %}"), "ok", None)).expect_err("bad syntax");
        assert_eq!(e.part, "subject");
    }

    #[test]
    fn a_missing_variable_is_an_error_naming_it() {
        let t = compile(
            "x",
            &src(
                Some("Hi"),
                "Hello {{ name }}\n\nTotal: {{ order.total }}",
                None,
            ),
        )
        .expect("compiles");
        let e = t.render(&json!({})).expect_err("missing");
        assert_eq!(e.part, "text");
        assert_eq!(e.line, Some(1));
        assert_eq!(e.column, Some(10));
        assert_eq!(e.detail, "undefined variable \"name\"");

        let e = t
            .render(&json!({"name": "x", "order": {}}))
            .expect_err("missing");
        assert_eq!((e.line, e.column), (Some(3), Some(11)), "{e}");
        assert_eq!(e.detail, "undefined variable \"order.total\"");
    }

    #[test]
    fn optional_values_still_work() {
        let t = compile(
            "x",
            &src(None, "{% if nick is defined %}{{ nick }}{% else %}{{ name | default(\"you\") }}{% endif %}", None),
        )
        .expect("compiles");
        assert_eq!(t.render(&json!({"nick": "n"})).expect("renders").text, "n");
        assert_eq!(t.render(&json!({})).expect("renders").text, "you");
    }

    #[test]
    fn variables_are_the_top_level_reads_without_globals() {
        let t = compile(
            "x",
            &src(
                Some("{{ a }}"),
                "{% for i in range(3) %}{{ b.c }}{{ i }}{{ loop.index }}{% endfor %}{% set d = e %}{{ d }}{% macro m(x) %}{{ x }}{% endmacro %}{{ m(1) }}",
                Some("{{ f | upper }}{{ loop_var }}"),
            ),
        )
        .expect("compiles");
        let expected: BTreeSet<String> = ["a", "b", "e", "f", "loop_var"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(t.variables(), expected);
    }

    #[test]
    fn data_must_be_an_object() {
        let t = compile("x", &src(None, "static", None)).expect("compiles");
        assert_eq!(
            t.render(&serde_json::Value::Null).expect("renders").text,
            "static"
        );
        let e = t.render(&json!([1])).expect_err("not an object");
        assert_eq!(e.part, "data");
        assert_eq!(
            e.to_string(),
            "data: data must be a JSON object, not an array"
        );
    }

    #[test]
    fn json_values_convert() {
        let t = compile(
            "x",
            &src(
                None,
                "{{ n }} {{ f }} {{ b }} {{ l | join(\",\") }} {{ o.k }} {{ big }} {{ z is none }}",
                None,
            ),
        )
        .expect("compiles");
        let r = t
            .render(&json!({"n": -3, "f": 1.5, "b": true, "l": [1, "x"], "o": {"k": "v"}, "big": u64::MAX, "z": null}))
            .expect("renders");
        // minijinja 3 prints booleans the Python way.
        assert_eq!(r.text, format!("-3 1.5 True 1,x v {} True", u64::MAX));
    }

    #[test]
    fn the_subject_is_one_line() {
        let t = compile("x", &src(Some("  a\n{{ b }}\r\n"), "t", None)).expect("compiles");
        assert_eq!(
            t.render(&json!({"b": "c"})).expect("renders").subject,
            "a c"
        );
        assert!(!t.has_html());
    }

    #[test]
    fn compiled_templates_are_shareable() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<CompiledTemplate>();
    }

    #[test]
    fn source_round_trips_as_json() {
        let s: TemplateSource = serde_json::from_value(json!({"text": "t"})).expect("parses");
        assert_eq!(s, src(None, "t", None));
        assert_eq!(
            serde_json::to_value(&s).expect("serializes"),
            json!({"text": "t"})
        );
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncdé{{", 7), (2, 4));
        assert_eq!(line_column("", 5), (1, 1));
    }
}

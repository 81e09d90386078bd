//! Text templates with `{name}` placeholders, compiled once into literal and key segments so
//! rendering is a few appends into a reused buffer.
//!
//! A placeholder is `{` + an identifier (`[A-Za-z_][A-Za-z0-9_]*`) + `}`; any other brace is
//! literal, so JSON bodies need no escaping. `{{` is a literal `{` for the rare identifier-like
//! text that must stay as is.

use std::collections::BTreeMap;

/// A placeholder names no defined key generator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown placeholder `{{{name}}}` (defined keys: {known})")]
pub struct TemplateError {
    /// The placeholder's name.
    pub name: String,
    /// The names that are defined, comma separated.
    pub known: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Key(usize),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Compiles `text`; `keys` maps placeholder names to generator indices.
    pub fn compile(text: &str, keys: &BTreeMap<String, usize>) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(pos) = rest.find('{') {
            literal.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(stripped) = after.strip_prefix('{') {
                literal.push('{');
                rest = stripped;
                continue;
            }
            match placeholder(after) {
                Some(name) => {
                    let Some(&index) = keys.get(name) else {
                        return Err(TemplateError {
                            name: name.to_owned(),
                            known: keys.keys().cloned().collect::<Vec<_>>().join(", "),
                        });
                    };
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Key(index));
                    rest = &after[name.len() + 1..];
                }
                None => {
                    literal.push('{');
                    rest = after;
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Template { segments })
    }

    /// True when the template has no placeholder (render it once and reuse the result).
    pub fn is_static(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// The generator indices the template uses, in order of appearance (may repeat).
    pub fn keys(&self) -> impl Iterator<Item = usize> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Key(i) => Some(*i),
            Segment::Literal(_) => None,
        })
    }

    /// Appends the rendered text to `out`; `write_key(index, out)` writes generator `index`'s
    /// current value.
    pub fn render_with(&self, out: &mut String, mut write_key: impl FnMut(usize, &mut String)) {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Key(i) => write_key(*i, out),
            }
        }
    }

    /// The template's text when it is static.
    pub fn static_text(&self) -> Option<String> {
        if !self.is_static() {
            return None;
        }
        let mut out = String::new();
        self.render_with(&mut out, |_, _| {});
        Some(out)
    }
}

/// The identifier at the start of `s` if it is followed by `}`.
fn placeholder(s: &str) -> Option<&str> {
    let end = s.find('}')?;
    let name = &s[..end];
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    if chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Some(name)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> BTreeMap<String, usize> {
        BTreeMap::from([("key".to_owned(), 0), ("n".to_owned(), 1)])
    }

    fn render(t: &Template, values: &[u64]) -> String {
        let mut out = String::new();
        t.render_with(&mut out, |i, out| out.push_str(&values[i].to_string()));
        out
    }

    #[test]
    fn renders_placeholders() {
        let t = Template::compile("/k{key}/x{n}{key}", &keys()).unwrap();
        assert!(!t.is_static());
        assert_eq!(render(&t, &[7, 9]), "/k7/x97");
        assert_eq!(t.keys().collect::<Vec<_>>(), vec![0, 1, 0]);
    }

    #[test]
    fn json_braces_are_literal() {
        let t = Template::compile(r#"{"url": "https://e.com/{n}", "x": {}}"#, &keys()).unwrap();
        assert_eq!(
            render(&t, &[0, 5]),
            r#"{"url": "https://e.com/5", "x": {}}"#
        );
    }

    #[test]
    fn escaped_brace() {
        let t = Template::compile("a{{key}b", &keys()).unwrap();
        assert!(t.is_static());
        assert_eq!(t.static_text().unwrap(), "a{key}b");
    }

    #[test]
    fn unknown_placeholder_is_named() {
        let e = Template::compile("/x/{nope}", &keys()).unwrap_err();
        assert_eq!(e.name, "nope");
        assert!(e.to_string().contains("{nope}"), "{e}");
        assert!(e.to_string().contains("key, n"), "{e}");
    }

    #[test]
    fn static_template() {
        let t = Template::compile("/healthz", &keys()).unwrap();
        assert_eq!(t.static_text().as_deref(), Some("/healthz"));
        let t = Template::compile("", &keys()).unwrap();
        assert_eq!(t.static_text().as_deref(), Some(""));
    }
}

//! Extractors that wrap axum's and turn every rejection into a [`Problem`] that names what is
//! wrong: malformed JSON with its line and column (400 `malformed-json`), a wrong or missing
//! content type (415), a body over the limit (413), a field of the wrong type or a missing field
//! (400 `validation` naming the field), a bad query or path parameter (400 `validation` naming
//! the parameter).

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::problem::{FieldError, Problem};

/// JSON request body (`application/json` or `application/*+json`) and JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Query string parameters, deserialized with `serde_urlencoded`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

/// Path parameters of the matched route.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_json_content_type(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::payload_too_large("the request body is larger than the server accepts")
            } else {
                Problem::bad_request("unreadable-body", rejection.body_text())
            }
        })?;
        json_from_slice(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(128);
        match serde_json::to_writer(&mut buf, &self.0) {
            Ok(()) => {
                let mut res = Response::new(Body::from(buf));
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                res
            }
            Err(e) => Problem::internal(format_args!("response serialization failed: {e}"))
                .into_response(),
        }
    }
}

/// 415 unless the content type is `application/json` or `application/<something>+json`.
fn check_json_content_type(headers: &HeaderMap) -> Result<(), Problem> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(Problem::unsupported_media_type(
            "missing content-type header: send the body as application/json",
        ));
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    let (kind, subtype) = essence.split_once('/').unwrap_or(("", ""));
    let ok = kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.to_ascii_lowercase().ends_with("+json"));
    if ok {
        Ok(())
    } else {
        Err(Problem::unsupported_media_type(format!(
            "content-type {:?} is not supported: send the body as application/json",
            truncate(text)
        )))
    }
}

/// Deserializes a JSON document, mapping errors to problems: syntax errors name the line and
/// column, data errors name the field.
///
/// A number with a zero fraction (`3.0`) is the integer it equals, as JSON Schema counts it:
/// when a document has one where an integer is expected, it is read again with such numbers
/// made integers (the common case, without them, is read once).
///
/// Request bodies are JSON objects: a top-level array is refused (serde would otherwise read a
/// struct from the array of its field values, `[null, null]`).
pub fn json_from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Problem::validation(vec![FieldError::new(
            "body",
            "must be a JSON object, not an array",
        )]));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => value,
        Err(e)
            if e.inner()
                .to_string()
                .starts_with("invalid type: floating point") =>
        {
            return integral_floats_as_integers(bytes).ok_or_else(|| {
                let path = e.path().to_string();
                json_problem(e.inner(), &path)
            })?;
        }
        Err(e) => {
            let path = e.path().to_string();
            return Err(json_problem(e.inner(), &path));
        }
    };
    de.end().map_err(|e| json_problem(&e, "."))?;
    Ok(value)
}

/// `bytes` read with every integral float (`3.0`, `-1e2`) turned into an integer; `None` when
/// that changes nothing or the result still does not deserialize (the caller reports the
/// original error).
fn integral_floats_as_integers<T: DeserializeOwned>(bytes: &[u8]) -> Option<Result<T, Problem>> {
    fn fix(v: &mut serde_json::Value) -> bool {
        use serde_json::Value;
        match v {
            Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "checked: integral and in range"
                )]
                if f.fract() == 0.0
                    && (-9.007_199_254_740_992e15..=9.007_199_254_740_992e15).contains(&f)
                {
                    *v = Value::from(f as i64);
                    return true;
                }
                false
            }
            // Every item is visited (no short circuit): each integral float is fixed.
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= fix(item);
                }
                changed
            }
            Value::Object(map) => {
                let mut changed = false;
                for item in map.values_mut() {
                    changed |= fix(item);
                }
                changed
            }
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if !fix(&mut value) {
        return None;
    }
    let text = serde_json::to_vec(&value).ok()?;
    let mut de = serde_json::Deserializer::from_slice(&text);
    Some(serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_problem(e.inner(), &path)
    }))
}

fn json_problem(e: &serde_json::Error, path: &str) -> Problem {
    use serde_json::error::Category;
    let message = strip_position(e);
    match e.classify() {
        Category::Data => {
            let field = field_name(path, &message).unwrap_or_else(|| "body".to_owned());
            let mut p = Problem::validation(vec![FieldError::new(field, message)]);
            p.detail = format!("{} at line {} column {}", p.detail, e.line(), e.column());
            p
        }
        Category::Eof if e.line() == 1 && e.column() == 0 => Problem::bad_request(
            "malformed-json",
            "the request body is empty: send a JSON document",
        ),
        Category::Syntax | Category::Eof | Category::Io => Problem::bad_request(
            "malformed-json",
            format!(
                "malformed JSON at line {} column {}: {message}",
                e.line(),
                e.column()
            ),
        ),
    }
}

/// serde_json's message without its " at line L column C" suffix.
fn strip_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix)
        .map(str::to_owned)
        .unwrap_or(full)
}

/// The failing field: the serde path, extended by the name in a "missing field `x`" message
/// (reported at the parent's path); an unknown field's path already ends with its name.
fn field_name(path: &str, message: &str) -> Option<String> {
    let backticked = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    match (path, backticked("missing field `")) {
        (".", Some(name)) => Some(name),
        (".", None) => backticked("unknown field `"),
        (p, Some(name)) => Some(format!("{p}.{name}")),
        (p, None) => Some(p.to_owned()),
    }
}

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        query_from_str(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// Deserializes a query string, naming the failing parameter.
pub fn query_from_str<T: DeserializeOwned>(query: &str) -> Result<T, Problem> {
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let message = e.inner().to_string();
        let field = field_name(&e.path().to_string(), &message).unwrap_or_else(|| "query".into());
        let mut p = Problem::validation(vec![FieldError::new(field.clone(), message.clone())]);
        p.detail = format!("invalid query parameter {field}: {message}");
        p
    })
}

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rejection) => Err(path_problem(rejection)),
        }
    }
}

fn path_problem(rejection: PathRejection) -> Problem {
    use axum::extract::path::ErrorKind;
    let PathRejection::FailedToDeserializePathParams(e) = rejection else {
        // MissingPathParams: the handler was mounted on a route without parameters.
        return Problem::internal(rejection.body_text());
    };
    let field = |field: String, message: String| {
        let mut p = Problem::validation(vec![FieldError::new(field.clone(), message.clone())]);
        p.detail = format!("invalid path parameter {field}: {message}");
        p
    };
    match e.kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => field(
            key.clone(),
            format!("expected {expected_type}, got {:?}", truncate(value)),
        ),
        ErrorKind::ParseErrorAtIndex {
            index,
            value,
            expected_type,
        } => field(
            index.to_string(),
            format!("expected {expected_type}, got {:?}", truncate(value)),
        ),
        ErrorKind::ParseError {
            value,
            expected_type,
        } => field(
            "path".into(),
            format!("expected {expected_type}, got {:?}", truncate(value)),
        ),
        ErrorKind::InvalidUtf8InPathParam { key } => {
            field(key.clone(), "not valid UTF-8 once percent-decoded".into())
        }
        ErrorKind::DeserializeError { key, message, .. } => field(key.clone(), message.clone()),
        ErrorKind::WrongNumberOfParameters { .. } | ErrorKind::UnsupportedType { .. } => {
            Problem::internal(e.body_text())
        }
        _ => Problem::bad_request("invalid-path", e.body_text()),
    }
}

/// At most 64 characters of client input, for echoing it in a problem.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Link {
        url: String,
        tags: Vec<Tag>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Tag {
        name: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Counts {
        seq: i64,
        limit: Option<u32>,
    }

    #[test]
    fn integral_floats_are_integers_and_other_floats_are_not() {
        let c: Counts = json_from_slice(br#"{"seq": 3.0, "limit": 1e2}"#).expect("integral");
        assert_eq!(
            c,
            Counts {
                seq: 3,
                limit: Some(100)
            }
        );
        let p = json_from_slice::<Counts>(br#"{"seq": 3.5}"#).expect_err("a fraction");
        assert_eq!(p.errors[0].field, "seq");
        let p = json_from_slice::<Counts>(br#"{"seq": 1.0, "limit": -1.0}"#).expect_err("range");
        assert_eq!(p.errors[0].field, "limit");
    }

    #[test]
    fn a_body_is_an_object_not_an_array_of_field_values() {
        let p = json_from_slice::<Counts>(b" [3, null]").expect_err("array");
        assert_eq!(p.errors[0].field, "body");
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let p = json_from_slice::<Link>(b"{\n  \"url\": ").expect_err("malformed");
        assert_eq!(p.slug(), "malformed-json");
        assert!(p.detail.contains("line 2"), "{}", p.detail);
        let p = json_from_slice::<Link>(b"").expect_err("empty");
        assert!(p.detail.contains("empty"), "{}", p.detail);
        let p = json_from_slice::<serde_json::Value>(b"{} x").expect_err("trailing");
        assert_eq!(p.slug(), "malformed-json");
    }

    #[test]
    fn wrong_type_names_the_nested_field() {
        let p = json_from_slice::<Link>(br#"{"url":"x","tags":[{"name":"a"},{"name":3}]}"#)
            .expect_err("wrong type");
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert_eq!(p.errors[0].field, "tags[1].name");
        assert!(
            p.errors[0].message.contains("expected a string"),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let p = json_from_slice::<Link>(br#"{"tags":[]}"#).expect_err("missing");
        assert_eq!(p.errors[0].field, "url");
        let p = json_from_slice::<Link>(br#"{"url":"x","tags":[{}]}"#).expect_err("missing nested");
        assert_eq!(p.errors[0].field, "tags[0].name");
        let p = json_from_slice::<Link>(br#"{"url":"x","tags":[],"x":1}"#).expect_err("unknown");
        assert_eq!(p.errors[0].field, "x");
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert_eq!(
            check_json_content_type(&h).expect_err("missing").status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/merge-patch+JSON",
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ok));
            assert!(check_json_content_type(&h).is_ok(), "{ok}");
        }
        for bad in ["text/json", "text/plain", "application/jsonx", ""] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(bad));
            assert!(check_json_content_type(&h).is_err(), "{bad}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Page {
        limit: Option<u32>,
        q: String,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let p = query_from_str::<Page>("q=a&limit=ten").expect_err("bad limit");
        assert_eq!(p.errors[0].field, "limit");
        let p = query_from_str::<Page>("limit=1").expect_err("missing q");
        assert_eq!(p.errors[0].field, "q");
        let ok = query_from_str::<Page>("q=a%20b&limit=3").expect("valid");
        assert_eq!((ok.q.as_str(), ok.limit), ("a b", Some(3)));
    }

    #[test]
    fn truncate_keeps_char_boundaries() {
        let long = "é".repeat(100);
        assert_eq!(truncate(&long).chars().count(), 64);
        assert_eq!(truncate("abc"), "abc");
    }
}

//! RFC 9457 problem details (`application/problem+json`): the one error shape of every praxis API.
//!
//! A [`Problem`] renders itself as a response at once, and also rides along in the response
//! extensions; the request stack ([`crate::stack`]) uses that copy to add the request id and
//! re-renders the body, so handlers never need to know their request id to report an error.

use std::fmt;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use praxis_infra::InfraError;
use serde::Serialize;

/// Media type of problem responses.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type` URI; the slug follows.
pub const TYPE_PREFIX: &str = "https://praxis.dev/problems/";

/// One failing input field of a validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Where the value is: a JSON path (`items[2].url`), a query or path parameter, or a header.
    pub field: String,
    /// What is wrong with it, in lowercase prose.
    pub message: String,
}

impl FieldError {
    /// A field error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// RFC 9457 body; served as `application/problem+json`. `type` is
/// `https://praxis.dev/problems/<slug>` and is stable: clients may match on it.
///
/// Kinds of problems (slug and title) are a closed vocabulary, hence `&'static str`; that also
/// keeps `Result<_, Problem>` small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Kind of problem; serialized as the `type` URI (prefix + slug).
    #[serde(rename = "type", serialize_with = "serialize_type")]
    #[schema(value_type = String, example = "https://praxis.dev/problems/validation")]
    pub slug: &'static str,
    /// Short summary of the kind of problem; the same for every occurrence.
    #[schema(value_type = String, example = "Invalid input")]
    pub title: &'static str,
    /// HTTP status code, repeated in the body.
    #[serde(serialize_with = "serialize_status")]
    #[schema(value_type = u16, example = 400)]
    pub status: StatusCode,
    /// What went wrong this time, for a human.
    pub detail: String,
    /// Failing fields, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Id of the request, as echoed in `x-request-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Seconds to send as `Retry-After` (not part of the body).
    #[serde(skip)]
    #[schema(ignore)]
    pub retry_after: Option<u32>,
}

fn serialize_status<S: serde::Serializer>(s: &StatusCode, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_u16(s.as_u16())
}

fn serialize_type<S: serde::Serializer>(slug: &&'static str, ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_str(&format_args!("{TYPE_PREFIX}{slug}"))
}

impl Problem {
    /// A problem of kind `slug` (`type` becomes `https://praxis.dev/problems/<slug>`).
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            slug,
            title,
            status,
            detail: detail.into(),
            errors: Vec::new(),
            request_id: None,
            retry_after: None,
        }
    }

    /// 400 `validation` listing the failing fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("invalid {}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        let mut p = Self::new(
            StatusCode::BAD_REQUEST,
            "validation",
            "Invalid input",
            detail,
        );
        p.errors = errors;
        p
    }

    /// 400 `validation` for one failing field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 400 of kind `slug`.
    pub fn bad_request(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, slug, "Bad request", detail)
    }

    /// 404 `not-found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 409 of kind `slug`.
    pub fn conflict(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, slug, "Conflict", detail)
    }

    /// 410 `gone`.
    pub fn gone(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "gone", "Gone", detail)
    }

    /// 401 `unauthorized`; the response carries `WWW-Authenticate: Bearer`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 413 `payload-too-large`.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            detail,
        )
    }

    /// 415 `unsupported-media-type`.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }

    /// 503 `unavailable`: a dependency is down or the server is overloaded; retrying later may work.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
    }

    /// 500 `internal`. The error is logged, not shown: clients see a generic detail.
    pub fn internal(err: impl fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "the server failed to handle the request; it has been logged",
        )
    }

    /// The generic problem for a bare error status (used for empty 404/405/... responses).
    pub fn from_status(status: StatusCode) -> Self {
        let reason = status.canonical_reason().unwrap_or("Error");
        let slug = match status {
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::INTERNAL_SERVER_ERROR => "internal",
            s if s.is_client_error() => "client-error",
            _ => "server-error",
        };
        let detail = match status {
            StatusCode::NOT_FOUND => "no resource at this path".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED => {
                "this path does not accept this method; see the Allow header".to_owned()
            }
            _ => reason.to_ascii_lowercase(),
        };
        Self::new(status, slug, reason, detail)
    }

    /// Adds one failing field.
    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError::new(field, message));
        self
    }

    /// Asks the client to wait `secs` seconds before retrying (`Retry-After`).
    pub fn with_retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Sets the request id shown in the body.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The slug at the end of `type`.
    pub fn slug(&self) -> &'static str {
        self.slug
    }

    /// The full `type` URI.
    pub fn type_uri(&self) -> String {
        format!("{TYPE_PREFIX}{}", self.slug)
    }

    /// Serialized body; a `Problem` always serializes (plain strings and numbers).
    fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"status":500,"type":"https://praxis.dev/problems/internal","title":"Internal server error","detail":"problem serialization failed"}"#.to_vec()
        })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.slug(),
            self.detail
        )
    }
}

impl std::error::Error for Problem {}

/// The one answer to a failed dependency: 503 `unavailable` naming it when retrying may help
/// (the failure is logged as a warning), 500 `internal` otherwise (logged, not shown).
impl From<InfraError> for Problem {
    fn from(e: InfraError) -> Self {
        if !e.is_transient() {
            return Problem::internal(e);
        }
        tracing::warn!(error = %e, "dependency unavailable");
        let what = match &e {
            InfraError::Sql(_) => "database",
            InfraError::Redis(_) => "redis",
            InfraError::Nats { .. } => "nats",
            _ => "internal",
        };
        Problem::unavailable(format!("a dependency is unavailable ({what}); retry later"))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::from(self.body()));
        *res.status_mut() = self.status;
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(self);
        res
    }
}

/// Gives a problem response the request id: re-renders the body when the [`Problem`] in the
/// extensions has none yet. Also turns a bare error response (status >= 400, no content type,
/// empty body, e.g. axum's 405) into the generic problem for its status, keeping its headers.
pub(crate) fn finish(mut res: Response, request_id: Option<&HeaderValue>) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let id = request_id.and_then(|v| v.to_str().ok());
    if let Some(p) = res.extensions_mut().get_mut::<Problem>() {
        if p.request_id.is_some() || id.is_none() {
            return res;
        }
        p.request_id = id.map(str::to_owned);
        let body = p.body();
        *res.body_mut() = Body::from(body);
        res.headers_mut().remove(header::CONTENT_LENGTH);
        return res;
    }
    let bare = !res.headers().contains_key(header::CONTENT_TYPE)
        && axum::body::HttpBody::size_hint(res.body()).exact() == Some(0);
    if !bare {
        return res;
    }
    let mut p = Problem::from_status(status);
    p.request_id = id.map(str::to_owned);
    let (parts, _) = res.into_parts();
    let mut fresh = p.into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_LENGTH {
            fresh
                .headers_mut()
                .entry(name)
                .or_insert_with(|| value.clone());
        }
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_rfc9457() {
        let p = Problem::validation(vec![FieldError::new("url", "must be absolute")])
            .with_request_id("r1");
        let v: serde_json::Value = serde_json::to_value(&p).expect("serializes");
        assert_eq!(v["status"], 400);
        assert_eq!(v["type"], "https://praxis.dev/problems/validation");
        assert_eq!(v["title"], "Invalid input");
        assert_eq!(v["detail"], "invalid url: must be absolute");
        assert_eq!(v["errors"][0]["field"], "url");
        assert_eq!(v["request_id"], "r1");
        assert_eq!(p.slug(), "validation");
    }

    #[test]
    fn stays_small_enough_for_results() {
        // clippy's result_large_err fires at 128 bytes; every handler returns Result<_, Problem>.
        assert!(std::mem::size_of::<Problem>() < 128);
    }

    #[test]
    fn omits_empty_fields() {
        let v = serde_json::to_value(Problem::not_found("no link")).expect("serializes");
        assert!(v.get("errors").is_none());
        assert!(v.get("request_id").is_none());
    }

    #[test]
    fn response_has_media_type_and_auth_challenge() {
        let res = Problem::unauthorized("bad key").into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert!(res.extensions().get::<Problem>().is_some());
    }

    #[test]
    fn infra_errors_name_the_dependency_or_hide_the_error() {
        let down = Problem::from(InfraError::from(sqlx::Error::PoolTimedOut));
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.slug(), "unavailable");
        assert_eq!(
            down.detail,
            "a dependency is unavailable (database); retry later"
        );
        let bug = Problem::from(InfraError::Codec("secret column".into()));
        assert_eq!(bug.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!bug.detail.contains("secret"));
    }

    #[test]
    fn retry_after_is_a_header() {
        let res = Problem::unavailable("later")
            .with_retry_after(7)
            .into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn internal_hides_the_error() {
        let p = Problem::internal("db password is hunter2");
        assert!(!p.detail.contains("hunter2"));
        assert_eq!(p.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn finish_converts_bare_errors_and_keeps_headers() {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        let id = HeaderValue::from_static("abc");
        let res = finish(res, Some(&id));
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(res.headers()[header::ALLOW], "GET,HEAD");
        let p = res.extensions().get::<Problem>().expect("problem attached");
        assert_eq!(p.slug(), "method-not-allowed");
        assert_eq!(p.request_id.as_deref(), Some("abc"));
    }

    #[test]
    fn finish_leaves_success_alone() {
        let res = finish(Response::new(Body::empty()), None);
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get(header::CONTENT_TYPE).is_none());
    }
}

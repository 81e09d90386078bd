//! The public redirect route.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use praxis_http::{Path, Problem};

use super::{AppState, TAG};
use crate::domain::agent::{classify, referrer_host};
use crate::domain::days::now_ms;
use crate::domain::visits::Visit;
use crate::error::ShortenerError;
use crate::workers::hot::Resolution;

/// Follow a short link (`GET` and `HEAD`).
///
/// Redirects with the link's status (301 by default, or 302/307) and `Location`. `Cache-Control`
/// is `private, max-age=90` for links without expiry or visit limit and `no-store` for the
/// others. The query string is appended to the target when the link forwards it. `HEAD` answers
/// the same without counting a visit.
#[utoipa::path(
    get,
    path = "/{code}",
    tag = TAG,
    params(("code" = String, Path, description = "The link's code")),
    responses(
        (status = 301, description = "Moved permanently", headers(("Location" = String), ("Cache-Control" = String))),
        (status = 302, description = "Found", headers(("Location" = String), ("Cache-Control" = String))),
        (status = 307, description = "Temporary redirect", headers(("Location" = String), ("Cache-Control" = String))),
        (status = 404, description = "No such link", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Expired or visit limit reached", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn follow(
    State(state): State<AppState>,
    Path(code): Path<String>,
    // The request itself rather than `HeaderMap`/`Uri` extractors, which would clone them.
    request: Request,
) -> Result<Response, Problem> {
    let count = request.method() != Method::HEAD;
    let headers = request.headers();
    match state
        .inner
        .resolver
        .resolve(&code, request.uri().query(), count)
        .await
    {
        Ok(Resolution::Redirect {
            location,
            status,
            cache_control,
        }) => {
            let Ok(location) = HeaderValue::from_maybe_shared(Bytes::from(location)) else {
                return Err(Problem::internal(format_args!(
                    "stored url of {code} is not a valid header value"
                )));
            };
            if count && state.inner.visits.enabled() {
                state.inner.visits.record(Visit {
                    code,
                    at_ms: now_ms(),
                    referrer: referrer_host(header_str(headers, header::REFERER)),
                    agent: classify(header_str(headers, header::USER_AGENT)),
                });
            }
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            let mut res = status.into_response();
            let h = res.headers_mut();
            h.insert(header::LOCATION, location);
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache_control),
            );
            Ok(res)
        }
        Ok(Resolution::NotFound) => Err(Problem::not_found(format!(
            "no link with code `{}`",
            truncate(&code)
        ))),
        Ok(Resolution::Gone) => Err(ShortenerError::Gone(code).into()),
        Err(e) => Err(e.into()),
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

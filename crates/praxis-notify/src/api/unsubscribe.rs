//! The one-click unsubscribe route (RFC 8058) of the links in emails to subscribers (see
//! [`crate::domain::unsubscribe`]).
//!
//! - `POST /api/v1/notify/unsubscribe?token=...`: no credentials (the signed token is the
//!   credential); the body is ignored (mailbox providers send `List-Unsubscribe=One-Click` as
//!   a form, some send nothing). Writes the opt-out into the subscriber's preferences; 200,
//!   also when it was already written. JSON, or a short HTML page for a browser (`Accept:
//!   text/html`, the form of the GET page).
//! - `GET` of the same URL: an HTML page with a button that POSTs. A GET never unsubscribes:
//!   mail scanners and link previews fetch every link of a message.
//!
//! A malformed or tampered token is a 400 naming `token`; a valid token of a subscriber that
//! no longer exists is a 404.

use axum::extract::State;
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use praxis_http::{Json, Problem, Query};

use super::{AppState, TAG};
use crate::domain::model::now_ms;
use crate::domain::unsubscribe::{Scope, Signer};

/// Query of the unsubscribe route.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnsubscribeParams {
    /// The signed token of the link (names the subscriber and what it opts out of).
    pub token: String,
}

/// What an unsubscribe did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Unsubscribed {
    /// The subscriber.
    pub subscriber_id: String,
    /// The channel opted out of (always `email`).
    pub channel: String,
    /// The topic opted out of; absent: every email without a topic preference of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// `false` when the opt-out was already there (nothing changed).
    pub changed: bool,
}

/// The subscriber and scope of a token; 403 when it is not one we signed (malformed, tampered
/// or another secret's). The token is the link's credential: any string is a well-formed
/// request, and one that does not verify grants nothing (a missing token is a 400).
fn check(state: &AppState, token: &str) -> Result<(String, Scope), Problem> {
    Signer::new(&state.inner.settings.token_secret)
        .verify(token)
        .map_err(|e| Problem::forbidden(format!("this unsubscribe link is not valid: {e}")))
}

/// Headers of the HTML pages: not cached, not indexed, the token not leaked as a referrer,
/// no script or external resource.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_TYPE, "text/html; charset=utf-8"),
        (CACHE_CONTROL, "no-store"),
        (HeaderName::from_static("referrer-policy"), "no-referrer"),
        (HeaderName::from_static("x-robots-tag"), "noindex"),
        (
            HeaderName::from_static("content-security-policy"),
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn what(scope: &Scope) -> String {
    match scope {
        Scope::Email => "emails".to_owned(),
        Scope::Topic(t) => format!("emails about \u{201c}{}\u{201d}", escape(t)),
    }
}

fn page(title: &str, inner: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}\
         button{{font-size:1rem;padding:.5rem 1rem}}</style></head>\
         <body><h1>{title}</h1>{inner}</body></html>\n"
    )
}

/// The confirmation page of an unsubscribe link: a button that POSTs to the same URL. Never
/// unsubscribes by itself (mail scanners fetch links).
#[utoipa::path(
    get,
    path = "/api/v1/notify/unsubscribe",
    tag = TAG,
    params(UnsubscribeParams),
    responses(
        (status = 200, description = "An HTML page with a button that confirms (POST)", content_type = "text/html"),
        (status = 400, description = "No token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token we did not sign: malformed, tampered or another secret's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The subscriber no longer exists", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    Query(params): Query<UnsubscribeParams>,
) -> Result<Response, Problem> {
    let (subscriber, scope) = check(&state, &params.token)?;
    if state.inner.store.subscriber(&subscriber).await?.is_none() {
        return Err(Problem::not_found(
            "the subscriber of this link no longer exists".to_owned(),
        ));
    }
    let inner = format!(
        "<p>Stop receiving {}?</p>\
         <form method=\"post\" action=\"?token={}\">\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form>",
        what(&scope),
        escape(params.token.trim())
    );
    Ok(html(StatusCode::OK, page("Unsubscribe", &inner)))
}

/// One-click unsubscribe (RFC 8058): writes the opt-out of the link into the subscriber's
/// preferences (email overall, or the emails of the message's topic). No credentials: the
/// signed token is one. Idempotent.
#[utoipa::path(
    post,
    path = "/api/v1/notify/unsubscribe",
    tag = TAG,
    params(UnsubscribeParams),
    request_body(content = String, description = "Ignored; mailbox providers send `List-Unsubscribe=One-Click`", content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Unsubscribed (or already was); HTML for `Accept: text/html`", body = Unsubscribed),
        (status = 400, description = "No token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token we did not sign: malformed, tampered or another secret's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The subscriber no longer exists", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn unsubscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<UnsubscribeParams>,
) -> Result<Response, Problem> {
    let (subscriber, scope) = check(&state, &params.token)?;
    let changed = crate::store::opt_out::opt_out(&state.inner.store, &subscriber, &scope, now_ms())
        .await?
        .ok_or_else(|| {
            Problem::not_found("the subscriber of this link no longer exists".to_owned())
        })?;
    if changed {
        tracing::info!(subscriber_id = %subscriber, topic = ?scope.topic(), "unsubscribed from email through a one-click link");
    }
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        let inner = format!("<p>You will no longer receive {}.</p>", what(&scope));
        return Ok(html(StatusCode::OK, page("Unsubscribed", &inner)));
    }
    Ok(Json(Unsubscribed {
        subscriber_id: subscriber,
        channel: "email".to_owned(),
        topic: scope.topic().map(str::to_owned),
        changed,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert!(what(&Scope::Topic("a<b".into())).contains("a&lt;b"));
    }
}

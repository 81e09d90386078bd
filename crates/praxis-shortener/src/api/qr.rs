//! QR code route.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use praxis_http::Require;
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{FieldError, Path, Problem, Query};

use super::auth::{LinksRead, acting};
use super::dto::QrParams;
use super::{AppState, TAG};
use crate::domain::qr::{DEFAULT_SIZE, MAX_SIZE, MIN_SIZE, QrFormat, render};

/// QR code of a link's short URL, as PNG or SVG.
#[utoipa::path(
    get,
    path = "/api/v1/links/{code}/qr",
    tag = TAG,
    params(("code" = String, Path, description = "The link's code"), QrParams),
    responses(
        (status = 200, description = "The image: PNG or SVG, as `format` asks", content(
            (String = "image/png"),
            (String = "image/svg+xml"),
        )),
        (status = 400, description = "Bad format or size", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such link", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn link_qr(
    State(state): State<AppState>,
    who: Require<LinksRead>,
    Path(code): Path<String>,
    Query(params): Query<QrParams>,
) -> Result<Response, Problem> {
    let who = acting(&who);
    let mut errors = Vec::new();
    let format = match params.format.as_deref() {
        None => QrFormat::Png,
        Some(f) => QrFormat::parse(f).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "format",
                format!("must be png or svg, got {f:?}"),
            ));
            QrFormat::Png
        }),
    };
    let size = params.size.unwrap_or(DEFAULT_SIZE);
    if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
        errors.push(FieldError::new(
            "size",
            format!("must be {MIN_SIZE} to {MAX_SIZE} pixels, got {size}"),
        ));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let rec = state.links().get(who, &code).await?;
    let short = state.settings().short_url(&rec.link.code);
    let bytes = tokio::task::spawn_blocking(move || render(&short, format, size))
        .await
        .map_err(Problem::internal)?
        .map_err(Problem::internal)?;
    let mut res = bytes.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(res)
}

//! Templates: create versions, read them.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use praxis_http::Require;
use praxis_http::idempotency::{run_idempotent, to_json};
use praxis_http::pagination::{Page, PageParams, cursor_param, page_limit};
use praxis_http::responses::{Forbidden, Unauthorized, Unprocessable};
use praxis_http::{FieldError, Json, Path, Problem, Query};

use super::auth::{NotifyRead, NotifyWrite};
use super::dto::{CreateTemplate, TemplatePage, TemplateView};
use super::{AppState, TAG};
use crate::domain::address;
use crate::domain::model::now_ms;
use crate::store::templates::{TemplateVersion, check_render, compile_sources};

/// Default page size of the template list.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of the template list.
const MAX_LIMIT: u32 = 200;

/// Create a template, or a new version of it.
///
/// Every part is compiled: a syntax error is a 400 naming `channels.<channel>.<part>` with the
/// line and column. With `example_data`, every part is rendered with it: a missing variable is
/// a 400 naming the part, line, column and variable. Versions are immutable; creating the same
/// sources as the latest version answers 200 with it instead of a new version.
#[utoipa::path(
    post,
    path = "/api/v1/notify/templates",
    tag = TAG,
    request_body = CreateTemplate,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a retried create", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, description = "Created (version 1, or the next version)", body = TemplateView),
        (status = 200, description = "Identical to the latest version, which is returned", body = TemplateView),
        (status = 400, description = "Invalid template; `errors` names each part with line and column", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden, Unprocessable,
    ),
    security(("bearer" = []))
)]
pub async fn create_template(
    State(state): State<AppState>,
    who: Require<NotifyWrite>,
    headers: HeaderMap,
    Json(req): Json<CreateTemplate>,
) -> Result<Response, Problem> {
    let owner = who.subject();
    let body = serde_json::to_vec(&req).unwrap_or_default();
    run_idempotent(
        &state.inner.idempotency,
        &headers,
        &format!("notify:{owner}:POST /api/v1/notify/templates"),
        "POST /api/v1/notify/templates",
        &body,
        || async {
            let (status, view) = create(&state, owner, &req).await?;
            Ok((status, to_json(&view)?))
        },
    )
    .await
}

async fn create(
    state: &AppState,
    owner: &str,
    req: &CreateTemplate,
) -> Result<(StatusCode, TemplateView), Problem> {
    let mut errors = Vec::new();
    if let Err(m) = address::template_name(&req.name) {
        errors.push(FieldError::new("name", m));
    }
    let example = match &req.example_data {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => {
            errors.push(FieldError::new("example_data", "must be a JSON object"));
            None
        }
    };
    let compiled = match compile_sources(&req.name, &req.channels, "channels.") {
        Ok(c) => Some(c),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    };
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let Some((sources, compiled)) = compiled else {
        return Err(Problem::invalid("channels", "is invalid"));
    };
    let now = now_ms();
    let candidate = TemplateVersion {
        name: req.name.clone(),
        version: 0,
        sources,
        compiled,
        example_data: example.clone(),
        created_by: owner.to_owned(),
        created_at: now,
    };
    if let Some(example) = &example {
        let channels: Vec<_> = candidate.compiled.keys().copied().collect();
        let errors = check_render(&candidate, &channels, example, "channels.");
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
    }
    let templates = &state.inner.templates;
    if let Some(latest) = templates.get(&req.name, None).await?
        && latest.sources == candidate.sources
        && latest.example_data == candidate.example_data
    {
        return Ok((StatusCode::OK, TemplateView::from(latest.as_ref())));
    }
    let sources = serde_json::to_value(&candidate.sources)
        .map_err(|e| Problem::internal(format_args!("template sources: {e}")))?;
    let version = state
        .inner
        .store
        .insert_template_version(&req.name, &sources, example.as_ref(), owner, now)
        .await?;
    tracing::info!(template = %req.name, version, "template version created");
    let stored = templates
        .get(&req.name, Some(version))
        .await?
        .ok_or_else(|| Problem::internal("the template version just created is missing"))?;
    Ok((StatusCode::CREATED, TemplateView::from(stored.as_ref())))
}

/// List templates (their latest versions), in name order.
#[utoipa::path(
    get,
    path = "/api/v1/notify/templates",
    tag = TAG,
    params(("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page's `next_cursor`; absent for the first page"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1 to 200 (default 50); outside that range is 400")),
    responses(
        (status = 200, description = "A page of templates", body = TemplatePage),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list_templates(
    State(state): State<AppState>,
    _: Require<NotifyRead>,
    Query(params): Query<PageParams>,
) -> Result<Json<TemplatePage>, Problem> {
    let limit = page_limit(params.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after: Option<String> = cursor_param(params.cursor.as_deref())?;
    let rows = state
        .inner
        .store
        .list_templates(after.as_deref(), limit + 1)
        .await?;
    let page = Page::from_overfetch(rows, limit, |t| t.name.clone());
    let mut items = Vec::with_capacity(page.items.len());
    for record in page.items {
        items.push(TemplateView::from(
            &crate::store::templates::compile_record(record)?,
        ));
    }
    Ok(Json(TemplatePage {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// The latest version of a template.
#[utoipa::path(
    get,
    path = "/api/v1/notify/templates/{name}",
    tag = TAG,
    params(("name" = String, Path, description = "Template name")),
    responses(
        (status = 200, description = "The latest version", body = TemplateView),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get_template(
    State(state): State<AppState>,
    _: Require<NotifyRead>,
    Path(name): Path<String>,
) -> Result<Json<TemplateView>, Problem> {
    find(&state, &name, None).await
}

/// One version of a template.
#[utoipa::path(
    get,
    path = "/api/v1/notify/templates/{name}/versions/{version}",
    tag = TAG,
    params(
        ("name" = String, Path, description = "Template name"),
        ("version" = i64, Path, minimum = 1, maximum = 9_223_372_036_854_775_807_i64, description = "Version, from 1"),
    ),
    responses(
        (status = 200, description = "The version", body = TemplateView),
        (status = 400, description = "The version is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template or version", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get_template_version(
    State(state): State<AppState>,
    _: Require<NotifyRead>,
    Path((name, version)): Path<(String, i64)>,
) -> Result<Json<TemplateView>, Problem> {
    find(&state, &name, Some(version)).await
}

async fn find(
    state: &AppState,
    name: &str,
    version: Option<i64>,
) -> Result<Json<TemplateView>, Problem> {
    let missing = || match version {
        Some(v) => Problem::not_found(format!("template {name:?} has no version {v}")),
        None => Problem::not_found(format!("no template named {name:?}")),
    };
    if address::template_name(name).is_err() {
        return Err(missing());
    }
    let found = state
        .inner
        .templates
        .get(name, version)
        .await?
        .ok_or_else(missing)?;
    Ok(Json(TemplateView::from(found.as_ref())))
}

//! Link management routes.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use praxis_http::idempotency::{run_idempotent, to_json};
use praxis_http::pagination::{Page, cursor_param, page_limit};
use praxis_http::responses::{BadRequest, Forbidden, Unauthorized, Unprocessable};
use praxis_http::{Caller, Require};
use praxis_http::{FieldError, Json, Path, Problem, Query};

use super::auth::{LinksRead, LinksWrite, acting, creator};
use super::dto::{
    BulkCreate, BulkLinkItem, BulkLinkResult, CreateLink, LinkPage, LinkView, ListParams,
    UpdateLink,
};
use super::{AppState, TAG};
use crate::domain::days::now_ms;
use crate::domain::tags::MAX_TAG_LEN;
use crate::store::ListKey;
use crate::workers::links::{Created, NewLink, Principal, validate_create};

/// Default page size of the list route.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of the list route.
const MAX_LIMIT: u32 = 500;
/// Longest `owner` filter.
const MAX_OWNER_LEN: usize = 128;

/// Create a short link.
///
/// Generated codes are `code_length` base62 characters that do not follow creation order.
/// With `find_if_exists`, the caller's newest live link to the same URL is returned with 200.
/// A retry with the same `Idempotency-Key` and body replays the first answer.
#[utoipa::path(
    post,
    path = "/api/v1/links",
    tag = TAG,
    request_body = CreateLink,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a retried create", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, description = "Created", body = LinkView),
        (status = 200, description = "Existing link returned (find_if_exists)", body = LinkView),
        (status = 409, description = "Alias taken", body = Problem, content_type = "application/problem+json"),
        BadRequest, Unauthorized, Forbidden, Unprocessable,
    ),
    security(("bearer" = []))
)]
pub async fn create_link(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(req): Json<CreateLink>,
) -> Result<Response, Problem> {
    let who = creator(&caller, state.settings())?;
    let body = serde_json::to_vec(&req).unwrap_or_default();
    let store = &state.inner.idempotency;
    run_idempotent(
        store,
        &headers,
        &format!("shortener:{}:POST /api/v1/links", who.owner),
        "POST /api/v1/links",
        &body,
        || async {
            let now = now_ms();
            let item =
                validate_create(&req, state.settings(), now, "").map_err(Problem::validation)?;
            let mut results = state
                .links()
                .create_all(who.owner, std::slice::from_ref(&item))
                .await?;
            let created = results
                .pop()
                .ok_or_else(|| Problem::internal("create returned no result"))??;
            let (status, rec) = match created {
                Created::New(rec) => (StatusCode::CREATED, rec),
                Created::Existing(rec) => (StatusCode::OK, rec),
            };
            Ok((
                status,
                to_json(&LinkView::new(&rec, state.settings(), now))?,
            ))
        },
    )
    .await
}

/// Create up to 1000 links at once.
///
/// Every item is validated on its own; the valid ones are written in one transaction. The
/// answer is always 200 with one result per item (`status` is what a single create would have
/// answered: 201, 200, 400, 409, ...). A malformed body or an item count outside 1..=1000 is a
/// 400 for the whole request.
#[utoipa::path(
    post,
    path = "/api/v1/links/bulk",
    tag = TAG,
    request_body = BulkCreate,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a retried bulk create", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, description = "One result per item", body = BulkLinkResult),
        (status = 400, description = "Malformed body or bad item count", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden, Unprocessable,
    ),
    security(("bearer" = []))
)]
pub async fn bulk_create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(req): Json<BulkCreate>,
) -> Result<Response, Problem> {
    let who = creator(&caller, state.settings())?;
    let max = state.settings().bulk_max;
    if req.links.is_empty() || req.links.len() > max {
        let mut p = Problem::validation(vec![FieldError::new(
            "links",
            format!("must hold 1 to {max} links, got {}", req.links.len()),
        )]);
        p.detail = format!("a bulk create takes 1 to {max} links");
        return Err(p);
    }
    let body = serde_json::to_vec(&req).unwrap_or_default();
    let store = &state.inner.idempotency;
    run_idempotent(
        store,
        &headers,
        &format!("shortener:{}:POST /api/v1/links/bulk", who.owner),
        "POST /api/v1/links/bulk",
        &body,
        || async {
            let now = now_ms();
            let settings = state.settings();
            let mut results: Vec<Option<BulkLinkItem>> = vec![None; req.links.len()];
            let mut valid: Vec<(usize, NewLink)> = Vec::new();
            for (index, value) in req.links.iter().enumerate() {
                let prefix = format!("links[{index}].");
                match parse_item(value, &prefix).and_then(|r| {
                    validate_create(&r, settings, now, &prefix).map_err(Problem::validation)
                }) {
                    Ok(item) => valid.push((index, item)),
                    Err(p) => results[index] = Some(failed(index, p)),
                }
            }
            let items: Vec<NewLink> = valid.iter().map(|(_, i)| i.clone()).collect();
            let outcomes = state.links().create_all(who.owner, &items).await?;
            for ((index, _), outcome) in valid.iter().zip(outcomes) {
                results[*index] = Some(match outcome {
                    Ok(Created::New(rec)) => succeeded(
                        *index,
                        StatusCode::CREATED,
                        LinkView::new(&rec, settings, now),
                    ),
                    Ok(Created::Existing(rec)) => {
                        succeeded(*index, StatusCode::OK, LinkView::new(&rec, settings, now))
                    }
                    Err(e) => failed(*index, e.into()),
                });
            }
            let results: Vec<BulkLinkItem> = results.into_iter().flatten().collect();
            let ok = results.iter().filter(|r| r.link.is_some()).count();
            let answer = BulkLinkResult {
                succeeded: ok,
                failed: results.len() - ok,
                results,
            };
            Ok((StatusCode::OK, to_json(&answer)?))
        },
    )
    .await
}

/// One bulk item as a create request; errors name `links[i].field`.
fn parse_item(value: &serde_json::Value, prefix: &str) -> Result<CreateLink, Problem> {
    let bytes = serde_json::to_vec(value).map_err(Problem::internal)?;
    praxis_http::extract::json_from_slice::<CreateLink>(&bytes).map_err(|mut p| {
        for e in &mut p.errors {
            e.field = if e.field == "body" {
                prefix.trim_end_matches('.').to_owned()
            } else {
                format!("{prefix}{}", e.field)
            };
        }
        p
    })
}

fn succeeded(index: usize, status: StatusCode, link: LinkView) -> BulkLinkItem {
    BulkLinkItem {
        index,
        status: status.as_u16(),
        link: Some(link),
        problem: None,
    }
}

fn failed(index: usize, problem: Problem) -> BulkLinkItem {
    BulkLinkItem {
        index,
        status: problem.status.as_u16(),
        link: None,
        problem: Some(problem),
    }
}

/// List the caller's links, newest first. The admin lists another owner's links with
/// `owner=<account id>`.
#[utoipa::path(
    get,
    path = "/api/v1/links",
    tag = TAG,
    params(ListParams),
    responses(
        (status = 200, description = "A page of links", body = LinkPage),
        (status = 400, description = "Bad cursor, limit, tag or owner", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list_links(
    State(state): State<AppState>,
    who: Require<LinksRead>,
    Query(params): Query<ListParams>,
) -> Result<Json<LinkPage>, Problem> {
    let caller = acting(&who);
    let who = match params.owner.as_deref() {
        None => caller,
        Some(o) if o.is_empty() || o.chars().count() > MAX_OWNER_LEN => {
            return Err(Problem::validation(vec![FieldError::new(
                "owner",
                format!("must be 1 to {MAX_OWNER_LEN} characters"),
            )]));
        }
        Some(o) if o == caller.owner => caller,
        Some(o) if caller.admin => Principal {
            owner: o,
            admin: true,
        },
        Some(_) => {
            return Err(Problem::forbidden(
                "only the admin can list another owner's links",
            ));
        }
    };
    let limit = page_limit(params.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after: Option<ListKey> = cursor_param(params.cursor.as_deref())?;
    if let Some(tag) = &params.tag
        && (tag.trim().is_empty() || tag.chars().count() > MAX_TAG_LEN)
    {
        return Err(Problem::validation(vec![FieldError::new(
            "tag",
            format!("must be 1 to {MAX_TAG_LEN} characters"),
        )]));
    }
    let tag = params.tag.as_deref().map(str::trim);
    let rows = state.links().list(who, tag, after.as_ref(), limit).await?;
    let page = Page::from_overfetch(rows, limit, |r| (r.link.created_at, r.link.code.clone()));
    let now = now_ms();
    Ok(Json(LinkPage {
        items: page
            .items
            .iter()
            .map(|r| LinkView::new(r, state.settings(), now))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One link.
#[utoipa::path(
    get,
    path = "/api/v1/links/{code}",
    tag = TAG,
    params(("code" = String, Path, description = "The link's code")),
    responses(
        (status = 200, description = "The link", body = LinkView),
        (status = 404, description = "No such link", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn get_link(
    State(state): State<AppState>,
    who: Require<LinksRead>,
    Path(code): Path<String>,
) -> Result<Json<LinkView>, Problem> {
    let who = acting(&who);
    let rec = state.links().get(who, &code).await?;
    Ok(Json(LinkView::new(&rec, state.settings(), now_ms())))
}

/// Change a link. Absent fields stay; `null` clears expiry or visit limit. Every process's
/// redirect reflects the change at once.
#[utoipa::path(
    patch,
    path = "/api/v1/links/{code}",
    tag = TAG,
    params(("code" = String, Path, description = "The link's code")),
    request_body = UpdateLink,
    responses(
        (status = 200, description = "The changed link", body = LinkView),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such link", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn update_link(
    State(state): State<AppState>,
    who: Require<LinksWrite>,
    Path(code): Path<String>,
    Json(patch): Json<UpdateLink>,
) -> Result<Json<LinkView>, Problem> {
    let who = acting(&who);
    let rec = state.links().update(who, &code, &patch).await?;
    Ok(Json(LinkView::new(&rec, state.settings(), now_ms())))
}

/// Delete a link with its statistics; afterwards it is 404 everywhere.
#[utoipa::path(
    delete,
    path = "/api/v1/links/{code}",
    tag = TAG,
    params(("code" = String, Path, description = "The link's code")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such link", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn delete_link(
    State(state): State<AppState>,
    who: Require<LinksWrite>,
    Path(code): Path<String>,
) -> Result<StatusCode, Problem> {
    let who = acting(&who);
    state.links().delete(who, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

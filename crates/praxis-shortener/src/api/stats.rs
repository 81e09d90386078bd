//! Visit statistics route.

use axum::extract::State;

use praxis_http::Require;
use praxis_http::responses::{Forbidden, Unauthorized};
use praxis_http::{Json, Path, Problem, Query};

use super::auth::{LinksRead, acting};
use super::dto::{StatsParams, StatsView};
use super::{AppState, TAG};

/// Visit statistics of a link: all-time total, visits per UTC day, per user-agent class and
/// per referring host, optionally between two days. Visits are applied asynchronously (within
/// seconds) and exactly once.
#[utoipa::path(
    get,
    path = "/api/v1/links/{code}/stats",
    tag = TAG,
    params(("code" = String, Path, description = "The link's code"), StatsParams),
    responses(
        (status = 200, description = "Statistics", body = StatsView),
        (status = 400, description = "Bad date", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such link", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn link_stats(
    State(state): State<AppState>,
    who: Require<LinksRead>,
    Path(code): Path<String>,
    Query(params): Query<StatsParams>,
) -> Result<Json<StatsView>, Problem> {
    let who = acting(&who);
    let stats = state
        .links()
        .stats(who, &code, params.from.as_deref(), params.to.as_deref())
        .await?;
    Ok(Json(stats))
}

//! Visit statistics route.

use axum::extract::State;

use praxis_http::{Json, Path, Problem, Query};

use super::auth::Access;
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
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope links:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such link", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn link_stats(
    State(state): State<AppState>,
    access: Access,
    Path(code): Path<String>,
    Query(params): Query<StatsParams>,
) -> Result<Json<StatsView>, Problem> {
    let who = access.reader()?;
    let stats = state
        .links()
        .stats(who, &code, params.from.as_deref(), params.to.as_deref())
        .await?;
    Ok(Json(stats))
}

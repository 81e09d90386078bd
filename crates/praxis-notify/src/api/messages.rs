//! Reading a message with its deliveries and attempts.

use axum::extract::State;

use praxis_http::Require;
use praxis_http::access::Authenticated;
use praxis_http::responses::Unauthorized;
use praxis_http::{Json, Path, Problem};

use super::dto::MessageView;
use super::{AppState, TAG};

/// A message: its overall state, each delivery's state and every attempt.
///
/// A delivery that joined a digest batch is `digested`, with `digest_of` (the batch delivery)
/// and `digest_message_id` (the batch's message, which shows how it went). Readable by the
/// principal that sent it and by the admin; anyone else gets 404.
#[utoipa::path(
    get,
    path = "/api/v1/notify/messages/{id}",
    tag = TAG,
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 200, description = "The message", body = MessageView),
        (status = 404, description = "No such message (or not the caller's)", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn get_message(
    State(state): State<AppState>,
    who: Require<Authenticated>,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, Problem> {
    let (owner, admin) = (who.subject(), who.is_admin());
    let store = &state.inner.store;
    let not_found = || Problem::not_found(format!("no message with id {id:?}"));
    if id.len() > 64 {
        return Err(not_found());
    }
    let Some(message) = store.message(&id).await? else {
        return Err(not_found());
    };
    if message.sender != owner && !admin {
        return Err(not_found());
    }
    let deliveries = store.deliveries_of(&id).await?;
    let ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
    let attempts = store.attempts_of(&ids).await?;
    let mut view = MessageView::new(&message, &deliveries, &attempts);
    let mut batches: Vec<String> = deliveries
        .iter()
        .filter_map(|d| d.digest_of.clone())
        .collect();
    batches.sort();
    batches.dedup();
    if !batches.is_empty() {
        let found = store.deliveries(&batches).await?;
        for d in &mut view.deliveries {
            d.digest_message_id = d.digest_of.as_ref().and_then(|of| {
                found
                    .iter()
                    .find(|b| &b.id == of)
                    .map(|b| b.message_id.clone())
            });
        }
    }
    Ok(Json(view))
}

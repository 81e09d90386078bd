//! Sending: one message, or up to `bulk_max` at once.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use praxis_http::Require;
use praxis_http::idempotency::{key_from_headers, run_idempotent, to_json};
use praxis_http::responses::{Forbidden, Unauthorized, Unprocessable};
use praxis_http::{FieldError, Json, Problem};

use super::auth::NotifyWrite;
use super::dto::{BulkSend, BulkSendItem, BulkSendResult, SendAccepted};
use super::{AppState, TAG};
use crate::domain::model::now_ms;
use crate::workers::accept::{Pending, SendRequest, Submission};

/// Send a notification.
///
/// Checks the template (it must have a part for each requested channel), the data (every
/// variable the template reads), the recipient (a known subscriber, or valid addresses) and
/// the channels (configured, with an address), then queues the message durably and answers
/// 202 with its id. A request of the wrong shape is a 400; a well-formed one that cannot be
/// carried out (a template that does not exist, a channel the recipient has no address on,
/// data that misses a variable, ...) is a 422, each naming its fields. With an idempotency key (`idempotency_key` or the `Idempotency-Key`
/// header) a retry answers 200 with the first message's id and sends nothing more; the same
/// key with a different request is 422. Without a key, `dedupe_window` (seconds) answers 200
/// with the first message's id while the same sender's message to the same recipient with the
/// same template was accepted less than that long ago. `digest` (subscribers only) collects
/// the events of a window into one message per channel.
#[utoipa::path(
    post,
    path = "/api/v1/notify/send",
    tag = TAG,
    request_body = SendRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "The message's idempotency key (instead of idempotency_key in the body)", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 202, description = "Accepted and queued", body = SendAccepted),
        (status = 200, description = "Accepted before with this idempotency key, or within the dedupe window", body = SendAccepted),
        (status = 400, description = "Not the documented shape; `errors` names each field (template, channels[i], to, to.email, digest.window, dedupe_window, ...)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Well formed but not possible as it stands; `errors` names each field: no such template, version, subscriber or topic, a channel the server or the recipient lacks, a variable the data misses (`data.<variable>`), fields that exclude each other (digest and send_at, dedupe_window and an idempotency key); or the idempotency key was used for a different request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn send(
    State(state): State<AppState>,
    who: Require<NotifyWrite>,
    headers: HeaderMap,
    Json(req): Json<SendRequest>,
) -> Result<Response, Problem> {
    let sender = who.subject();
    let header_key = key_from_headers(&headers)?;
    let send = Submission {
        sender: sender.to_owned(),
        now_ms: now_ms(),
        requests: vec![Pending {
            request: req,
            header_key,
            prefix: String::new(),
        }],
    };
    let accepted = state
        .inner
        .accepter
        .send(send)
        .await?
        .pop()
        .ok_or_else(|| Problem::internal("accept returned no result"))??;
    let mut res = (
        accepted.status(),
        Json(SendAccepted {
            id: accepted.id.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/notify/messages/{}", accepted.id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Send up to 1000 notifications at once.
///
/// Every item is checked on its own (like a single send; field errors are named
/// `messages[i].field`); the valid ones are queued in one transaction. The answer is 200 with
/// one result per item (`status` is what a single send would have answered). An empty list or
/// more than 1000 items is a 400 for the whole request. An `Idempotency-Key` header replays
/// the whole answer; per-item `idempotency_key`s or `dedupe_window`s deduplicate each message.
#[utoipa::path(
    post,
    path = "/api/v1/notify/send/bulk",
    tag = TAG,
    request_body = BulkSend,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer of a retried bulk send", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, description = "One result per item", body = BulkSendResult),
        (status = 400, description = "Malformed body or bad item count", body = Problem, content_type = "application/problem+json"),
        Unauthorized, Forbidden, Unprocessable,
    ),
    security(("bearer" = []))
)]
pub async fn send_bulk(
    State(state): State<AppState>,
    who: Require<NotifyWrite>,
    headers: HeaderMap,
    Json(req): Json<BulkSend>,
) -> Result<Response, Problem> {
    let sender = who.subject();
    let max = state.inner.settings.bulk_max;
    if req.messages.is_empty() || req.messages.len() > max {
        let mut p = Problem::validation(vec![FieldError::new(
            "messages",
            format!("must hold 1 to {max} messages, got {}", req.messages.len()),
        )]);
        p.detail = format!("a bulk send takes 1 to {max} messages");
        return Err(p);
    }
    let body = serde_json::to_vec(&req).unwrap_or_default();
    run_idempotent(
        &state.inner.idempotency,
        &headers,
        &format!("notify:{sender}:POST /api/v1/notify/send/bulk"),
        "POST /api/v1/notify/send/bulk",
        &body,
        || async {
            let answer = bulk(&state, sender, &req).await?;
            Ok((StatusCode::OK, to_json(&answer)?))
        },
    )
    .await
}

async fn bulk(state: &AppState, sender: &str, req: &BulkSend) -> Result<BulkSendResult, Problem> {
    let mut results: Vec<Option<BulkSendItem>> = vec![None; req.messages.len()];
    let mut indexes = Vec::new();
    let mut requests = Vec::new();
    for (index, value) in req.messages.iter().enumerate() {
        let prefix = format!("messages[{index}].");
        match parse_item(value, &prefix) {
            Ok(request) => {
                indexes.push(index);
                requests.push(Pending {
                    request,
                    header_key: None,
                    prefix,
                });
            }
            Err(p) => results[index] = Some(failed(index, p)),
        }
    }
    let outcomes = if requests.is_empty() {
        Vec::new()
    } else {
        let send = Submission {
            sender: sender.to_owned(),
            now_ms: now_ms(),
            requests,
        };
        state.inner.accepter.send(send).await?
    };
    for (index, outcome) in indexes.into_iter().zip(outcomes) {
        results[index] = Some(match outcome {
            Ok(a) => BulkSendItem {
                index,
                status: a.status().as_u16(),
                id: Some(a.id),
                problem: None,
            },
            Err(p) => failed(index, p),
        });
    }
    let results: Vec<BulkSendItem> = results.into_iter().flatten().collect();
    Ok(BulkSendResult {
        accepted: results.iter().filter(|r| r.status == 202).count(),
        duplicates: results.iter().filter(|r| r.status == 200).count(),
        failed: results.iter().filter(|r| r.id.is_none()).count(),
        results,
    })
}

/// One bulk item as a send request; errors name `messages[i].field`.
fn parse_item(value: &serde_json::Value, prefix: &str) -> Result<SendRequest, Problem> {
    let bytes = serde_json::to_vec(value).map_err(Problem::internal)?;
    praxis_http::extract::json_from_slice::<SendRequest>(&bytes).map_err(|mut p| {
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

fn failed(index: usize, problem: Problem) -> BulkSendItem {
    BulkSendItem {
        index,
        status: problem.status.as_u16(),
        id: None,
        problem: Some(problem),
    }
}

//! `Idempotency-Key` on creates: the first successful answer is stored and replayed for a
//! retry with the same key and body; the same key with another body is 422. Failed requests
//! are not stored (a retry runs again). The scope is the owner plus the route.

use std::future::Future;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use praxis_http::Problem;
use praxis_http::idempotency::{
    Begin, IdempotencyStore, fingerprint, key_from_headers, replay_response,
};

/// Runs `run` at most once per key; `run` returns the status and JSON body of a success.
pub async fn idempotent<F, Fut>(
    store: &IdempotencyStore,
    headers: &HeaderMap,
    owner: &str,
    route: &str,
    body: &[u8],
    run: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, Vec<u8>), Problem>>,
{
    let key = match key_from_headers(headers) {
        Ok(k) => k,
        Err(p) => return p.into_response(),
    };
    let Some(key) = key else {
        return respond(run().await);
    };
    let scope = format!("shortener:{owner}:{route}");
    let print = fingerprint(&[route.as_bytes(), body]);
    let pending = match store.begin(&scope, &key, &print).await {
        Ok(Begin::Replay { status, body }) => return replay_response(status, body),
        Ok(Begin::New(pending)) => pending,
        Err(p) => return p.into_response(),
    };
    let result = run().await;
    match &result {
        Ok((status, body)) => {
            if let Err(p) = pending.complete(*status, body).await {
                tracing::warn!(problem = %p, "storing an idempotent answer failed; a retry will run again");
            }
        }
        Err(_) => pending.abort().await,
    }
    respond(result)
}

fn respond(result: Result<(StatusCode, Vec<u8>), Problem>) -> Response {
    match result {
        Ok((status, body)) => {
            let mut res = (status, body).into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res
        }
        Err(p) => p.into_response(),
    }
}

/// JSON bytes of a response body, or a 500 problem.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Problem> {
    serde_json::to_vec(value)
        .map_err(|e| Problem::internal(format_args!("response serialization failed: {e}")))
}

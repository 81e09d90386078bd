//! Idempotency keys for create routes (`Idempotency-Key` header, after the IETF httpapi draft):
//! the first request with a key runs and its answer is stored; a retry with the same key and
//! the same request gets the stored answer again; the same key with a different request is
//! 422; a retry while the first is still running is 409.
//!
//! Keys live in `praxis_idempotency` on the system's [`Db`] for `ttl`; expired rows are
//! deleted by a small sweep that runs at most once per sweep interval from within [`begin`],
//! and an expired key may be used again.
//!
//! [`begin`]: IdempotencyStore::begin

use praxis_infra::sql::now_ms;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use praxis_infra::InfraError;
use praxis_infra::sql::{Db, Migration, MigrationSet};

use crate::problem::{FieldError, Problem};

/// The request header carrying the key.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Response header set on replayed answers.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// Schema of the store (system `"idempotency"`); apply with `db.migrate(&MIGRATIONS)`.
pub static MIGRATIONS: MigrationSet = MigrationSet {
    system: "idempotency",
    migrations: &[Migration {
        version: 1,
        name: "create praxis_idempotency",
        sqlite: "CREATE TABLE praxis_idempotency (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint BLOB NOT NULL,
            lease TEXT NOT NULL,
            status BIGINT,
            body BLOB,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (scope, key)
        );
        CREATE INDEX praxis_idempotency_created ON praxis_idempotency (created_at);",
        postgres: "CREATE TABLE praxis_idempotency (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint BYTEA NOT NULL,
            lease TEXT NOT NULL,
            status BIGINT,
            body BYTEA,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (scope, key)
        );
        CREATE INDEX praxis_idempotency_created ON praxis_idempotency (created_at);",
    }],
};

/// Stored answers of idempotent requests. Cheap to clone.
#[derive(Clone)]
pub struct IdempotencyStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    ttl_ms: i64,
    sweep_every_ms: i64,
    last_sweep_ms: AtomicI64,
}

/// Outcome of [`IdempotencyStore::begin`].
#[derive(Debug)]
pub enum Begin {
    /// First use of the key: run the request, then [`Pending::complete`] (or
    /// [`Pending::abort`] to let a retry run it again).
    New(Pending),
    /// The key was used before for the same request: answer this again
    /// (see [`replay_response`]).
    Replay {
        /// Status of the first answer.
        status: StatusCode,
        /// Body of the first answer.
        body: Bytes,
    },
}

/// A claimed key whose request is running. Dropping it without completing releases the key
/// (in a background task), so a failed request can be retried.
#[derive(Debug)]
pub struct Pending {
    store: Option<IdempotencyStore>,
    scope: String,
    key: String,
    lease: String,
}

impl std::fmt::Debug for IdempotencyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyStore")
            .field("ttl_ms", &self.inner.ttl_ms)
            .finish()
    }
}

type Row = (Vec<u8>, String, Option<i64>, Option<Vec<u8>>, i64);

impl IdempotencyStore {
    /// A store on `db` (migrated with [`MIGRATIONS`]) keeping answers for `ttl`.
    pub fn new(db: Db, ttl: Duration) -> Self {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        Self {
            inner: Arc::new(Inner {
                db,
                ttl_ms,
                sweep_every_ms: ttl_ms.clamp(1, 60_000),
                last_sweep_ms: AtomicI64::new(0),
            }),
        }
    }

    /// Claims `key` in `scope` for a request with this `fingerprint` (see [`fingerprint`]).
    ///
    /// Errors: 422 `idempotency-key-reused` when the key was used for a different request,
    /// 409 `idempotency-in-progress` while the first request is still running, 503 when the
    /// database is unavailable.
    pub async fn begin(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &[u8],
    ) -> Result<Begin, Problem> {
        self.maybe_sweep().await;
        let pool = self.inner.db.pool();
        // A few rounds cover the races: a row deleted (abort, sweep) or taken over between our
        // insert and select.
        for _ in 0..4 {
            let now = now_ms();
            let lease = uuid::Uuid::now_v7().to_string();
            let inserted = sqlx::query(
                "INSERT INTO praxis_idempotency (scope, key, fingerprint, lease, status, body, created_at)
                 VALUES ($1, $2, $3, $4, NULL, NULL, $5) ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(scope)
            .bind(key)
            .bind(fingerprint)
            .bind(&lease)
            .bind(now)
            .execute(pool)
            .await
            .map_err(db_problem)?
            .rows_affected();
            if inserted == 1 {
                return Ok(Begin::New(self.pending(scope, key, lease)));
            }
            let row: Option<Row> = sqlx::query_as(
                "SELECT fingerprint, lease, status, body, created_at FROM praxis_idempotency
                 WHERE scope = $1 AND key = $2",
            )
            .bind(scope)
            .bind(key)
            .fetch_optional(pool)
            .await
            .map_err(db_problem)?;
            let Some((stored_fp, old_lease, status, body, created_at)) = row else {
                continue;
            };
            if created_at <= now - self.inner.ttl_ms {
                let taken = sqlx::query(
                    "UPDATE praxis_idempotency
                     SET fingerprint = $3, lease = $4, status = NULL, body = NULL, created_at = $5
                     WHERE scope = $1 AND key = $2 AND lease = $6",
                )
                .bind(scope)
                .bind(key)
                .bind(fingerprint)
                .bind(&lease)
                .bind(now)
                .bind(&old_lease)
                .execute(pool)
                .await
                .map_err(db_problem)?
                .rows_affected();
                if taken == 1 {
                    return Ok(Begin::New(self.pending(scope, key, lease)));
                }
                continue;
            }
            if stored_fp != fingerprint {
                return Err(key_reused());
            }
            return match status {
                None => Err(in_progress()),
                Some(code) => {
                    let status = u16::try_from(code)
                        .ok()
                        .and_then(|c| StatusCode::from_u16(c).ok())
                        .ok_or_else(|| {
                            Problem::internal(format_args!(
                                "stored idempotent status {code} is not a status"
                            ))
                        })?;
                    Ok(Begin::Replay {
                        status,
                        body: Bytes::from(body.unwrap_or_default()),
                    })
                }
            };
        }
        Err(in_progress())
    }

    /// Deletes keys older than the ttl (including abandoned in-progress ones); returns how many.
    pub async fn sweep(&self) -> Result<u64, InfraError> {
        let cutoff = now_ms() - self.inner.ttl_ms;
        let done = sqlx::query("DELETE FROM praxis_idempotency WHERE created_at <= $1")
            .bind(cutoff)
            .execute(self.inner.db.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Runs [`sweep`](Self::sweep) when the last one is older than the sweep interval
    /// (`min(ttl, 60 s)`); only one caller wins the slot. Failures are logged, not returned.
    async fn maybe_sweep(&self) {
        let now = now_ms();
        let last = self.inner.last_sweep_ms.load(Ordering::Relaxed);
        if now - last < self.inner.sweep_every_ms {
            return;
        }
        if self
            .inner
            .last_sweep_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        if let Err(e) = self.sweep().await {
            tracing::warn!(error = %e, "idempotency sweep failed");
        }
    }

    fn pending(&self, scope: &str, key: &str, lease: String) -> Pending {
        Pending {
            store: Some(self.clone()),
            scope: scope.to_owned(),
            key: key.to_owned(),
            lease,
        }
    }
}

impl Pending {
    /// Stores the answer, so retries with the same key replay it.
    pub async fn complete(mut self, status: StatusCode, body: &[u8]) -> Result<(), Problem> {
        let Some(store) = self.store.take() else {
            return Ok(());
        };
        let updated = sqlx::query(
            "UPDATE praxis_idempotency SET status = $4, body = $5
             WHERE scope = $1 AND key = $2 AND lease = $3",
        )
        .bind(&self.scope)
        .bind(&self.key)
        .bind(&self.lease)
        .bind(i64::from(status.as_u16()))
        .bind(body)
        .execute(store.inner.db.pool())
        .await
        .map_err(db_problem)?
        .rows_affected();
        if updated == 0 {
            tracing::warn!(scope = %self.scope, "idempotency key expired before its request completed; answer not stored");
        }
        Ok(())
    }

    /// Releases the key without an answer (e.g. after a 5xx), so a retry runs the request again.
    pub async fn abort(mut self) {
        if let Some(store) = self.store.take() {
            release(
                store,
                std::mem::take(&mut self.scope),
                std::mem::take(&mut self.key),
                std::mem::take(&mut self.lease),
            )
            .await;
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let (scope, key, lease) = (
            std::mem::take(&mut self.scope),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.lease),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(release(store, scope, key, lease));
        }
    }
}

async fn release(store: IdempotencyStore, scope: String, key: String, lease: String) {
    let done =
        sqlx::query("DELETE FROM praxis_idempotency WHERE scope = $1 AND key = $2 AND lease = $3")
            .bind(&scope)
            .bind(&key)
            .bind(&lease)
            .execute(store.inner.db.pool())
            .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, scope = %scope, "releasing an idempotency key failed; it expires with its ttl");
    }
}

/// The `Idempotency-Key` header: `None` when absent, 400 naming the header when it is not
/// 1..=255 visible ASCII characters.
pub fn key_from_headers(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(&IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_KEY_LEN
        || !bytes.iter().all(|b| (0x21..=0x7e).contains(b))
    {
        let mut p = Problem::validation(vec![FieldError::new(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters (no spaces)"),
        )]);
        p.detail = "invalid Idempotency-Key header".into();
        return Err(p);
    }
    Ok(value.to_str().ok().map(str::to_owned))
}

/// A request fingerprint: BLAKE3 over the length-prefixed parts (e.g. method, path, body).
pub fn fingerprint(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for part in parts {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    *h.finalize().as_bytes()
}

/// Runs `run` at most once per `Idempotency-Key` within `scope` (for example
/// `shortener:<owner>:<route>`); `run` returns the status and JSON body of a success, which is
/// stored and replayed for a retry with the same key and body (the same key with another body
/// or route is 422). Failures are not stored: a retry runs again. Without the header, `run`
/// simply runs. Handlers use `?` inside `run` (on any error that becomes a [`Problem`]) and on
/// the result.
pub async fn run_idempotent<F, Fut>(
    store: &IdempotencyStore,
    headers: &HeaderMap,
    scope: &str,
    route: &str,
    body: &[u8],
    run: F,
) -> Result<Response, Problem>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, Vec<u8>), Problem>>,
{
    let Some(key) = key_from_headers(headers)? else {
        let (status, body) = run().await?;
        return Ok(json_response(status, body));
    };
    let print = fingerprint(&[route.as_bytes(), body]);
    let pending = match store.begin(scope, &key, &print).await? {
        Begin::Replay { status, body } => return Ok(replay_response(status, body)),
        Begin::New(pending) => pending,
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
    let (status, body) = result?;
    Ok(json_response(status, body))
}

/// A JSON success (status and body) as a response.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// JSON bytes of a response body, or a 500 problem.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Problem> {
    serde_json::to_vec(value)
        .map_err(|e| Problem::internal(format_args!("response serialization failed: {e}")))
}

/// The replayed answer: the stored status and JSON body, marked `Idempotent-Replayed: true`.
pub fn replay_response(status: StatusCode, body: Bytes) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut().insert(
        IDEMPOTENT_REPLAYED.clone(),
        HeaderValue::from_static("true"),
    );
    res
}

fn key_reused() -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "Idempotency key reused",
        "this Idempotency-Key was already used for a different request; use a new key",
    )
}

fn in_progress() -> Problem {
    Problem::conflict(
        "idempotency-in-progress",
        "a request with this Idempotency-Key is still being processed; retry later",
    )
}

fn db_problem(e: sqlx::Error) -> Problem {
    Problem::from(InfraError::from(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_rules() {
        let mut h = HeaderMap::new();
        assert_eq!(key_from_headers(&h).expect("absent"), None);
        h.insert(&IDEMPOTENCY_KEY, HeaderValue::from_static("k-1"));
        assert_eq!(key_from_headers(&h).expect("valid").as_deref(), Some("k-1"));
        for bad in ["", "has space", &"x".repeat(256)] {
            h.insert(
                &IDEMPOTENCY_KEY,
                HeaderValue::from_str(bad).expect("header"),
            );
            let p = key_from_headers(&h).expect_err(bad);
            assert_eq!(p.errors[0].field, "Idempotency-Key");
        }
        h.insert(
            &IDEMPOTENCY_KEY,
            HeaderValue::from_str(&"x".repeat(255)).expect("header"),
        );
        assert!(key_from_headers(&h).is_ok());
    }

    #[test]
    fn fingerprints_are_unambiguous() {
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
        assert_eq!(
            fingerprint(&[b"POST", b"{}"]),
            fingerprint(&[b"POST", b"{}"])
        );
    }
}

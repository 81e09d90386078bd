//! A test service exercising every convention, and helpers to call the app.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use praxis_http::auth::Writer;
use praxis_http::idempotency::{self, Begin, IdempotencyStore};
use praxis_http::pagination::{Page, PageParams, cursor_param, page_limit};
use praxis_http::{AuthSettings, Caller, HttpOptions, Json, Path, Problem, Query, Service, app};
use praxis_testkit::{Resp, TestBackend};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

pub const ADMIN_KEY: &str = "test-admin-key";
pub const BODY_LIMIT: usize = 1024;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    pub name: String,
    pub count: u32,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Item {
    pub id: u32,
    pub name: String,
}

/// Creates an item (echoes it back with id 1).
#[utoipa::path(post, path = "/api/v1/test/items", request_body = NewItem,
    responses((status = 201, body = Item), (status = 400, body = Problem)))]
async fn create(Json(new): Json<NewItem>) -> (StatusCode, Json<Item>) {
    (
        StatusCode::CREATED,
        Json(Item {
            id: new.count,
            name: new.name,
        }),
    )
}

async fn get_item(Path(id): Path<u32>) -> Json<Item> {
    Json(Item {
        id,
        name: format!("item {id}"),
    })
}

/// Items 0..25, paged by id.
async fn list(Query(p): Query<PageParams>) -> Result<Json<Page<Item>>, Problem> {
    let limit = page_limit(p.limit, 10, 20)?;
    let after: i64 = cursor_param(p.cursor.as_deref())?.unwrap_or(-1);
    let items: Vec<Item> = (0..25u32)
        .filter(|i| i64::from(*i) > after)
        .take(limit as usize + 1)
        .map(|id| Item {
            id,
            name: format!("item {id}"),
        })
        .collect();
    Ok(Json(Page::from_overfetch(items, limit, |i| {
        i64::from(i.id)
    })))
}

async fn panics() -> &'static str {
    panic!("boom in handler")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "late"
}

async fn whoami(caller: Caller) -> String {
    caller.owner_id().to_owned()
}

async fn admin_only(Writer(caller): Writer) -> String {
    caller.owner_id().to_owned()
}

/// An idempotent create: the canonical use of the store.
async fn idem_create(
    State(store): State<IdempotencyStore>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::response::Response, Problem> {
    let Some(key) = idempotency::key_from_headers(&headers)? else {
        return Err(Problem::bad_request(
            "idempotency-key-required",
            "send an Idempotency-Key",
        ));
    };
    let fp = idempotency::fingerprint(&[b"POST /api/v1/test/idem", &body]);
    match store.begin("test:create", &key, &fp).await? {
        Begin::Replay { status, body } => Ok(idempotency::replay_response(status, body)),
        Begin::New(pending) => {
            let new: NewItem = match praxis_http::extract::json_from_slice(&body) {
                Ok(new) => new,
                Err(problem) => {
                    pending.abort().await;
                    return Err(problem);
                }
            };
            let out = serde_json::to_vec(&Item {
                id: new.count,
                name: new.name,
            })
            .unwrap();
            pending.complete(StatusCode::CREATED, &out).await?;
            let mut res =
                Json(serde_json::from_slice::<serde_json::Value>(&out).unwrap()).into_response();
            *res.status_mut() = StatusCode::CREATED;
            Ok(res)
        }
    }
}

/// A streaming route: counts the body's bytes as they arrive, after a pause longer than the
/// stack's timeout when the path says `slow`.
async fn stream_count(
    axum::extract::Path(kind): axum::extract::Path<String>,
    body: Body,
) -> Result<Json<serde_json::Value>, Problem> {
    use futures::StreamExt;
    if kind == "slow" {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    let mut stream = body.into_data_stream();
    let mut bytes = 0usize;
    while let Some(chunk) = stream.next().await {
        bytes += chunk
            .map_err(|e| Problem::bad_request("body", e.to_string()))?
            .len();
    }
    Ok(Json(serde_json::json!({ "bytes": bytes })))
}

/// The trace context the handler runs in, read after an await (so across polls).
async fn current_trace() -> Json<serde_json::Value> {
    tokio::task::yield_now().await;
    let current = praxis_infra::trace::current().map(|ctx| ctx.to_string());
    Json(serde_json::json!({ "traceparent": current }))
}

#[derive(OpenApi)]
#[openapi(paths(create))]
struct TestApi;

pub fn test_service(store: IdempotencyStore) -> Service {
    let router = Router::new()
        .route("/api/v1/test/items", post(create).get(list))
        .route("/api/v1/test/items/{id}", get(get_item))
        .route("/api/v1/test/panic", get(panics))
        .route("/api/v1/test/slow", get(slow))
        .route("/api/v1/test/whoami", get(whoami))
        .route("/api/v1/test/admin", post(admin_only))
        .route("/api/v1/test/idem", post(idem_create))
        .route("/api/v1/test/trace", get(current_trace))
        .route("/api/v1/test/stream/{kind}", post(stream_count))
        .with_state(store);
    Service::new("test", router, TestApi::openapi()).with_streaming(&["/api/v1/test/stream/{kind}"])
}

pub fn options() -> HttpOptions {
    HttpOptions {
        body_limit: BODY_LIMIT,
        // Long enough that a loaded machine never times out a normal request.
        request_timeout: Duration::from_secs(1),
        access_log: true,
        metrics: Some(praxis_http::install_metrics_recorder()),
        auth: AuthSettings {
            admin_key: Some(ADMIN_KEY.into()),
            ..AuthSettings::default()
        },
        ..HttpOptions::default()
    }
}

/// The app on an embedded platform; keep the backend alive while using the router.
pub struct TestApp {
    pub router: Router,
    pub backend: TestBackend,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_options(options()).await
    }

    pub async fn with_options(opts: HttpOptions) -> Self {
        let backend = praxis_testkit::embedded().await;
        backend
            .platform
            .db
            .migrate(&idempotency::MIGRATIONS)
            .await
            .unwrap();
        let store = IdempotencyStore::new(backend.platform.db.clone(), Duration::from_secs(60));
        let router = app(vec![test_service(store)], backend.platform.clone(), opts);
        Self { router, backend }
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        Reply(praxis_testkit::http::send(&self.router, req).await)
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post_json(&self, uri: &str, body: &str) -> Reply {
        self.send(
            Request::post(uri)
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned()))
                .unwrap(),
        )
        .await
    }
}

/// A buffered response, with the assertions of these cases on top of the testkit's.
pub struct Reply(pub Resp);

impl std::ops::Deref for Reply {
    type Target = Resp;

    fn deref(&self) -> &Resp {
        &self.0
    }
}

impl Reply {
    /// A header as text (empty when missing).
    pub fn header(&self, name: &str) -> &str {
        self.0.header(name).unwrap_or_default()
    }

    /// Asserts a problem response of this status and slug, and that it carries the request id.
    pub fn assert_problem(&self, status: u16, slug: &str) -> serde_json::Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert_eq!(self.header("content-type"), "application/problem+json");
        let p = self.json();
        assert_eq!(p["status"], status);
        assert_eq!(
            p["type"],
            format!("https://praxis.dev/problems/{slug}"),
            "{p}"
        );
        assert!(!p["detail"].as_str().unwrap().is_empty());
        assert_eq!(
            p["request_id"],
            self.header("x-request-id"),
            "problem carries the request id"
        );
        p
    }
}

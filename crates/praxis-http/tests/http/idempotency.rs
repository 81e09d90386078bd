//! The idempotency store, with the same cases on SQLite and PostgreSQL, and once through HTTP.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use praxis_http::idempotency::{Begin, IdempotencyStore, MIGRATIONS};
use praxis_infra::sql::Db;
use praxis_testkit::Kind;
use praxis_testkit::services::{TestDatabase, sqlite_url};

use crate::support::TestApp;

/// A migrated store on a backend; the temp dir keeps a SQLite file alive, the test database
/// is dropped with it.
struct Fixture {
    db: Db,
    _dir: Option<tempfile::TempDir>,
    _database: Option<TestDatabase>,
}

/// Runs a case of the backend matrix on a fresh SQLite file or PostgreSQL database.
async fn run(kind: Kind, case: impl AsyncFnOnce(Fixture)) {
    let (url, dir, database) = match kind {
        Kind::Embedded => {
            let dir = tempfile::tempdir().unwrap();
            (sqlite_url(dir.path()), Some(dir), None)
        }
        Kind::Scaled => {
            let database = TestDatabase::create().await;
            (database.url.clone(), None, Some(database))
        }
    };
    let db = Db::connect(&url).await.unwrap();
    db.migrate(&MIGRATIONS).await.unwrap();
    case(Fixture {
        db,
        _dir: dir,
        _database: database,
    })
    .await;
}

fn store(f: &Fixture, ttl: Duration) -> IdempotencyStore {
    IdempotencyStore::new(f.db.clone(), ttl)
}

const HOUR: Duration = Duration::from_secs(3600);

async fn replays_the_first_answer(f: Fixture) {
    let s = store(&f, HOUR);
    let Begin::New(p) = s.begin("scope", "k1", b"fp").await.unwrap() else {
        panic!("new")
    };
    p.complete(StatusCode::CREATED, br#"{"id":1}"#)
        .await
        .unwrap();
    for _ in 0..2 {
        match s.begin("scope", "k1", b"fp").await.unwrap() {
            Begin::Replay { status, body } => {
                assert_eq!(status, StatusCode::CREATED);
                assert_eq!(&body[..], br#"{"id":1}"#);
            }
            Begin::New(_) => panic!("expected a replay"),
        }
    }
    // Another scope is another key space.
    assert!(matches!(
        s.begin("other", "k1", b"fp").await.unwrap(),
        Begin::New(_)
    ));
}

async fn reuse_with_another_request_is_422(f: Fixture) {
    let s = store(&f, HOUR);
    let Begin::New(p) = s.begin("scope", "k2", b"fp-a").await.unwrap() else {
        panic!("new")
    };
    p.complete(StatusCode::CREATED, b"{}").await.unwrap();
    let err = s.begin("scope", "k2", b"fp-b").await.unwrap_err();
    assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err.slug(), "idempotency-key-reused");
}

async fn in_progress_is_409_until_released(f: Fixture) {
    let s = store(&f, HOUR);
    let Begin::New(p) = s.begin("scope", "k3", b"fp").await.unwrap() else {
        panic!("new")
    };
    let err = s.begin("scope", "k3", b"fp").await.unwrap_err();
    assert_eq!(
        (err.status, err.slug()),
        (StatusCode::CONFLICT, "idempotency-in-progress")
    );
    p.abort().await;
    let Begin::New(p) = s.begin("scope", "k3", b"fp").await.unwrap() else {
        panic!("released")
    };
    // Dropping a pending key releases it too (in the background).
    drop(p);
    let mut released = false;
    for _ in 0..100 {
        if matches!(s.begin("scope", "k3", b"fp").await, Ok(Begin::New(_))) {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(released, "a dropped pending key is released");
}

async fn concurrent_duplicates_get_one_winner(f: Fixture) {
    let s = store(&f, HOUR);
    let attempts = (0..8).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.begin("scope", "k4", b"fp").await })
    });
    let mut new = Vec::new();
    let mut conflicts = 0;
    for a in attempts {
        match a.await.unwrap() {
            Ok(Begin::New(p)) => new.push(p),
            Ok(Begin::Replay { .. }) => panic!("nothing completed yet"),
            Err(p) => {
                assert_eq!(p.status, StatusCode::CONFLICT, "{p}");
                conflicts += 1;
            }
        }
    }
    assert_eq!((new.len(), conflicts), (1, 7));
    for p in new {
        p.complete(StatusCode::OK, b"1").await.unwrap();
    }
}

async fn expired_keys_are_reusable_and_swept(f: Fixture) {
    let s = store(&f, Duration::from_millis(50));
    let Begin::New(p) = s.begin("scope", "k5", b"fp-a").await.unwrap() else {
        panic!("new")
    };
    p.complete(StatusCode::CREATED, b"{}").await.unwrap();
    let Begin::New(p) = s.begin("scope", "k6", b"fp").await.unwrap() else {
        panic!("new")
    };
    p.complete(StatusCode::CREATED, b"{}").await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    // After the ttl the key starts over, even for another request.
    let Begin::New(p) = s.begin("scope", "k5", b"fp-b").await.unwrap() else {
        panic!("expired key is new")
    };
    p.complete(StatusCode::CREATED, b"{}").await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(s.sweep().await.unwrap() >= 1);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM praxis_idempotency")
        .fetch_one(f.db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

praxis_testkit::backend_matrix!(
    crate::idempotency::run,
    crate::idempotency: [
    replays_the_first_answer,
    reuse_with_another_request_is_422,
    in_progress_is_409_until_released,
    concurrent_duplicates_get_one_winner,
    expired_keys_are_reusable_and_swept,
]);

fn idem_request(key: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post("/api/v1/test/idem").header("content-type", "application/json");
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn over_http() {
    let app = TestApp::new().await;
    let first = app
        .send(idem_request(Some("abc"), r#"{"name":"a","count":1}"#))
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), "");
    let again = app
        .send(idem_request(Some("abc"), r#"{"name":"a","count":1}"#))
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), "true");
    app.send(idem_request(Some("abc"), r#"{"name":"b","count":1}"#))
        .await
        .assert_problem(422, "idempotency-key-reused");
    let p = app
        .send(idem_request(Some("bad key"), "{}"))
        .await
        .assert_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
}

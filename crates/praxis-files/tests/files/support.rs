//! The harness: the file storage on a test platform, started through its plug-in, and the
//! full app driven in process (or served on a socket for outside clients). Users are made up:
//! the bearer token `u:<id>` is account `<id>`; `test-admin-key` is the admin.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

use praxis_files::{FilesSettings, FilesSystem};
use praxis_testkit::{Kind, Resp, TestAuthenticator, TestBackend, http};

/// The tus endpoint.
pub const TUS: &str = "/api/v1/files/tus/";
/// The admin key of the harness.
pub const ADMIN: &str = "test-admin-key";

/// One app on one backend.
pub struct Harness {
    /// The backend that owns the data (kept alive with the app).
    pub backend: TestBackend,
    /// The full app.
    pub app: Router,
    /// The use cases, for the sweeper and the scanner.
    pub files: praxis_files::Files,
}

impl Harness {
    /// The file storage with the defaults on a fresh backend of `kind`.
    pub async fn start(kind: Kind) -> Self {
        Self::with(kind, FilesSettings::default()).await
    }

    /// The file storage with `settings` on a fresh backend of `kind`.
    pub async fn with(kind: Kind, settings: FilesSettings) -> Self {
        Self::on(kind.start().await, settings).await
    }

    /// The file storage on `backend`, with a signing key every process of a test shares.
    pub async fn on(backend: TestBackend, settings: FilesSettings) -> Self {
        praxis_http::system::apply_migrations(&backend.platform, &[&praxis_files::MIGRATIONS])
            .await
            .unwrap_or_else(|e| panic!("files migrations failed on {}: {e}", backend.name));
        let app = praxis_files::FilesApp::launch(
            &backend.platform,
            settings,
            "test-signing-key-0123456789abcdef0123456789",
            Vec::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("files failed to start on {}: {e}", backend.name));
        let files = app.files().clone();
        let auth = TestAuthenticator::new().made_up_users(&[]).settings(ADMIN);
        let router = http::app(vec![app.service()], &backend.platform, auth);
        Self {
            backend,
            app: router,
            files,
        }
    }

    /// Starts through the plug-in, as `praxis serve` does (secrets resolved by the kit).
    pub async fn through_plugin(kind: Kind) -> (TestBackend, Router) {
        let backend = kind.start().await;
        let started = backend
            .start_system(&FilesSystem, FilesSettings::default())
            .await
            .unwrap_or_else(|e| panic!("files failed to start on {}: {e}", backend.name));
        let auth = TestAuthenticator::new().made_up_users(&[]).settings(ADMIN);
        let app = http::app(vec![started.service], &backend.platform, auth);
        (backend, app)
    }

    /// Sends a request with raw headers and body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        http::send(&self.app, b.body(body).unwrap()).await
    }

    /// A JSON request as account `user` (`None`: anonymous).
    pub async fn call(
        &self,
        user: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let bearer = user.map(|u| format!("u:{u}"));
        http::send(
            &self.app,
            http::bearer_request(method, path, bearer.as_deref(), body),
        )
        .await
    }

    /// tus creation as `user` with `headers` (besides Tus-Resumable and Authorization);
    /// returns the upload URL.
    pub async fn create(&self, user: &str, headers: &[(&str, &str)]) -> Resp {
        let auth = format!("Bearer u:{user}");
        let mut all = vec![("tus-resumable", "1.0.0"), ("authorization", auth.as_str())];
        all.extend_from_slice(headers);
        self.raw(Method::POST, TUS, &all, Body::empty()).await
    }

    /// Creates an upload of `length` bytes named `name`; its URL.
    pub async fn new_upload(&self, user: &str, length: usize, name: &str) -> String {
        let len = length.to_string();
        let meta = metadata(&[("filename", name), ("filetype", "application/octet-stream")]);
        let r = self
            .create(user, &[("upload-length", &len), ("upload-metadata", &meta)])
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.header("location").unwrap().to_owned()
    }

    /// PATCH `bytes` at `offset` as `user`, with extra headers.
    pub async fn patch(
        &self,
        user: &str,
        url: &str,
        offset: u64,
        bytes: Bytes,
        extra: &[(&str, &str)],
    ) -> Resp {
        let auth = format!("Bearer u:{user}");
        let off = offset.to_string();
        let mut all = vec![
            ("tus-resumable", "1.0.0"),
            ("authorization", auth.as_str()),
            ("content-type", "application/offset+octet-stream"),
            ("upload-offset", off.as_str()),
        ];
        all.extend_from_slice(extra);
        self.raw(Method::PATCH, url, &all, Body::from(bytes)).await
    }

    /// HEAD of an upload as `user`.
    pub async fn head(&self, user: &str, url: &str) -> Resp {
        let auth = format!("Bearer u:{user}");
        self.raw(
            Method::HEAD,
            url,
            &[("tus-resumable", "1.0.0"), ("authorization", &auth)],
            Body::empty(),
        )
        .await
    }

    /// GET `path` as `user` with extra headers.
    pub async fn get(&self, user: Option<&str>, path: &str, extra: &[(&str, &str)]) -> Resp {
        let auth = user.map(|u| format!("Bearer u:{u}"));
        let mut all: Vec<(&str, &str)> = extra.to_vec();
        if let Some(a) = auth.as_deref() {
            all.push(("authorization", a));
        }
        self.raw(Method::GET, path, &all, Body::empty()).await
    }

    /// Uploads `bytes` whole (tus, one PATCH) as `user`; the file id.
    pub async fn upload(&self, user: &str, name: &str, bytes: &[u8]) -> String {
        let url = self.new_upload(user, bytes.len(), name).await;
        if !bytes.is_empty() {
            let r = self
                .patch(user, &url, 0, Bytes::copy_from_slice(bytes), &[])
                .await;
            assert_eq!(r.status, 204, "{}", r.text());
        }
        url.rsplit('/').next().unwrap().to_owned()
    }

    /// A partial upload (`Upload-Concat: partial`) of `bytes`, sent whole; its URL.
    pub async fn partial_upload(&self, user: &str, bytes: &[u8]) -> String {
        let len = bytes.len().to_string();
        let r = self
            .create(
                user,
                &[("upload-length", &len), ("upload-concat", "partial")],
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let url = r.header("location").unwrap().to_owned();
        let r = self
            .patch(user, &url, 0, Bytes::copy_from_slice(bytes), &[])
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        url
    }

    /// The metadata of file `id` as `user` (200 expected).
    pub async fn file_meta(&self, user: &str, id: &str) -> Value {
        self.call(
            Some(user),
            Method::GET,
            &format!("/api/v1/files/{id}"),
            None,
        )
        .await
        .ok(200)
    }

    /// Serves the app on a loopback socket; its base URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = self.app.clone();
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        format!("http://{addr}")
    }

    /// Runs a SQL statement on the backend's database (to age rows in lifecycle cases).
    pub async fn sql(&self, statement: &str) {
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(self.backend.platform.db.pool())
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    /// One integer from the database.
    pub async fn scalar(&self, query: &str) -> i64 {
        use sqlx::Row;
        let row = sqlx::query(sqlx::AssertSqlSafe(query.to_owned()))
            .fetch_one(self.backend.platform.db.pool())
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        row.try_get::<i64, _>(0).unwrap()
    }
}

/// `Upload-Metadata` of these pairs.
pub fn metadata(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} {}",
                base64::engine::general_purpose::STANDARD.encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `n` bytes of a repeatable pattern unique to `seed`.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u64)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(u64::from(seed)) as u8
                ^ seed
        })
        .collect()
}

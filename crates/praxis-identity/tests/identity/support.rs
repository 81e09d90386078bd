//! The harness: a platform, the identity system on it, and the full app (with the identity
//! authenticator wired into the auth settings) driven with `tower::ServiceExt::oneshot`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use praxis_http::AuthSettings;
use praxis_identity::domain::password::HashCost;
use praxis_identity::{Identity, IdentitySettings};
use praxis_infra::Platform;
use praxis_testkit::{Kind, TestBackend, http};

pub use praxis_testkit::Resp;

/// The bootstrap admin key of every test app.
pub const KEY: &str = "test-admin-key-0123456789";
/// The HS256 secret of every test app.
pub const SECRET: &[u8] = b"test-jwt-secret-0123456789abcdef0123456789";
/// A password that passes the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// Settings used by the tests: the test secret, and a cheaper argon2 cost so the suite does
/// not spend its time hashing (the OWASP cost is the default and is tested in unit tests).
pub fn settings() -> IdentitySettings {
    IdentitySettings {
        hash_cost: HashCost {
            memory_kib: 1024,
            iterations: 1,
            lanes: 1,
        },
        ..IdentitySettings::with_secret(SECRET.to_vec())
    }
}

/// One app on one backend.
pub struct Harness {
    /// The test backend that owns the data.
    pub backend: TestBackend,
    /// The full app.
    pub app: Router,
}

/// Runs a case of the backend matrix on a fresh harness of `kind`.
pub async fn run(kind: Kind, case: impl AsyncFnOnce(&Harness)) {
    case(&Harness::on(kind.start().await, settings()).await).await;
}

/// Tokens of a login.
#[derive(Debug, Clone)]
pub struct Login {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// The account id.
    pub id: String,
}

impl Harness {
    /// The same kind of backend as `self`, with other settings (fresh data).
    pub async fn sibling(&self, settings: IdentitySettings) -> Self {
        Self::on(self.backend.services.start().await, settings).await
    }

    /// The app on `backend`.
    pub async fn on(backend: TestBackend, settings: IdentitySettings) -> Self {
        let (_identity, app) = app_on(&backend.platform, settings).await;
        Self { backend, app }
    }

    /// The platform.
    pub fn platform(&self) -> &Platform {
        &self.backend.platform
    }

    /// Sends a request.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        http::send(&self.app, req).await
    }

    /// A request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        self.call_from(None, method, path, bearer, body).await
    }

    /// [`Harness::call`] from a client address (as the server's connection info).
    pub async fn call_from(
        &self,
        client: Option<IpAddr>,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = http::bearer_request(method, path, bearer, body);
        if let Some(ip) = client {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(ip, 40_000)));
        }
        self.send(req).await
    }

    /// A request with a raw body and content type.
    pub async fn raw(&self, method: Method, path: &str, bearer: Option<&str>, body: &str) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        self.send(b.body(Body::from(body.to_owned())).expect("request"))
            .await
    }

    /// Signs up `email` with [`PASSWORD`]; returns the account id.
    pub async fn sign_up(&self, email: &str) -> String {
        let r = self
            .call(
                Method::POST,
                "/api/v1/identity/signup",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await
            .ok(201);
        r["id"].as_str().expect("id").to_owned()
    }

    /// Logs in with [`PASSWORD`], asserting 200.
    pub async fn login(&self, email: &str) -> Login {
        let r = self
            .call(
                Method::POST,
                "/api/v1/identity/login",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        let body = r.ok(200);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        Login {
            access: body["access_token"].as_str().expect("access").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_owned(),
            id: body["account"]["id"].as_str().expect("id").to_owned(),
        }
    }

    /// Signs up and logs in.
    pub async fn account(&self, email: &str) -> Login {
        self.sign_up(email).await;
        self.login(email).await
    }

    /// `GET /api/v1/identity/me` with a bearer token.
    pub async fn me(&self, bearer: &str) -> Resp {
        self.call(Method::GET, "/api/v1/identity/me", Some(bearer), None)
            .await
    }

    /// Runs a statement on the backend's database (test setup such as expiring a token).
    pub async fn sql(&self, statement: &str, binds: &[&str]) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()));
        for b in binds {
            q = q.bind(*b);
        }
        q.execute(self.platform().db.pool()).await.expect("sql");
    }
}

/// The identity system and the full app on a platform.
pub async fn app_on(platform: &Platform, settings: IdentitySettings) -> (Identity, Router) {
    let migrations = praxis_http::system::System::migrations(&praxis_identity::IdentitySystem);
    praxis_http::system::apply_migrations(platform, migrations)
        .await
        .unwrap_or_else(|e| panic!("identity migrations failed: {e}"));
    let identity = Identity::launch(platform, settings)
        .await
        .unwrap_or_else(|e| panic!("identity failed to start: {e}"));
    let auth = AuthSettings {
        admin_key: Some(KEY.into()),
        authenticator: Some(identity.authenticator()),
        ..AuthSettings::default()
    };
    let app = http::app(vec![identity.service()], platform, auth);
    (identity, app)
}

/// Unix seconds now.
pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims of a valid access token of the test app for `sub`, lasting `ttl`.
pub fn claims(sub: &str, scope: &str, ttl: Duration) -> Value {
    let now = now();
    json!({
        "iss": "praxis",
        "aud": "praxis",
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + ttl.as_secs(),
        "jti": "test",
        "scope": scope,
        "role": "user",
        "plan": "free",
    })
}

/// An HS256 token over `claims` with `secret`.
pub fn hs256(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret).expect("a non-empty HMAC key"),
    )
    .expect("sign")
}

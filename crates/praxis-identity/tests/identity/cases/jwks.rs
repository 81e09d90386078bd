//! RS256 tokens of an external identity provider, verified against its JWKS served by a local
//! axum server with keys generated here; and the algorithm-confusion attack.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::RwLock;
use rsa::PrivateKey;
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};
use serde_json::{Value, json};

use praxis_identity::JwksSettings;

use crate::support::{Harness, SECRET, claims, hs256, now, settings};

const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "praxis-api";

/// An RSA key: its signing key, public JWK and public PEM.
struct RsaKey {
    encoding: EncodingKey,
    public_pem: String,
    jwk: Jwk,
}

fn generate(kid: &str) -> RsaKey {
    let mut rng = rand::rng();
    let private = PrivateKey::new(&mut rng, 2048).expect("rsa keygen");
    let der = private.to_pkcs1_der().expect("der");
    let encoding = EncodingKey::from_rsa_der(der.as_bytes());
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("jwk");
    jwk.common.key_id = Some(kid.to_owned());
    let public_pem = private
        .to_public_key()
        .to_pkcs1_pem(LineEnding::LF)
        .expect("pem");
    RsaKey {
        encoding,
        public_pem,
        jwk,
    }
}

/// Three keys, generated once per test process: the provider's first and rotated keys, and
/// an attacker's.
fn keys() -> &'static [RsaKey; 3] {
    static KEYS: OnceLock<[RsaKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| [generate("k1"), generate("k2"), generate("k2")])
}

fn rs256(key: &RsaKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

fn external_claims(sub: &str) -> Value {
    let mut c = claims(sub, "keys:read links:read", Duration::from_secs(3600));
    c["iss"] = json!(ISSUER);
    c["aud"] = json!(AUDIENCE);
    c.as_object_mut().expect("object").remove("role");
    c
}

/// A local JWKS endpoint whose key set the test can swap; counts fetches.
struct JwksServer {
    url: url::Url,
    set: Arc<RwLock<Value>>,
    fetches: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct ServerState {
    set: Arc<RwLock<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve_jwks(State(s): State<ServerState>) -> axum::Json<Value> {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(s.set.read().clone())
}

async fn jwks_server(keys: &[&Jwk]) -> JwksServer {
    let set = Arc::new(RwLock::new(key_set(keys)));
    let fetches = Arc::new(AtomicUsize::new(0));
    let state = ServerState {
        set: set.clone(),
        fetches: fetches.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new()
        .route("/.well-known/jwks.json", get(serve_jwks))
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    JwksServer {
        url: url::Url::parse(&format!("http://{addr}/.well-known/jwks.json")).expect("url"),
        set,
        fetches,
    }
}

fn key_set(keys: &[&Jwk]) -> Value {
    serde_json::to_value(JwkSet {
        keys: keys.iter().map(|k| (*k).clone()).collect(),
    })
    .expect("jwks json")
}

fn jwks_settings(url: url::Url) -> JwksSettings {
    JwksSettings {
        url,
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        cache_ttl: Duration::from_secs(600),
        min_refresh_interval: Duration::ZERO,
    }
}

pub async fn rs256_tokens_verify_through_jwks(h: &Harness) {
    let [k1, k2, attacker] = keys();
    let server = jwks_server(&[&k1.jwk]).await;
    let ext = h
        .sibling(praxis_identity::IdentitySettings {
            jwks: Some(jwks_settings(server.url.clone())),
            ..settings()
        })
        .await;
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1, "fetched at start");

    let me = ext
        .me(&rs256(k1, Some("k1"), &external_claims("ext-user-1")))
        .await
        .ok(200);
    assert_eq!(me["subject"], "ext-user-1");
    assert_eq!(me["scopes"], json!(["keys:read", "links:read"]));
    assert!(me.get("account").is_none(), "no local account: {me}");
    // Praxis's own HS256 tokens keep working beside the provider's.
    let own = ext.account("local@example.com").await;
    ext.me(&own.access).await.ok(200);

    // The provider rotates to k2: a token naming the unknown kid makes praxis fetch again.
    *server.set.write() = key_set(&[&k2.jwk]);
    ext.me(&rs256(k2, Some("k2"), &external_claims("ext-user-1")))
        .await
        .ok(200);
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);
    // k1 is no longer published.
    let detail = ext
        .me(&rs256(k1, Some("k1"), &external_claims("ext-user-1")))
        .await
        .unauthorized();
    assert!(detail.contains("k1"), "{detail}");

    // An attacker's key under the provider's kid: bad signature.
    let detail = ext
        .me(&rs256(attacker, Some("k2"), &external_claims("ext-user-1")))
        .await
        .unauthorized();
    assert!(detail.contains("signature"), "{detail}");

    // Issuer, audience and expiry are checked for provider tokens too.
    let mut c = external_claims("ext-user-1");
    c["iss"] = json!("praxis");
    ext.me(&rs256(k2, Some("k2"), &c)).await.unauthorized();
    let mut c = external_claims("ext-user-1");
    c["aud"] = json!("praxis");
    ext.me(&rs256(k2, Some("k2"), &c)).await.unauthorized();
    let mut c = external_claims("ext-user-1");
    c["exp"] = json!(now() - 3600);
    let detail = ext.me(&rs256(k2, Some("k2"), &c)).await.unauthorized();
    assert!(detail.contains("expired"), "{detail}");
    // Without a kid, the only published key is used.
    ext.me(&rs256(k2, None, &external_claims("ext-user-1")))
        .await
        .ok(200);
}

pub async fn algorithm_confusion_is_rejected(h: &Harness) {
    let [k1, ..] = keys();
    let server = jwks_server(&[&k1.jwk]).await;
    let ext = h
        .sibling(praxis_identity::IdentitySettings {
            jwks: Some(jwks_settings(server.url.clone())),
            ..settings()
        })
        .await;
    // HS256 "signed" with the provider's public key as the HMAC secret: checked against
    // praxis's own secret, never against the RSA key.
    for c in [external_claims("ext-user-1"), {
        let mut own = claims("someone", "keys:read", Duration::from_secs(3600));
        own["role"] = json!("admin");
        own
    }] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let forged = jsonwebtoken::encode(
            &header,
            &c,
            &EncodingKey::from_secret(k1.public_pem.as_bytes()).expect("a non-empty HMAC key"),
        )
        .expect("sign");
        let detail = ext.me(&forged).await.unauthorized();
        assert!(detail.contains("signature"), "{detail}");
    }
    // Without a JWKS configured, RS256 tokens are refused outright.
    let detail = h
        .me(&rs256(k1, Some("k1"), &external_claims("ext-user-1")))
        .await
        .unauthorized();
    assert!(detail.contains("jwks_url"), "{detail}");
    // And an RS256 token cannot pass as one of praxis's own (HS256) tokens.
    let mut c = claims("someone", "keys:read", Duration::from_secs(3600));
    c["role"] = json!("admin");
    ext.me(&rs256(k1, Some("k1"), &c)).await.unauthorized();
    // Sanity: the test secret does sign valid HS256 tokens on this app.
    let own = ext.account("conf@example.com").await;
    ext.me(&hs256(
        &claims(&own.id, "keys:read", Duration::from_secs(60)),
        SECRET,
    ))
    .await
    .ok(200);
}

pub async fn unreachable_jwks_is_unavailable(h: &Harness) {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let url = url::Url::parse(&format!("http://{addr}/jwks.json")).expect("url");
    let ext = h
        .sibling(praxis_identity::IdentitySettings {
            jwks: Some(jwks_settings(url)),
            ..settings()
        })
        .await;
    let [k1, ..] = keys();
    ext.call(
        Method::GET,
        "/api/v1/identity/me",
        Some(&rs256(k1, Some("k1"), &external_claims("ext-user-1"))),
        None,
    )
    .await
    .problem(503);
}

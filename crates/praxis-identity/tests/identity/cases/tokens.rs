//! Access tokens: every rejection case answers 401 problem+json naming the reason; a valid
//! token without the needed scope answers 403.

use std::time::Duration;

use axum::http::Method;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::support::{Harness, SECRET, claims, hs256, now};

const HOUR: Duration = Duration::from_secs(3600);

pub async fn login_token_grants_access(h: &Harness) {
    let login = h.account("tok@example.com").await;
    let me = h.me(&login.access).await.ok(200);
    assert_eq!(me["subject"], login.id.as_str());
    assert_eq!(me["credential"], "access_token");
    assert_eq!(me["account"]["email"], "tok@example.com");
    assert_eq!(me["admin"], false);
    let scopes: Vec<&str> = me["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(
        scopes,
        ["links:read", "links:write", "keys:read", "keys:write"]
    );
    // A token minted with the test secret and the right claims works too.
    let minted = hs256(&claims(&login.id, "keys:read", HOUR), SECRET);
    h.me(&minted).await.ok(200);
    // No credentials at all.
    h.call(Method::GET, "/api/v1/identity/me", None, None)
        .await
        .unauthorized();
}

pub async fn alg_none_is_rejected(h: &Harness) {
    let login = h.account("none@example.com").await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims(&login.id, "keys:read", HOUR).to_string());
    for token in [format!("{header}.{body}."), format!("{header}.{body}.c2ln")] {
        let detail = h.me(&token).await.unauthorized();
        assert!(detail.contains("alg none"), "{detail}");
    }
    let upper = URL_SAFE_NO_PAD.encode(br#"{"alg":"NONE"}"#);
    h.me(&format!("{upper}.{body}.")).await.unauthorized();
    // Other algorithms the server does not use are refused before any signature check.
    let hs512 = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512"}"#);
    let detail = h.me(&format!("{hs512}.{body}.c2ln")).await.unauthorized();
    assert!(detail.contains("HS512"), "{detail}");
}

pub async fn expired_token_is_rejected(h: &Harness) {
    let login = h.account("exp@example.com").await;
    let mut c = claims(&login.id, "keys:read", HOUR);
    c["iat"] = json!(now() - 7200);
    c["nbf"] = json!(now() - 7200);
    c["exp"] = json!(now() - 3600);
    let detail = h.me(&hs256(&c, SECRET)).await.unauthorized();
    assert!(detail.contains("expired"), "{detail}");
    // Without exp at all: refused as well.
    let mut c = claims(&login.id, "keys:read", HOUR);
    c.as_object_mut().expect("object").remove("exp");
    let detail = h.me(&hs256(&c, SECRET)).await.unauthorized();
    assert!(detail.contains("exp"), "{detail}");
}

pub async fn not_yet_valid_token_is_rejected(h: &Harness) {
    let login = h.account("nbf@example.com").await;
    let mut c = claims(&login.id, "keys:read", HOUR);
    c["nbf"] = json!(now() + 1800);
    let detail = h.me(&hs256(&c, SECRET)).await.unauthorized();
    assert!(detail.contains("not valid yet"), "{detail}");
}

pub async fn wrong_issuer_is_rejected(h: &Harness) {
    let login = h.account("iss@example.com").await;
    let mut c = claims(&login.id, "keys:read", HOUR);
    c["iss"] = json!("https://evil.example");
    let detail = h.me(&hs256(&c, SECRET)).await.unauthorized();
    assert!(detail.contains("issuer"), "{detail}");
    c.as_object_mut().expect("object").remove("iss");
    let detail = h.me(&hs256(&c, SECRET)).await.unauthorized();
    assert!(detail.contains("iss"), "{detail}");
}

pub async fn wrong_audience_is_rejected(h: &Harness) {
    let login = h.account("aud@example.com").await;
    let mut c = claims(&login.id, "keys:read", HOUR);
    c["aud"] = json!("another-service");
    let detail = h.me(&hs256(&c, SECRET)).await.unauthorized();
    assert!(detail.contains("audience"), "{detail}");
    c["aud"] = json!(["another-service", "yet-another"]);
    h.me(&hs256(&c, SECRET)).await.unauthorized();
}

pub async fn bad_signature_is_rejected(h: &Harness) {
    let login = h.account("sig@example.com").await;
    // Signed with another secret.
    let other = hs256(
        &claims(&login.id, "keys:read", HOUR),
        b"another-secret-another-secret-another-secret",
    );
    let detail = h.me(&other).await.unauthorized();
    assert!(detail.contains("signature"), "{detail}");
    // A real token whose payload was changed (admin role added), signature kept.
    let parts: Vec<&str> = login.access.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    payload["role"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    let detail = h.me(&forged).await.unauthorized();
    assert!(detail.contains("signature"), "{detail}");
    // Garbage and a truncated token.
    h.me("not-a-token").await.unauthorized();
    h.me(&login.access[..login.access.len() - 5])
        .await
        .unauthorized();
    // The genuine token still works.
    h.me(&login.access).await.ok(200);
}

pub async fn missing_scope_is_forbidden(h: &Harness) {
    let login = h.account("scope@example.com").await;
    let reader = hs256(&claims(&login.id, "keys:read", HOUR), SECRET);
    h.call(Method::GET, "/api/v1/identity/keys", Some(&reader), None)
        .await
        .ok(200);
    let r = h
        .call(
            Method::POST,
            "/api/v1/identity/keys",
            Some(&reader),
            Some(json!({"name": "x", "scopes": ["keys:read"]})),
        )
        .await;
    let body = r.problem(403);
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("keys:write"),
        "{body}"
    );
    assert_eq!(r.fields(), ["scope"]);
    let nothing = hs256(&claims(&login.id, "", HOUR), SECRET);
    h.call(Method::GET, "/api/v1/identity/keys", Some(&nothing), None)
        .await
        .problem(403);
    // Admin routes need the admin role, not a scope.
    h.call(
        Method::GET,
        "/api/v1/identity/accounts",
        Some(&login.access),
        None,
    )
    .await
    .problem(403);
}

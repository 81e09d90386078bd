//! The HTTP providers against a server that answers each status of the contract
//! (docs/commerce.md, "Providers"): what each answer means to the saga.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use praxis_commerce::providers::{HttpPayments, HttpShipping, Payments, ProviderError, Shipping};
use praxis_infra::tls::TrustPolicy;
use serde_json::{Value, json};

/// What the server saw: method, path, idempotency key, body.
type Seen = Arc<Mutex<Vec<(Method, String, Option<String>, Value)>>>;

/// A provider that answers each key as the key says: `ok`, `noid`, `notjson`, or a status
/// code (`402`, `404`, `408`, `429`, `503`...) with a problem body.
async fn start() -> (url::Url, Seen) {
    async fn handle(
        State(seen): State<Seen>,
        method: Method,
        Path((resource, key)): Path<(String, String)>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, String) {
        let idem = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = serde_json::from_str(&body).unwrap_or(Value::Null);
        seen.lock()
            .unwrap()
            .push((method, format!("{resource}/{key}"), idem, body));
        match key.as_str() {
            "ok" => (
                StatusCode::OK,
                json!({"id": format!("{resource}-1")}).to_string(),
            ),
            "noid" => (StatusCode::CREATED, json!({}).to_string()),
            "notjson" => (StatusCode::OK, "fine".to_owned()),
            code => {
                let status = StatusCode::from_u16(code.parse().unwrap()).unwrap();
                let problem = json!({"title": "Refused", "detail": format!("said {code}")});
                (status, problem.to_string())
            }
        }
    }
    let seen = Seen::default();
    let app = Router::new()
        .route("/v1/{resource}/{key}", any(handle))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url.parse().unwrap(), seen)
}

fn declined(r: Result<impl std::fmt::Debug, ProviderError>) -> String {
    match r {
        Err(ProviderError::Declined(why)) => why,
        other => panic!("not a definite no: {other:?}"),
    }
}

fn unavailable(r: Result<impl std::fmt::Debug, ProviderError>) {
    assert!(
        matches!(r, Err(ProviderError::Unavailable(_))),
        "not unavailable: {r:?}"
    );
}

#[tokio::test]
async fn each_answer_of_the_contract_means_what_it_says() {
    let (url, seen) = start().await;
    let trust = TrustPolicy::system();
    let pay = HttpPayments::new(&url, &trust).unwrap();
    let ship = HttpShipping::new(&url, &trust).unwrap();

    // A 2xx with an id: the authorization, PUT under the order's key with the amount.
    assert_eq!(
        pay.authorize("ok", 1_250, "EUR").await.unwrap(),
        "authorizations-1"
    );
    assert_eq!(ship.create("ok").await.unwrap(), "shipments-1");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0, Method::PUT);
        assert_eq!(seen[0].1, "authorizations/ok");
        assert_eq!(seen[0].2.as_deref(), Some("ok"));
        assert_eq!(seen[0].3, json!({"amount_cents": 1250, "currency": "EUR"}));
        assert_eq!(seen[1].1, "shipments/ok");
        assert_eq!(seen[1].3, json!({"order_id": "ok"}));
    }
    // A 4xx is a definite no that says why; 408, 429 and 5xx are "try again".
    assert_eq!(
        declined(pay.authorize("402", 1, "EUR").await),
        "authorizations answered 402: said 402"
    );
    declined(ship.create("422").await);
    for code in ["408", "429", "500", "503"] {
        unavailable(pay.authorize(code, 1, "EUR").await);
    }
    // A success without an id, or not JSON, is not a success.
    unavailable(pay.authorize("noid", 1, "EUR").await);
    unavailable(ship.create("notjson").await);
    // Undoing: 2xx or 404 (never had it) is done; others mean what they mean.
    pay.void("ok").await.unwrap();
    pay.void("404").await.unwrap();
    ship.cancel("404").await.unwrap();
    unavailable(pay.void("503").await);
    declined(ship.cancel("409").await);
    assert_eq!(seen.lock().unwrap().last().unwrap().0, Method::DELETE);
    // Nobody listening: unavailable, not a panic or a hang.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gone = HttpPayments::new(&format!("http://{closed}/").parse().unwrap(), &trust).unwrap();
    unavailable(gone.authorize("ok", 1, "EUR").await);
}

//! Bad input and missing credentials, on both front ends.

use axum::http::Method;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use praxis_testkit::TestBackend;
use serde_json::json;

use crate::cases::check::THREE_PER_DAY;
use crate::support::{ADMIN, CHECKER, Harness, USER, grpc_request, request, with_bearer};

const CHECK: &str = "/api/v1/ratelimit/check";

pub async fn bad_input_is_a_problem_naming_the_field(backend: TestBackend) {
    let h = Harness::new(backend, THREE_PER_DAY).await;
    let cases = [
        (
            json!({"domain": "", "descriptors": [{"entries": [{"key": "ip", "value": "1"}]}]}),
            "domain",
        ),
        (json!({"domain": "edge", "descriptors": []}), "descriptors"),
        (
            json!({"domain": "edge", "descriptors": [{"entries": []}]}),
            "descriptors[0].entries",
        ),
        (
            json!({"domain": "edge", "descriptors": [
                {"entries": [{"key": "ip", "value": "1"}]},
                {"entries": [{"key": "", "value": "1"}]}
            ]}),
            "descriptors[1].entries[0].key",
        ),
        (
            json!({"domain": "edge", "hits": 5_000_000_000u64, "descriptors": [{"entries": [{"key": "ip", "value": "1"}]}]}),
            "hits",
        ),
    ];
    for (body, field) in cases {
        let r = h.call(Method::POST, CHECK, Some(CHECKER), Some(body)).await;
        r.problem(400);
        assert_eq!(r.fields(), vec![field.to_owned()], "{}", r.json());
    }
    // Wrong types and unknown fields are named too.
    let r = h
        .call(
            Method::POST,
            CHECK,
            Some(CHECKER),
            Some(json!({"domain": "edge", "descriptors": [{"entries": [{"key": "ip", "value": 7}]}]})),
        )
        .await;
    let body = r.problem(400);
    assert!(
        body.to_string().contains("descriptors[0].entries[0].value"),
        "{body}"
    );
    let r = h
        .call(
            Method::POST,
            CHECK,
            Some(CHECKER),
            Some(json!({"domain": "edge", "descriptors": [], "hits_addend": 1})),
        )
        .await;
    let body = r.problem(400);
    assert!(body.to_string().contains("hits_addend"), "{body}");
}

pub async fn bad_grpc_input_is_invalid_argument(backend: TestBackend) {
    let h = Harness::new(backend, THREE_PER_DAY).await;
    let mut client = h.grpc().await;
    let cases = [
        (grpc_request("", &[&[("ip", "1")]]), "domain"),
        (grpc_request("edge", &[]), "descriptors"),
        (grpc_request("edge", &[&[]]), "descriptors[0].entries"),
        (
            grpc_request("edge", &[&[("", "1")]]),
            "descriptors[0].entries[0].key",
        ),
        (
            envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest {
                domain: "edge".into(),
                descriptors: vec![RateLimitDescriptor {
                    is_negative_hits: true,
                    ..RateLimitDescriptor::default()
                }],
                hits_addend: 0,
            },
            "descriptors[0].is_negative_hits",
        ),
    ];
    for (req, field) in cases {
        let status = client
            .should_rate_limit(with_bearer(req, Some(CHECKER)))
            .await
            .expect_err("invalid");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with(field), "{field}: {status:?}");
    }
}

pub async fn callers_must_be_authenticated(backend: TestBackend) {
    let h = Harness::new(backend, THREE_PER_DAY).await;
    let body = request("edge", &[&[("ip", "1")]]);
    h.call(Method::POST, CHECK, None, Some(body.clone()))
        .await
        .problem(401);
    h.call(Method::POST, CHECK, Some("forged"), Some(body.clone()))
        .await
        .problem(401);
    let r = h
        .call(Method::POST, CHECK, Some(USER), Some(body.clone()))
        .await;
    let p = r.problem(403);
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or("")
            .contains("ratelimit:check"),
        "{p}"
    );
    // The admin holds every scope.
    h.call(Method::POST, CHECK, Some(ADMIN), Some(body))
        .await
        .ok(200);
    h.call(Method::GET, "/api/v1/ratelimit/config", None, None)
        .await
        .problem(401);

    let mut client = h.grpc().await;
    for (bearer, code) in [
        (None, tonic::Code::Unauthenticated),
        (Some("forged"), tonic::Code::Unauthenticated),
        (Some(USER), tonic::Code::PermissionDenied),
    ] {
        let status = client
            .should_rate_limit(with_bearer(grpc_request("edge", &[&[("ip", "1")]]), bearer))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{bearer:?}: {status:?}");
    }
    client
        .should_rate_limit(with_bearer(
            grpc_request("edge", &[&[("ip", "1")]]),
            Some(ADMIN),
        ))
        .await
        .expect("the admin may check");
}

//! The Envoy RateLimitService v3 API over gRPC, with a tonic client.

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{Code, rate_limit::Unit};
use praxis_testkit::TestBackend;

use crate::cases::check::THREE_PER_DAY;
use crate::support::{Harness, grpc_request, request, should_rate_limit};

pub async fn grpc_should_rate_limit_counts_to_the_limit(backend: TestBackend) {
    let h = Harness::new(backend, THREE_PER_DAY).await;
    let mut client = h.grpc().await;
    for remaining in [2, 1, 0] {
        let res =
            should_rate_limit(&mut client, grpc_request("edge", &[&[("ip", "192.0.2.1")]])).await;
        assert_eq!(res.overall_code, Code::Ok as i32, "{res:?}");
        let s = &res.statuses[0];
        assert_eq!(s.code, Code::Ok as i32);
        assert_eq!(s.limit_remaining, remaining);
        let limit = s.current_limit.as_ref().expect("current limit");
        assert_eq!(
            (limit.requests_per_unit, limit.unit, limit.name.as_str()),
            (3, Unit::Day as i32, "per-ip")
        );
        let reset = s.duration_until_reset.expect("reset");
        assert!(reset.seconds >= 0 && reset.seconds <= 86_400, "{reset:?}");
    }
    let res = should_rate_limit(&mut client, grpc_request("edge", &[&[("ip", "192.0.2.1")]])).await;
    assert_eq!(res.overall_code, Code::OverLimit as i32, "{res:?}");
    assert_eq!(res.statuses[0].code, Code::OverLimit as i32);

    // Several descriptors: OVER_LIMIT when any is; one status per descriptor, in order.
    let res = should_rate_limit(
        &mut client,
        grpc_request(
            "edge",
            &[
                &[("ip", "192.0.2.2")],
                &[("ip", "192.0.2.1")],
                &[("other", "x")],
            ],
        ),
    )
    .await;
    assert_eq!(res.overall_code, Code::OverLimit as i32);
    let codes: Vec<i32> = res.statuses.iter().map(|s| s.code).collect();
    assert_eq!(
        codes,
        vec![Code::Ok as i32, Code::OverLimit as i32, Code::Ok as i32]
    );
    assert!(res.statuses[2].current_limit.is_none());

    // hits_addend counts several hits at once.
    let mut req = grpc_request("edge", &[&[("ip", "192.0.2.3")]]);
    req.hits_addend = 3;
    let res = should_rate_limit(&mut client, req).await;
    assert_eq!(res.overall_code, Code::Ok as i32);
    assert_eq!(res.statuses[0].limit_remaining, 0);
}

pub async fn http_and_grpc_share_one_decision(backend: TestBackend) {
    let h = Harness::new(backend, THREE_PER_DAY).await;
    let mut client = h.grpc().await;
    let entries: &[(&str, &str)] = &[("ip", "203.0.113.9")];
    assert_eq!(h.check_one("edge", entries).await, ("OK".to_owned(), 2));
    let res = should_rate_limit(&mut client, grpc_request("edge", &[entries])).await;
    assert_eq!(res.statuses[0].limit_remaining, 1);
    assert_eq!(h.check_one("edge", entries).await, ("OK".to_owned(), 0));
    let res = should_rate_limit(&mut client, grpc_request("edge", &[entries])).await;
    assert_eq!(res.overall_code, Code::OverLimit as i32);
    let body = h.check(request("edge", &[entries])).await;
    assert_eq!(body["overall_code"], "OVER_LIMIT");
}

//! Limits reloaded without restart.

use praxis_testkit::TestBackend;

use crate::support::{Harness, grpc_request, should_rate_limit, write_limits};

fn per_day(n: u32) -> String {
    format!(
        "domain = \"edge\"\n\n[[descriptors]]\nkey = \"ip\"\nrate_limit = {{ unit = \"day\", requests_per_unit = {n} }}\n"
    )
}

pub async fn limits_reload_without_restart(backend: TestBackend) {
    let h = Harness::new(backend, &per_day(2)).await;
    let ip: &[(&str, &str)] = &[("ip", "203.0.113.1")];
    assert_eq!(h.check_one("edge", ip).await.0, "OK");
    assert_eq!(h.check_one("edge", ip).await.0, "OK");
    assert_eq!(h.check_one("edge", ip).await.0, "OVER_LIMIT");
    let first = h.config().await;

    // A new limit: applied once the watcher sees the file (a changed limit counts afresh).
    write_limits(&h.limits, &per_day(4));
    let cfg = h
        .config_until("the new limits", |c| c["generation"] == 2)
        .await;
    assert_ne!(cfg["version"], first["version"]);
    for remaining in [3, 2, 1, 0] {
        assert_eq!(h.check_one("edge", ip).await, ("OK".to_owned(), remaining));
    }
    let mut client = h.grpc().await;
    let res = should_rate_limit(&mut client, grpc_request("edge", &[ip])).await;
    assert_eq!(
        res.statuses[0]
            .current_limit
            .as_ref()
            .map(|l| l.requests_per_unit),
        Some(4)
    );
    assert_eq!(h.check_one("edge", ip).await.0, "OVER_LIMIT");

    // A bad file keeps the limits in force and shows the error.
    write_limits(
        &h.limits,
        "domain = \"edge\"\n[[descriptors]]\nkey = \"ip\"\nrate_limit = { unit = \"fortnight\", requests_per_unit = 1 }\n",
    );
    let cfg = h
        .config_until("the reload error", |c| c.get("last_error").is_some())
        .await;
    assert_eq!(cfg["generation"], 2, "{cfg}");
    let message = cfg["last_error"]["message"].as_str().expect("message");
    assert!(
        message
            .contains("limits.toml: descriptors[0].rate_limit.unit: \"fortnight\" is not a unit"),
        "{message}"
    );
    let body = h.check(crate::support::request("edge", &[ip])).await;
    assert_eq!(body["statuses"][0]["current_limit"]["requests_per_unit"], 4);

    // Fixed again: the error clears and the new limit applies.
    write_limits(&h.limits, &per_day(6));
    let cfg = h
        .config_until("the fixed limits", |c| c["generation"] == 3)
        .await;
    assert!(cfg.get("last_error").is_none(), "{cfg}");
    assert_eq!(h.check_one("edge", ip).await, ("OK".to_owned(), 5));
}

//! Consistent hashing on a header over real upstream processes.

use std::collections::HashMap;

use praxis_gateway::InstanceSpec;

use crate::support::*;

async fn owners(http: &reqwest::Client, gw: &Gw, keys: usize) -> HashMap<usize, String> {
    let mut owners = HashMap::new();
    for k in 0..keys {
        let user = format!("user-{k}");
        let (status, id) = get_with(http, gw, "/feed", &[("x-user", &user)]).await;
        assert_eq!(status, 200);
        owners.insert(k, id.expect("upstream id"));
    }
    owners
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_an_instance_moves_about_a_quarter_of_the_keys_all_to_it() {
    let mut ups = upstreams("h", 3).await;
    let gw = gateway(&config(
        &ups,
        "algorithm = \"ring_hash\"\nhash_key = \"header:x-user\"\nhealth.check = \"none\"",
        "",
    ))
    .await;
    let http = client();
    let keys = 600;
    let before = owners(&http, &gw, keys).await;
    // The same key goes to the same instance.
    assert_eq!(
        owners(&http, &gw, 100).await,
        before
            .iter()
            .filter(|(k, _)| **k < 100)
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    );
    let counts = tally(before.values().cloned().map(Some));
    assert_eq!(counts.len(), 3, "every instance owns keys: {counts:?}");

    ups.push(Upstream::spawn("h3").await);
    let specs: Vec<InstanceSpec> = ups
        .iter()
        .map(|u| InstanceSpec::Addr(u.addr.clone()))
        .collect();
    gw.gateway
        .set_instances("p", &specs)
        .await
        .expect("add an instance");
    let after = owners(&http, &gw, keys).await;
    let moved: Vec<usize> = (0..keys).filter(|k| before[k] != after[k]).collect();
    let fraction = moved.len() as f64 / keys as f64;
    eprintln!(
        "ring hash: {} of {keys} keys moved from 3 to 4 instances",
        moved.len()
    );
    assert!(
        (0.15..=0.35).contains(&fraction),
        "moved {fraction:.3} of the keys (1/4 expected)"
    );
    assert!(
        moved.iter().all(|k| after[k] == "h3"),
        "keys move only to the new instance"
    );
}

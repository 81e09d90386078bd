//! The gateway against real upstream processes (`gateway-upstream`, this crate's helper
//! binary), each test with its own upstreams and gateway on ports the system picks.

mod support;

mod api;
mod balancing;
mod canary;
mod envoy;
mod hashing;
mod health;
mod metrics;
mod protection;
mod proxying;
mod reload;
mod rollout;
mod websocket;

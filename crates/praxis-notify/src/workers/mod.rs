//! The pipeline stages and the background work: accept, expand, dispatch (with the channel
//! senders), digest batches, the in-app inbox, the metrics sampler, retention, and the
//! consumer of the commerce system's order events (order emails).

pub mod accept;
pub mod channels;
pub mod digest;
pub mod dispatch;
pub mod expand;
pub mod inapp;
pub mod metrics;
pub mod order_events;
pub mod retention;

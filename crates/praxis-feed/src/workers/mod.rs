//! The feed's moving parts: the fan-out consumer, the read path that merges and rebuilds
//! timelines, the caches that hydrate its pages, and the metrics they record.

pub mod fanout;
pub mod home;
pub mod hydrate;
pub mod metrics;

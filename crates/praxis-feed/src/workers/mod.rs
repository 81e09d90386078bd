//! The feed's moving parts: the fan-out consumer, the read path that merges and rebuilds
//! timelines, and the metrics they record.

pub mod fanout;
pub mod home;
pub mod metrics;

//! Per-entry L1 expiry: jittered TTL for values, a separate one for negative entries.

use std::time::{Duration, Instant};

pub(super) struct JitteredExpiry {
    pub(super) ttl: Duration,
    pub(super) negative_ttl: Duration,
    pub(super) jitter: f64,
}

impl JitteredExpiry {
    fn ttl_for<V>(&self, value: &Option<V>) -> Duration {
        let base = if value.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        };
        praxis_kit::jitter::jittered(base, self.jitter)
    }
}

impl<V> moka::Expiry<String, Option<V>> for JitteredExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Option<V>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(self.ttl_for(value))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Option<V>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl_for(value))
    }
}

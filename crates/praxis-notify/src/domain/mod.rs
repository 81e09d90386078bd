//! The pure rules of notification delivery: no SQL, no workers, no HTTP.

pub mod address;
pub mod channel;
pub mod dedupe;
pub mod model;
pub mod order_event;
pub mod order_templates;
pub mod quiet_hours;
pub mod ssrf;
pub mod template;
pub mod unsubscribe;

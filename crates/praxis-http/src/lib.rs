//! praxis-http: the HTTP conventions every praxis system shares.
//!
//! - [`problem`]: RFC 9457 `application/problem+json` errors with stable `type` URIs.
//! - [`extract`]: `Json`, `Query`, `Path` extractors whose rejections are problems.
//! - [`request_id`], access log and metrics: applied to every route by [`app::app`].
//! - [`auth`]: the authentication port (`Principal`, `Authenticator`) and the `Caller` extractor;
//!   [`access`]: the `Require<Scope>` extractor that checks scopes and ownership.
//! - [`responses`]: the OpenAPI answers of the problems most routes share; [`openapi`]: the
//!   services' documents merged into one, refusing schema-name clashes.
//! - [`idempotency`]: `Idempotency-Key` store on the system's database.
//! - [`pagination`]: opaque cursors and limits.
//! - [`service`] and [`app`]: what systems hand the binary, and how it serves them.

pub mod access;
pub mod access_log;
pub mod app;
pub mod auth;
pub mod client_ip;
mod context;
pub mod extract;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
mod ops;
pub mod pagination;
pub mod principal;
pub mod problem;
pub mod ratelimit;
pub mod request_id;
pub mod responses;
pub mod service;
mod stack;
pub mod system;

pub use access::{Require, Scope};
pub use app::{HttpOptions, app, install_metrics_recorder};
pub use auth::{AuthFailure, AuthSettings, Authenticator, Caller, Principal, PrincipalKind};
pub use extract::{Json, Path, Query};
pub use ops::{Dependency, Health, Readiness};
pub use problem::{FieldError, Problem};
pub use service::Service;

//! Envoy's `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` over gRPC (tonic, with
//! the generated code of the `envoy-types` crate), so an Envoy proxy can use praxis as its
//! rate-limit service. It calls the same [`Decider::check`](crate::Decider::check) as the HTTP
//! route.
//!
//! Callers authenticate like HTTP callers: metadata `authorization: Bearer <token>` (an API key
//! with the scope `ratelimit:check`, an access token of an admin, or the admin key), which
//! Envoy sends with `grpc_service.initial_metadata`. Answers: `UNAUTHENTICATED` without a
//! valid credential, `PERMISSION_DENIED` without the scope, `INVALID_ARGUMENT` naming the field
//! for a bad request, `UNAVAILABLE` when the limiter's store is down and the domain fails
//! closed (Envoy then applies its `failure_mode_deny`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{self, HeaderValue, header};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    self as pb_response, rate_limit::Unit as PbUnit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration as PbDuration;
use praxis_http::AuthSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::domain::limits::Unit;
use crate::settings::CHECK_SCOPE;
use crate::workers::decide::{
    CheckRequest, CheckResponse, Code, CurrentLimit, Descriptor, DescriptorStatus, Entry,
};
use crate::workers::reload::Reloader;

/// The gRPC service: `RateLimitServiceServer::new(GrpcApi)`.
#[derive(Debug, Clone)]
pub struct GrpcApi {
    reloader: Arc<Reloader>,
    auth: Arc<AuthSettings>,
}

impl GrpcApi {
    /// The API over `reloader`'s decider, authenticating callers with `auth`.
    pub fn new(reloader: Arc<Reloader>, auth: AuthSettings) -> Self {
        Self {
            reloader,
            auth: Arc::new(auth),
        }
    }

    /// The tonic service to add to a `tonic::transport::Server`.
    pub fn into_server(self) -> RateLimitServiceServer<GrpcApi> {
        RateLimitServiceServer::new(self)
    }

    /// Checks the `authorization` metadata the way the HTTP stack checks the header.
    async fn authorize(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let mut req = http::Request::new(());
        if let Some(value) = metadata.get("authorization")
            && let Ok(v) = HeaderValue::from_bytes(value.as_bytes())
        {
            req.headers_mut().insert(header::AUTHORIZATION, v);
        }
        req.extensions_mut().insert(self.auth.clone());
        let (mut parts, ()) = req.into_parts();
        match praxis_http::auth::principal(&mut parts).await {
            Ok(Some(p)) if p.has_scope(CHECK_SCOPE) => Ok(()),
            Ok(Some(_)) => Err(Status::permission_denied(format!(
                "the credentials lack the scope `{CHECK_SCOPE}` this service needs"
            ))),
            Ok(None) => Err(Status::unauthenticated(
                "send metadata authorization: Bearer <API key with the scope ratelimit:check>",
            )),
            Err(p) if p.status == http::StatusCode::SERVICE_UNAVAILABLE => {
                Err(Status::unavailable(p.detail))
            }
            Err(p) => Err(Status::unauthenticated(p.detail)),
        }
    }
}

#[tonic::async_trait]
impl RateLimitService for GrpcApi {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        self.authorize(request.metadata()).await?;
        let req = from_proto(request.into_inner())?;
        let errors = req.validate();
        if !errors.is_empty() {
            let text = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Status::invalid_argument(text));
        }
        let res = self
            .reloader
            .decider()
            .check(&req)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(to_proto(&res)))
    }
}

/// The request in the decider's terms; Envoy fields praxis does not implement are refused
/// naming the field (rather than silently ignored).
pub fn from_proto(req: RateLimitRequest) -> Result<CheckRequest, Status> {
    let mut descriptors = Vec::with_capacity(req.descriptors.len());
    for (i, d) in req.descriptors.into_iter().enumerate() {
        descriptors.push(descriptor_from_proto(i, d)?);
    }
    Ok(CheckRequest {
        domain: req.domain,
        descriptors,
        // proto3 cannot tell 0 from unset: 0 means the default, 1.
        hits: (req.hits_addend > 0).then_some(u64::from(req.hits_addend)),
    })
}

fn descriptor_from_proto(i: usize, d: RateLimitDescriptor) -> Result<Descriptor, Status> {
    if d.limit.is_some() {
        return Err(Status::invalid_argument(format!(
            "descriptors[{i}].limit: limit overrides are not supported; configure the limit in \
             the service's limit file"
        )));
    }
    if d.is_negative_hits {
        return Err(Status::invalid_argument(format!(
            "descriptors[{i}].is_negative_hits: refunding hits is not supported"
        )));
    }
    Ok(Descriptor {
        entries: d
            .entries
            .into_iter()
            .map(|e| Entry {
                key: e.key,
                value: e.value,
            })
            .collect(),
        hits: d.hits_addend.map(|h| h.value),
    })
}

/// The answer in Envoy's terms.
pub fn to_proto(res: &CheckResponse) -> RateLimitResponse {
    RateLimitResponse {
        overall_code: code(res.overall_code) as i32,
        statuses: res.statuses.iter().map(status_to_proto).collect(),
        ..RateLimitResponse::default()
    }
}

fn code(c: Code) -> pb_response::Code {
    match c {
        Code::Ok => pb_response::Code::Ok,
        Code::OverLimit => pb_response::Code::OverLimit,
    }
}

fn unit(u: Unit) -> PbUnit {
    match u {
        Unit::Second => PbUnit::Second,
        Unit::Minute => PbUnit::Minute,
        Unit::Hour => PbUnit::Hour,
        Unit::Day => PbUnit::Day,
        Unit::Week => PbUnit::Week,
        Unit::Month => PbUnit::Month,
        Unit::Year => PbUnit::Year,
    }
}

fn status_to_proto(s: &DescriptorStatus) -> pb_response::DescriptorStatus {
    pb_response::DescriptorStatus {
        code: code(s.code) as i32,
        current_limit: s.current_limit.as_ref().map(limit_to_proto),
        limit_remaining: s.limit_remaining,
        duration_until_reset: s.duration_until_reset.map(duration_to_proto),
        quota: None,
    }
}

fn limit_to_proto(l: &CurrentLimit) -> pb_response::RateLimit {
    pb_response::RateLimit {
        name: l.name.clone().unwrap_or_default(),
        requests_per_unit: l.requests_per_unit,
        unit: unit(l.unit) as i32,
    }
}

fn duration_to_proto(d: Duration) -> PbDuration {
    PbDuration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Serves `api` on `listener` until `shutdown` (then lets calls in flight finish).
pub async fn serve(api: GrpcApi, listener: TcpListener, shutdown: CancellationToken) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let result = tonic::transport::Server::builder()
        .add_service(api.into_server())
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await;
    match result {
        Ok(()) => tracing::info!(addr = ?addr, "rate-limit gRPC server stopped"),
        Err(e) => tracing::error!(addr = ?addr, error = %e, "rate-limit gRPC server failed"),
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor;
    use envoy_types::pb::google::protobuf::UInt64Value;

    use super::*;

    #[test]
    fn requests_and_answers_map_to_envoy_types() {
        let req = RateLimitRequest {
            domain: "edge".into(),
            descriptors: vec![
                RateLimitDescriptor {
                    entries: vec![rate_limit_descriptor::Entry {
                        key: "k".into(),
                        value: "v".into(),
                    }],
                    hits_addend: Some(UInt64Value { value: 0 }),
                    ..RateLimitDescriptor::default()
                },
                RateLimitDescriptor::default(),
            ],
            hits_addend: 0,
        };
        let ours = from_proto(req).expect("maps");
        assert_eq!(ours.hits, None);
        assert_eq!(ours.descriptors[0].hits, Some(0));
        assert_eq!(ours.descriptors[0].entries, vec![Entry::new("k", "v")]);
        assert!(ours.descriptors[1].entries.is_empty());

        let bad = RateLimitRequest {
            domain: "edge".into(),
            descriptors: vec![RateLimitDescriptor {
                is_negative_hits: true,
                ..RateLimitDescriptor::default()
            }],
            hits_addend: 3,
        };
        let status = from_proto(bad).expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status
                .message()
                .starts_with("descriptors[0].is_negative_hits")
        );

        let res = to_proto(&CheckResponse {
            overall_code: Code::OverLimit,
            statuses: vec![DescriptorStatus {
                code: Code::OverLimit,
                current_limit: Some(CurrentLimit {
                    name: None,
                    requests_per_unit: 5,
                    unit: Unit::Week,
                }),
                limit_remaining: 0,
                duration_until_reset: Some(Duration::from_millis(2500)),
            }],
        });
        assert_eq!(res.overall_code, pb_response::Code::OverLimit as i32);
        let s = &res.statuses[0];
        assert_eq!(s.current_limit.as_ref().map(|l| l.unit), Some(7));
        assert_eq!(
            s.duration_until_reset,
            Some(PbDuration {
                seconds: 2,
                nanos: 500_000_000
            })
        );
    }
}

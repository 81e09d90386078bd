//! Span export over OTLP/HTTP (protobuf) when `otel_endpoint` is set: the spans of requests,
//! bus events and deliveries (`tracing` target `praxis::trace`) are batched and posted to the
//! collector's `/v1/traces` from the SDK's own thread, so a slow or absent collector never
//! blocks a request (spans it cannot take in time are dropped; the SDK bounds its queue).

use std::time::Duration;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The running span exporter; [`SpanExport::shutdown`] flushes what is still queued.
pub struct SpanExport {
    provider: SdkTracerProvider,
}

impl SpanExport {
    /// Starts exporting to the collector at `endpoint` (its base URL). Call outside an async
    /// context: the exporter's HTTP client is a blocking one.
    pub fn start(endpoint: &url::Url) -> anyhow::Result<SpanExport> {
        let url = traces_url(endpoint);
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .with_context(|| format!("cannot build the OTLP exporter for {url}"))?;
        let resource = Resource::builder()
            .with_service_name(service_name())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(SpanExport { provider })
    }

    /// The tracer the `tracing` bridge records spans with.
    pub fn tracer(&self) -> Tracer {
        self.provider.tracer("praxis")
    }

    /// Exports what is queued and stops (call outside an async context).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("praxis: the last spans could not be exported: {e}");
        }
    }
}

/// `service.name`: `OTEL_SERVICE_NAME` when set (the OpenTelemetry convention), else `praxis`.
fn service_name() -> String {
    std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "praxis".to_owned())
}

/// The traces path under a collector's base URL (as `OTEL_EXPORTER_OTLP_ENDPOINT` is read).
fn traces_url(base: &url::Url) -> String {
    format!("{}/v1/traces", base.as_str().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_go_under_the_base_url() {
        let url = |text: &str| url::Url::parse(text).expect("url");
        assert_eq!(
            traces_url(&url("http://collector:4318")),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url(&url("https://c.example/otlp/")),
            "https://c.example/otlp/v1/traces"
        );
    }
}

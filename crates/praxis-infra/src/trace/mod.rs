//! Distributed tracing: which trace the current work belongs to, carried from an incoming
//! `traceparent` through the request, the bus (outbox row and NATS headers) and the queues of
//! the systems, onto outgoing HTTP calls and into every log line.
//!
//! The current [`TraceContext`] lives in a tokio task-local, set by whoever starts a piece of
//! work ([`in_scope`], [`sync_scope`]): the HTTP stack for a request, the bus for an event, a
//! worker for a queued job. Code inside reads it with [`current`]; the log formatter of the
//! binary writes its ids on each line, the bus stores it with each event, clients send it as
//! `traceparent`. Work spawned onto another task starts without one unless given it.
//!
//! Spans are exported only when the binary turns exporting on ([`enable_export`], when
//! `otel_endpoint` is set). Then [`start`] creates a `tracing` span that the OpenTelemetry
//! layer records, parented on the remote context, and the ids to propagate are that span's.
//! Otherwise no span object is made at all (nothing would read it): [`start`] only draws a
//! new span id, so a request pays for a few random bytes, not for a span.

mod context;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use context::{Hex, TRACEPARENT_LEN, TraceContext};

/// The `tracing` target of the spans made for export (the binary sends only these to the
/// collector).
pub const SPAN_TARGET: &str = "praxis::trace";

/// The W3C header carrying the trace context, on HTTP and on NATS messages.
pub const TRACEPARENT: &str = "traceparent";

tokio::task_local! {
    static CURRENT: TraceContext;
}

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The trace context of the work running now, if it has one.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|ctx| *ctx).ok()
}

/// Runs `fut` with `ctx` as the current trace context (in every poll).
pub fn in_scope<F: Future>(
    ctx: TraceContext,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<TraceContext, F> {
    CURRENT.scope(ctx, fut)
}

/// Runs `f` with `ctx` as the current trace context.
pub fn sync_scope<R>(ctx: TraceContext, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(ctx, f)
}

/// Turns span export on for the process (the binary calls it once it has installed the
/// OpenTelemetry layer).
pub fn enable_export() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// Whether spans are exported.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Starts a unit of work (a request, an event, a delivery) under `parent`, or as a new trace
/// when there is none. When exporting, `make_span` is called and its span is parented on
/// `parent` and returned with its own ids; otherwise the span is [`tracing::Span::none`] and
/// the context is a child of `parent` (or a new root) drawn without any span machinery.
pub fn start(
    parent: Option<TraceContext>,
    make_span: impl FnOnce() -> tracing::Span,
) -> (tracing::Span, TraceContext) {
    let fallback = || match parent {
        Some(p) => p.child(),
        None => TraceContext::new_root(false),
    };
    if !exporting() {
        return (tracing::Span::none(), fallback());
    }
    let span = make_span();
    if let Some(p) = parent {
        // Fails only when the span is disabled (filtered out); then nothing is exported.
        let _ = span.set_parent(remote(p));
    }
    let otel = span.context();
    let sc = otel.span().span_context().clone();
    let ctx = TraceContext::from_parts(
        sc.trace_id().to_bytes(),
        sc.span_id().to_bytes(),
        sc.is_sampled(),
    )
    .unwrap_or_else(fallback);
    (span, ctx)
}

/// `ctx` as a remote OpenTelemetry parent.
fn remote(ctx: TraceContext) -> opentelemetry::Context {
    let flags = if ctx.sampled() {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let sc = SpanContext::new(
        TraceId::from_bytes(ctx.trace_id()),
        SpanId::from_bytes(ctx.span_id()),
        flags,
        true,
        TraceState::default(),
    );
    opentelemetry::Context::new().with_remote_span_context(sc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_scope_is_seen_inside_and_gone_outside() {
        assert_eq!(current(), None);
        let ctx = TraceContext::new_root(false);
        let seen = in_scope(ctx, async {
            tokio::task::yield_now().await;
            current()
        })
        .await;
        assert_eq!(seen, Some(ctx));
        assert_eq!(sync_scope(ctx, current), Some(ctx));
        assert_eq!(current(), None);
    }

    #[test]
    fn without_export_work_is_a_child_of_its_parent() {
        let parent = TraceContext::new_root(true);
        let (span, ctx) = start(Some(parent), || tracing::info_span!("never made"));
        assert!(span.is_none());
        assert_eq!(ctx.trace_id(), parent.trace_id());
        assert_ne!(ctx.span_id(), parent.span_id());
        let (_, root) = start(None, tracing::Span::none);
        assert_ne!(root.trace_id(), parent.trace_id());
    }
}

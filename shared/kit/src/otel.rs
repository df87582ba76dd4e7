//! OpenTelemetry glue: the envelope's W3C `traceparent` to and from the context of a `tracing`
//! span, through the standard `TraceContextPropagator`.
//!
//! A span continues the trace a message (or a request) carries with [`continue_trace`]; the events
//! it emits carry the span's own context as their `traceparent` through [`traceparent_in`]. So a
//! handler's span is the child of the span that emitted its input, across the NATS hop.
//!
//! Spans reach OpenTelemetry only when the process installed an exporter (the runtime's telemetry
//! does, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set) and called [`enable`]. Until then every function
//! here returns at once and the `traceparent` flows exactly as the envelope derives it.

use crate::envelope::{TraceParent, TRACEPARENT};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Says that an OpenTelemetry layer is installed: spans are parented and exported from now on.
pub fn enable() {
    ENABLED.store(true, Ordering::Release);
}

/// Whether an OpenTelemetry layer is installed in this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// Makes `span` a child of the span `parent` names. Call it before the span is first entered:
/// a span that has started keeps its parent.
pub fn continue_trace(span: &tracing::Span, parent: &TraceParent) {
    if !enabled() {
        return;
    }
    let carrier = Carrier(Some(parent.to_string()));
    let context = TraceContextPropagator::new().extract(&carrier);
    // The only failures: no OpenTelemetry layer (nothing to parent) or a span already started
    // (its parent is fixed); either way the span is still recorded.
    let _ = span.set_parent(context);
}

/// The `traceparent` that names `span` itself, when it is exported; `None` without an exporter or
/// for a span that is not recorded.
pub fn traceparent_of(span: &tracing::Span) -> Option<TraceParent> {
    if !enabled() {
        return None;
    }
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    traceparent_of_context(&context)
}

/// The `traceparent` an event emitted now should carry: the current span's own context when it is
/// exported, else `derived`, the one the envelope computed.
pub fn traceparent_in(derived: TraceParent) -> TraceParent {
    traceparent_of(&tracing::Span::current()).unwrap_or(derived)
}

fn traceparent_of_context(context: &Context) -> Option<TraceParent> {
    let mut carrier = Carrier(None);
    TraceContextPropagator::new().inject_context(context, &mut carrier);
    carrier.0.as_deref().and_then(TraceParent::parse)
}

/// The one header of the trace context we carry: `traceparent` (no `tracestate`).
struct Carrier(Option<String>);

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case(TRACEPARENT) {
            self.0.as_deref()
        } else {
            None
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|_| TRACEPARENT).collect()
    }
}

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        if key.eq_ignore_ascii_case(TRACEPARENT) {
            self.0 = Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    #[test]
    fn a_traceparent_survives_the_propagator_both_ways() {
        let parent =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let context = TraceContextPropagator::new().extract(&Carrier(Some(parent.to_string())));
        let span = context.span().span_context().clone();
        assert!(span.is_remote());
        assert_eq!(span.trace_id().to_bytes(), parent.trace_id);
        assert_eq!(span.span_id().to_bytes(), parent.span_id);
        assert_eq!(traceparent_of_context(&context), Some(parent));
    }

    #[test]
    fn an_invalid_context_names_no_traceparent() {
        let invalid = Context::new().with_remote_span_context(SpanContext::new(
            TraceId::INVALID,
            SpanId::INVALID,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        assert_eq!(traceparent_of_context(&invalid), None);
    }

    #[test]
    fn without_an_exporter_the_derived_traceparent_is_kept() {
        let derived =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let span = tracing::info_span!("handle");
        let _entered = span.enter();
        assert_eq!(traceparent_in(derived), derived);
    }
}

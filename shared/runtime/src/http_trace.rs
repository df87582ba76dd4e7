//! One span per HTTP request of a service's API (method, route template, status), exported with
//! the service's other spans. It continues an incoming `traceparent` header, and the events the
//! request emits carry its context: `POST /orders` starts the order's trace.
//!
//! Only when traces are exported; otherwise the request passes through untouched.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use saga_kit::envelope::{TraceParent, TRACEPARENT};
use tracing::Instrument as _;

/// The middleware: `router.layer(axum::middleware::from_fn(http_trace::trace_request))`.
pub async fn trace_request(request: Request, next: Next) -> Response {
    if !saga_kit::otel::enabled() {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    if let Some(parent) = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
    {
        saga_kit::otel::continue_trace(&span, &parent);
    }
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

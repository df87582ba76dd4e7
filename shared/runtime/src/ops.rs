//! `/health` (ready only when the database and NATS are reachable and every consumer can pull) and
//! `/metrics` (OpenMetrics when asked for, else the Prometheus text format; gauges read at scrape
//! time by [`crate::scrape`]).

use crate::Runtime;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::time::Duration;

/// The operational routes every service serves.
pub fn routes(rt: Runtime) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(rt)
}

async fn health(State(rt): State<Runtime>) -> impl IntoResponse {
    let db_ok = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&rt.pool),
    )
    .await
    .map(|r| r.is_ok())
    .unwrap_or(false);
    let nats_ok = rt.client.connection_state() == async_nats::connection::State::Connected;
    // A consumer that cannot pull leaves the instance idle: not ready, whatever else answers.
    let consumers = rt.metrics.health().consumers();
    let consumers_ok = consumers
        .values()
        .all(|s| *s == saga_kit::health::ConsumerState::Pulling);
    let up = |ok: bool| if ok { "up" } else { "down" };
    let status = if db_ok && nats_ok && consumers_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "service": rt.service,
        "status": if status == StatusCode::OK { "ready" } else { "unavailable" },
        "database": up(db_ok),
        "nats": up(nats_ok),
        "consumers": consumers,
    });
    (status, axum::Json(body))
}

/// OpenMetrics for a scraper that asks for it (Prometheus does), else the Prometheus text format
/// (`curl`, `promtool check metrics`).
async fn metrics(State(rt): State<Runtime>, headers: HeaderMap) -> impl IntoResponse {
    crate::scrape::refresh(&rt).await;
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(header::CONTENT_TYPE, saga_kit::metrics::CONTENT_TYPE)],
            rt.metrics.render(),
        )
    } else {
        (
            [(header::CONTENT_TYPE, saga_kit::metrics::TEXT_CONTENT_TYPE)],
            rt.metrics.render_prometheus_text(),
        )
    }
}

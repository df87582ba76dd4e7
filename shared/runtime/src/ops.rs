//! `/health` (ready only when the database and NATS are reachable and every consumer can pull) and `/metrics` (Prometheus text).

use crate::Runtime;
use axum::extract::State;
use axum::http::{header, StatusCode};
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

async fn metrics(State(rt): State<Runtime>) -> impl IntoResponse {
    // Gauges that live in the database are read at scrape time; a failure leaves the last value.
    if let Ok(outbox) = saga_kit::outbox::standing(&rt.pool).await {
        rt.metrics
            .set_gauge("jetsaga_outbox_backlog", &[], outbox.backlog);
        rt.metrics
            .set_gauge("jetsaga_outbox_retrying", &[], outbox.retrying);
        rt.metrics
            .set_gauge("jetsaga_outbox_parked", &[], outbox.parked);
    }
    if let Ok(dead) = saga_kit::dead_letter::open_count(&rt.pool).await {
        rt.metrics.set_gauge("jetsaga_dead_letters_open", &[], dead);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        rt.metrics.render(),
    )
}

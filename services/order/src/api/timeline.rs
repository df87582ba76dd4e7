//! `GET /orders/{id}/timeline`: every event of the order's saga, across the four streams, oldest
//! first.

use super::get_order::order_not_found;
use super::AppState;
use crate::store;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use jetsaga_contracts::OrderId;
use jetsaga_runtime::api_error::parse_id;
use jetsaga_runtime::ApiError;
use saga_kit::envelope::format_time;

pub async fn timeline(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let order_id: OrderId = parse_id("order id", &raw_id)?;
    if store::find_order(&state.rt.pool, order_id).await?.is_none() {
        return Err(order_not_found(order_id));
    }
    let events = saga_kit::trace::read_saga(
        &state.rt.js,
        &jetsaga_contracts::Producer::ALL,
        &order_id.to_string(),
    )
    .await
    .map_err(|e| ApiError::unavailable("reading the saga from JetStream failed", &e))?;
    let events: Vec<_> = events
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "service": e.service,
                "event": e.event,
                "ce_type": e.ce_type,
                "event_id": e.event_id,
                "causation_id": e.causation_id,
                "time": format_time(e.time),
                "stream": e.stream,
                "stream_seq": e.stream_seq,
                "payload": e.payload,
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({
        "order_id": order_id,
        "events": events,
    })))
}

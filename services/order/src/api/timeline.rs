//! `GET /orders/{id}/timeline`: every event of the order's saga, across the five streams, oldest
//! first.

use super::get_order::order_not_found;
use super::AppState;
use crate::store;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use jetsaga_contracts::OrderId;
use jetsaga_runtime::api_error::parse_id;
use jetsaga_runtime::openapi::ErrorBody;
use jetsaga_runtime::ApiError;
use saga_kit::envelope::format_time;
use serde::Serialize;
use utoipa::ToSchema;

/// A saga's events across every stream, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
    pub events: Vec<TimelineEvent>,
}

/// One event of a saga.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEvent {
    /// The service that emitted it.
    pub service: String,
    /// `<domain>.<event>`, e.g. `payments.succeeded`.
    pub event: String,
    pub ce_type: String,
    pub event_id: String,
    pub causation_id: Option<String>,
    #[schema(format = DateTime)]
    pub time: String,
    pub stream: String,
    #[schema(minimum = 1)]
    pub stream_seq: u64,
    /// The event's JSON payload (its schema is in the AsyncAPI document).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// Every event of the order's saga, across every stream.
#[utoipa::path(
    get,
    path = "/orders/{id}/timeline",
    operation_id = "getOrderTimeline",
    tag = "order",
    params(("id" = String, Path, format = Uuid, description = "The order")),
    responses(
        (status = 200, description = "Its events", body = Timeline),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 503, description = "The database or JetStream is unavailable; try again", body = ErrorBody),
    )
)]
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
    let events = events
        .into_iter()
        .map(|e| TimelineEvent {
            service: e.service.to_string(),
            event: e.event,
            ce_type: e.ce_type,
            event_id: e.event_id,
            causation_id: e.causation_id,
            time: format_time(e.time),
            stream: e.stream.to_string(),
            stream_seq: e.stream_seq,
            payload: e.payload,
        })
        .collect();
    Ok(axum::Json(Timeline { order_id, events }))
}

//! `GET /orders/{id}`: the order, its status and its lines.

use super::AppState;
use crate::domain::OrderStatus;
use crate::store;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use jetsaga_contracts::OrderId;
use jetsaga_runtime::api_error::parse_id;
use jetsaga_runtime::ApiError;

pub async fn get_order(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let order_id: OrderId = parse_id("order id", &raw_id)?;
    let order = store::find_order(&state.rt.pool, order_id)
        .await?
        .ok_or_else(|| order_not_found(order_id))?;
    let lines = store::lines(&state.rt.pool, order_id).await?;
    let items: Vec<_> = lines
        .iter()
        .map(|l| {
            serde_json::json!({
                "sku": l.sku.as_str(),
                "quantity": l.quantity,
                "unit_price_cents": l.unit_price.cents(),
            })
        })
        .collect();
    let mut body = serde_json::json!({
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": order.status.as_str(),
        "total_cents": order.total.cents(),
        // Unknown until the voucher step has answered; 0 until then.
        "discount_cents": order.discount.map_or(0, |d| d.cents()),
        "items": items,
    });
    if order.status == OrderStatus::Cancelled {
        if let Some(reason) = order.cancel_reason {
            body["cancel_reason"] = reason.as_str().into();
        }
    }
    Ok(axum::Json(body))
}

/// 404 for an order this service does not know.
pub(crate) fn order_not_found(order_id: OrderId) -> ApiError {
    ApiError::not_found(
        "order_not_found",
        format!("order {order_id} does not exist"),
    )
}

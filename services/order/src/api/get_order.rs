//! `GET /orders/{id}`: the order, its status and its lines.

use super::AppState;
use crate::domain::OrderStatus;
use crate::store;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use jetsaga_contracts::{CustomerId, OrderId};
use jetsaga_runtime::api_error::parse_id;
use jetsaga_runtime::openapi::{ErrorBody, ReadErrors};
use jetsaga_runtime::ApiError;
use serde::Serialize;
use utoipa::ToSchema;

/// An order as its customer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: CustomerId,
    #[schema(pattern = "^(PENDING|CONFIRMED|CANCELLED)$")]
    pub status: &'static str,
    #[schema(minimum = 0)]
    pub total_cents: i64,
    /// 0 until the voucher step has answered.
    #[schema(minimum = 0)]
    pub discount_cents: i64,
    /// The loyalty points spent on the order; 0 until the points step has answered.
    #[schema(minimum = 0)]
    pub points_spent: i64,
    /// Only for a CANCELLED order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(voucher_rejected|points_rejected|payment_failed|stock_failed|timeout)$")]
    pub cancel_reason: Option<&'static str>,
    pub items: Vec<LineView>,
}

/// One line of an order, priced when it was accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineView {
    pub sku: String,
    #[schema(minimum = 1)]
    pub quantity: u32,
    #[schema(minimum = 0)]
    pub unit_price_cents: i64,
}

/// One order, its status and its lines.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    operation_id = "getOrder",
    tag = "order",
    params(("id" = String, Path, format = Uuid, description = "The order")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 404, description = "No such order", body = ErrorBody),
        ReadErrors,
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let order_id: OrderId = parse_id("order id", &raw_id)?;
    let view = view(&state.rt.pool, order_id)
        .await?
        .ok_or_else(|| order_not_found(order_id))?;
    Ok(axum::Json(view))
}

/// The order as `GET /orders/{id}` answers it, or `None` for an order this database does not
/// hold. Also what `jetsaga console` shows of an order, so both say the same.
pub async fn view(
    pool: &sqlx::PgPool,
    order_id: OrderId,
) -> Result<Option<OrderView>, sqlx::Error> {
    let Some(order) = store::find_order(pool, order_id).await? else {
        return Ok(None);
    };
    let lines = store::lines(pool, order_id).await?;
    let items = lines
        .iter()
        .map(|l| LineView {
            sku: l.sku.to_string(),
            quantity: l.quantity,
            unit_price_cents: l.unit_price.cents(),
        })
        .collect();
    let cancel_reason = match order.status {
        OrderStatus::Cancelled => order.cancel_reason.map(|r| r.as_str()),
        _ => None,
    };
    Ok(Some(OrderView {
        order_id: order.order_id,
        customer_id: order.customer_id,
        status: order.status.as_str(),
        total_cents: order.total.cents(),
        // Unknown until the voucher step has answered; 0 until then.
        discount_cents: order.discount.map_or(0, |d| d.cents()),
        points_spent: order.points_spent.map_or(0, |p| p.get()),
        cancel_reason,
        items,
    }))
}

/// 404 for an order this service does not know.
pub(crate) fn order_not_found(order_id: OrderId) -> ApiError {
    ApiError::not_found(
        "order_not_found",
        format!("order {order_id} does not exist"),
    )
}

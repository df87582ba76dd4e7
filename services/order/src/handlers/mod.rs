//! One file per event the order service reacts to. Each takes the consumer's transaction and the
//! typed event, locks the order row, asks [`crate::domain::transition`] what to do, and returns the
//! events to emit; the kit's runner writes them to the outbox in the same transaction.

pub mod payment_failed;
pub mod points_rejected;
pub mod points_reserved;
pub mod stock_failed;
pub mod stock_reserved;
pub mod voucher_rejected;

use crate::domain::{transition, OrderInput, Transition};
use crate::store::{self, Order};
use jetsaga_contracts::events::order::{OrderCancelled, OrderConfirmed};
use jetsaga_contracts::{CancelReason, Money, OrderEvent, OrderId, Points};
use saga_kit::HandlerError;
use sqlx::PgConnection;

/// Locks the order an event is about. An event about an order this service never stored is
/// refused permanently: it goes to the dead letters with its reason, where a person can look.
pub(crate) async fn lock(tx: &mut PgConnection, order_id: OrderId) -> Result<Order, HandlerError> {
    store::lock_order(tx, order_id)
        .await?
        .ok_or_else(|| HandlerError::permanent(format!("order {order_id} is unknown")))
}

/// Cancels a pending order for `reason` and says so; a terminal order is left as it is (the event
/// is stale) and nothing is said.
pub(crate) async fn cancel(
    tx: &mut PgConnection,
    order_id: OrderId,
    reason: CancelReason,
) -> Result<Vec<OrderEvent>, HandlerError> {
    let order = lock(tx, order_id).await?;
    match transition(order.status, OrderInput::Failed(reason)) {
        Transition::Cancel(reason) => {
            store::cancel(tx, order_id, reason).await?;
            Ok(vec![OrderEvent::OrderCancelled(OrderCancelled {
                order_id,
                reason,
            })])
        }
        other => {
            tracing::info!(%order_id, status = %order.status, ?other, reason = reason.as_str(),
                "order is already terminal; the failure changes nothing");
            Ok(vec![])
        }
    }
}

/// Confirms a pending order whose stock is reserved and whose discount and points are known, and
/// says so.
pub(crate) async fn confirm(
    tx: &mut PgConnection,
    order: Order,
    discount: Money,
    points_spent: Points,
) -> Result<Vec<OrderEvent>, HandlerError> {
    store::confirm(tx, order.order_id).await?;
    Ok(vec![OrderEvent::OrderConfirmed(OrderConfirmed {
        order_id: order.order_id,
        customer_id: order.customer_id,
        total: order.total,
        discount,
        voucher_code: order.voucher_code,
        points_spent,
    })])
}

//! StockReserved: the last forward step passed, so a pending order is confirmed.
//!
//! VoucherReserved (which carries the discount) and StockReserved arrive on different consumers
//! and can be handled in either order. Until the discount is recorded the order cannot say what
//! was granted, so the event fails transiently and is retried. An order that is already
//! cancelled (it timed out, say) stays cancelled: its OrderCancelled already makes stock release
//! what it holds.

use super::lock;
use crate::domain::{transition, OrderInput, Transition};
use crate::store;
use jetsaga_contracts::events::order::OrderConfirmed;
use jetsaga_contracts::events::stock::StockReserved;
use jetsaga_contracts::OrderEvent;
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

/// The discount is not known yet; retrying later will find it.
#[derive(Debug, thiserror::Error)]
#[error("order {0} waits for VoucherReserved before it can be confirmed")]
pub struct WaitsForVoucherReserved(pub jetsaga_contracts::OrderId);

pub async fn handle(
    tx: &mut PgConnection,
    event: StockReserved,
    _ctx: &EventContext,
) -> Result<Vec<OrderEvent>, HandlerError> {
    let order_id = event.order_id;
    let order = lock(tx, order_id).await?;
    let input = OrderInput::StockReserved {
        discount_known: order.discount.is_some(),
    };
    match (transition(order.status, input), order.discount) {
        (Transition::Confirm, Some(discount)) => {
            store::confirm(tx, order_id).await?;
            Ok(vec![OrderEvent::OrderConfirmed(OrderConfirmed {
                order_id,
                customer_id: order.customer_id,
                total: order.total,
                discount,
                voucher_code: order.voucher_code,
            })])
        }
        (Transition::WaitForDiscount | Transition::Confirm, _) => Err(HandlerError::transient(
            format!("order {order_id} is not confirmed yet"),
            WaitsForVoucherReserved(order_id),
        )),
        (Transition::Ignore | Transition::Cancel(_), _) => {
            tracing::info!(%order_id, status = %order.status,
                "stock reserved for an order that is already terminal; nothing to do");
            Ok(vec![])
        }
    }
}

//! StockReserved: the last forward step passed.
//!
//! PointsReserved (which carries the discount and the points spent) and StockReserved arrive on different consumers
//! and can be handled in either order. With the discount known, a pending order is confirmed here;
//! without it, the order records that its stock is reserved and PointsReserved confirms it. An
//! order that is already cancelled (it timed out, say) stays cancelled: its OrderCancelled already
//! makes stock release what it holds.

use super::{confirm, lock};
use crate::domain::{transition, OrderInput, Transition};
use crate::store;
use jetsaga_contracts::events::stock::StockReserved;
use jetsaga_contracts::OrderEvent;
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

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
            let points = order.points_spent.unwrap_or_default();
            confirm(tx, order, discount, points).await
        }
        (Transition::Record | Transition::Confirm, _) => {
            store::record_stock_reserved(tx, order_id).await?;
            Ok(vec![])
        }
        (Transition::Ignore | Transition::Cancel(_), _) => {
            tracing::info!(%order_id, status = %order.status,
                "stock reserved for an order that is already terminal; nothing to do");
            Ok(vec![])
        }
    }
}

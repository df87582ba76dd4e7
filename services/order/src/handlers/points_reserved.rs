//! PointsReserved: the voucher and the points steps passed. Records the discount (0 without a
//! voucher) and the points spent (0 without points) that the confirmation reports, and confirms a
//! pending order whose StockReserved overtook this event.

use super::{confirm, lock};
use crate::domain::{transition, OrderInput, Transition};
use crate::store;
use jetsaga_contracts::events::points::PointsReserved;
use jetsaga_contracts::OrderEvent;
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: PointsReserved,
    _ctx: &EventContext,
) -> Result<Vec<OrderEvent>, HandlerError> {
    let order = lock(tx, event.order_id).await?;
    // The first recorded deductions stay: a duplicate or a stale event never overwrites them.
    let deductions = match (order.discount, order.points_spent) {
        (Some(discount), points) => (discount, points.unwrap_or_default()),
        (None, _) => {
            store::record_deductions(tx, event.order_id, event.discount, event.points).await?;
            (event.discount, event.points)
        }
    };
    let input = OrderInput::PointsReserved {
        stock_reserved: order.stock_reserved,
    };
    match transition(order.status, input) {
        Transition::Confirm => confirm(tx, order, deductions.0, deductions.1).await,
        Transition::Record | Transition::Ignore | Transition::Cancel(_) => Ok(vec![]),
    }
}

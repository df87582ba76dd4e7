//! VoucherReserved: the voucher step passed. Records the discount (0 without a voucher) that the
//! confirmation reports, and confirms a pending order whose StockReserved overtook this event.

use super::{confirm, lock};
use crate::domain::{transition, OrderInput, Transition};
use crate::store;
use jetsaga_contracts::events::voucher::VoucherReserved;
use jetsaga_contracts::OrderEvent;
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: VoucherReserved,
    _ctx: &EventContext,
) -> Result<Vec<OrderEvent>, HandlerError> {
    let order = lock(tx, event.order_id).await?;
    // The first recorded discount stays: a duplicate or a stale event never overwrites it.
    let discount = match order.discount {
        Some(recorded) => recorded,
        None => {
            store::record_discount(tx, event.order_id, event.discount).await?;
            event.discount
        }
    };
    let input = OrderInput::VoucherReserved {
        stock_reserved: order.stock_reserved,
    };
    match transition(order.status, input) {
        Transition::Confirm => confirm(tx, order, discount).await,
        Transition::Record | Transition::Ignore | Transition::Cancel(_) => Ok(vec![]),
    }
}

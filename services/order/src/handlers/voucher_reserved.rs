//! VoucherReserved: the voucher step passed. Records the discount (0 without a voucher) that the
//! confirmation will report. Emits nothing.

use super::lock;
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
    if order.discount.is_none() {
        store::record_discount(tx, event.order_id, event.discount).await?;
    }
    Ok(vec![])
}

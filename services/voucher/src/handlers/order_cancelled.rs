//! OrderCancelled → VoucherReleased, when this service holds a voucher for that order.

use super::{Unchanged, BRANCH};
use crate::domain::Transition;
use crate::store;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::voucher::VoucherReleased;
use jetsaga_contracts::{OrderId, VoucherEvent};
use saga_kit::compensation::{self, Undo};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

/// Makes the voucher of a cancelled order available again. A redeemed voucher stays redeemed: a
/// cancellation never undoes a confirmation. Before the OrderCreated it is a null compensation,
/// and the barrier blocks that late step.
pub async fn handle(
    tx: &mut PgConnection,
    event: OrderCancelled,
    ctx: &EventContext,
) -> Result<Vec<VoucherEvent>, HandlerError> {
    compensation::compensate(tx, event.order_id, BRANCH, ctx.event_id, release).await
}

/// Makes the voucher an order holds available again, by the domain rule (a redeemed voucher stays
/// redeemed). The one release of this service: the OrderCancelled handler and the reconciler's
/// repair both call it, after the barrier.
pub async fn release(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Undo<VoucherReleased>, HandlerError> {
    let Some(voucher) = store::lock_by_order(conn, order_id).await? else {
        // The order had no voucher, or its voucher was rejected.
        return Ok(Undo::nothing(Unchanged::NoVoucher));
    };
    let next = match voucher.status.apply(Transition::Release) {
        Ok(next) => next,
        Err(e) => return Ok(Undo::kept(e)),
    };
    store::set_state(conn, &voucher.code, next, None).await?;
    Ok(Undo::Done(VoucherReleased {
        order_id,
        voucher_code: voucher.code,
    }))
}

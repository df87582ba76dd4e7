//! OrderCancelled → VoucherReleased, when this service holds a voucher for that order.

use super::{Unchanged, BRANCH};
use crate::domain::Transition;
use crate::store;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::voucher::VoucherReleased;
use jetsaga_contracts::{OrderId, VoucherEvent};
use saga_kit::barrier::{self, Gate};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: OrderCancelled,
    ctx: &EventContext,
) -> Result<Vec<VoucherEvent>, HandlerError> {
    let saga = event.order_id.to_string();
    match barrier::compensate(tx, &saga, BRANCH, ctx.event_id).await? {
        Gate::Proceed => {}
        gate => {
            // Null compensation: the barrier now blocks a late OrderCreated. Duplicate: done.
            tracing::info!(order_id = %event.order_id, ?gate, "OrderCancelled: nothing to release");
            return Ok(vec![]);
        }
    }
    match release(tx, event.order_id).await? {
        Ok(released) => Ok(vec![VoucherEvent::VoucherReleased(released)]),
        // The order had no voucher, or its voucher was rejected.
        Err(Unchanged::NoVoucher) => Ok(vec![]),
        Err(Unchanged::Status(e)) => {
            // A redeemed voucher stays redeemed: a cancellation never undoes a confirmation.
            tracing::warn!(order_id = %event.order_id, error = %e,
                "OrderCancelled for an order whose voucher cannot be released");
            Ok(vec![])
        }
    }
}

/// Makes the voucher an order holds available again, by the domain rule (a redeemed voucher stays
/// redeemed). The one release of this service: the OrderCancelled handler and the reconciler's
/// repair both call it, after the barrier.
pub async fn release(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Result<VoucherReleased, Unchanged>, sqlx::Error> {
    let Some(voucher) = store::lock_by_order(conn, order_id).await? else {
        return Ok(Err(Unchanged::NoVoucher));
    };
    let next = match voucher.status.apply(Transition::Release) {
        Ok(next) => next,
        Err(e) => return Ok(Err(e.into())),
    };
    store::set_state(conn, &voucher.code, next, None).await?;
    Ok(Ok(VoucherReleased {
        order_id,
        voucher_code: voucher.code,
    }))
}

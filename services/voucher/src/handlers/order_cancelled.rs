//! OrderCancelled → VoucherReleased, when this service holds a voucher for that order.

use super::BRANCH;
use crate::domain::Transition;
use crate::store;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::voucher::VoucherReleased;
use jetsaga_contracts::VoucherEvent;
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
    let Some(voucher) = store::lock_by_order(tx, event.order_id).await? else {
        // The order had no voucher, or its voucher was rejected.
        return Ok(vec![]);
    };
    match voucher.status.apply(Transition::Release) {
        Ok(next) => {
            store::set_state(tx, &voucher.code, next, None).await?;
            Ok(vec![VoucherEvent::VoucherReleased(VoucherReleased {
                order_id: event.order_id,
                voucher_code: voucher.code,
            })])
        }
        Err(e) => {
            // A redeemed voucher stays redeemed: a cancellation never undoes a confirmation.
            tracing::warn!(order_id = %event.order_id, code = %voucher.code, error = %e,
                "OrderCancelled for an order whose voucher cannot be released");
            Ok(vec![])
        }
    }
}

//! OrderCancelled → refund the order's charge: PaymentRefunded, or nothing when there is nothing
//! to refund.
//!
//! The barrier's compensation record makes the refund happen at most once per order, and leaves a
//! tombstone when the order was cancelled before it reached payment, so a late VoucherReserved
//! charges nothing.

use super::BRANCH;
use crate::domain::{self, PaymentStatus};
use crate::store;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::payment::PaymentRefunded;
use jetsaga_contracts::PaymentEvent;
use saga_kit::barrier::{self, Gate};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: OrderCancelled,
    ctx: &EventContext,
) -> Result<Vec<PaymentEvent>, HandlerError> {
    let order_id = event.order_id;
    let gate = barrier::compensate(tx, &order_id.to_string(), BRANCH, ctx.event_id).await?;
    if gate != Gate::Proceed {
        // NullCompensation: the order never reached payment (the tombstone now stops a late
        // charge). Duplicate: already compensated under another event id.
        tracing::info!(%order_id, ?gate, "nothing to refund");
        return Ok(vec![]);
    }

    let Some(payment) = store::lock_payment(tx, order_id).await? else {
        return Ok(vec![]);
    };
    let refunded = match payment.status.transition(PaymentStatus::Refunded) {
        Ok(status) => status,
        Err(not_refundable) => {
            // A FAILED payment took no money; there is nothing to give back.
            tracing::info!(%order_id, %not_refundable, "nothing to refund");
            return Ok(vec![]);
        }
    };
    let balance = store::lock_or_open_account(tx, payment.customer_id).await?;
    let new_balance = domain::credit(balance, payment.amount).map_err(|e| {
        HandlerError::permanent(format!(
            "refund of order {order_id} to customer {}: {e}",
            payment.customer_id
        ))
    })?;
    store::set_balance(tx, payment.customer_id, new_balance).await?;
    store::set_payment_status(tx, order_id, refunded).await?;
    Ok(vec![PaymentEvent::PaymentRefunded(PaymentRefunded {
        order_id,
        payment_id: payment.payment_id,
        customer_id: payment.customer_id,
        amount: payment.amount,
    })])
}

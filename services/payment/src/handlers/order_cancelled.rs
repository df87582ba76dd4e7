//! OrderCancelled → refund the order's charge: PaymentRefunded, or nothing when there is nothing
//! to refund.
//!
//! The barrier's compensation record makes the refund happen at most once per order, and leaves a
//! tombstone when the order was cancelled before it reached payment, so a late PointsReserved
//! charges nothing.

use super::BRANCH;
use crate::domain::{self, PaymentStatus};
use crate::store;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::payment::PaymentRefunded;
use jetsaga_contracts::{CustomerId, OrderId, PaymentEvent};
use saga_kit::compensation::{self, Undo};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

/// Refunds the charge of a cancelled order. Before the PointsReserved it is a null compensation,
/// and the barrier's tombstone stops that late charge.
pub async fn handle(
    tx: &mut PgConnection,
    event: OrderCancelled,
    ctx: &EventContext,
) -> Result<Vec<PaymentEvent>, HandlerError> {
    compensation::compensate(tx, event.order_id, BRANCH, ctx.event_id, refund).await
}

/// Why a refund could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("refund of order {order_id} to customer {customer_id}: {source}")]
    Refused {
        order_id: OrderId,
        customer_id: CustomerId,
        #[source]
        source: domain::CreditError,
    },
}

impl From<RefundError> for HandlerError {
    fn from(e: RefundError) -> Self {
        match e {
            RefundError::Database(e) => e.into(),
            refused @ RefundError::Refused { .. } => HandlerError::permanent(refused.to_string()),
        }
    }
}

/// Gives an order's charge back, once: the payment moves to REFUNDED by the domain rule and its
/// amount returns to the balance. The one refund of this service: the OrderCancelled handler and
/// the reconciler's repair both call it, after the barrier.
pub async fn refund(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Undo<PaymentRefunded>, RefundError> {
    let Some(payment) = store::lock_payment(conn, order_id).await? else {
        return Ok(Undo::nothing("the order has no payment"));
    };
    let Ok(refunded) = payment.status.transition(PaymentStatus::Refunded) else {
        // No payment, or a FAILED one that took no money: nothing to give back.
        return Ok(Undo::Nothing(format!(
            "the payment is {}",
            payment.status.as_str()
        )));
    };
    let balance = store::lock_or_open_account(conn, payment.customer_id).await?;
    let new_balance =
        domain::credit(balance, payment.amount).map_err(|source| RefundError::Refused {
            order_id,
            customer_id: payment.customer_id,
            source,
        })?;
    store::set_balance(conn, payment.customer_id, new_balance).await?;
    store::set_payment_status(conn, order_id, refunded).await?;
    Ok(Undo::Done(PaymentRefunded {
        order_id,
        payment_id: payment.payment_id,
        customer_id: payment.customer_id,
        amount: payment.amount,
    }))
}

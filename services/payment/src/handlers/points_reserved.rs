//! PointsReserved → charge total minus discount minus points spent: PaymentSucceeded, or PaymentFailed when the
//! balance does not cover it.
//!
//! The barrier's forward record makes the charge happen at most once per order, whatever event id
//! the request arrives with, and makes a PointsReserved that arrives after the order was cancelled
//! (a hanging step) charge nothing.

use super::BRANCH;
use crate::domain::{self, PaymentStatus};
use crate::store::{self, Payment};
use jetsaga_contracts::events::payment::{PaymentFailed, PaymentSucceeded};
use jetsaga_contracts::events::points::PointsReserved;
use jetsaga_contracts::{Money, PaymentEvent};
use saga_kit::barrier::{self, Gate};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: PointsReserved,
    ctx: &EventContext,
) -> Result<Vec<PaymentEvent>, HandlerError> {
    let order_id = event.order_id;
    let gate = barrier::forward(tx, &order_id.to_string(), BRANCH, ctx.event_id).await?;
    if gate != Gate::Proceed {
        // Hanging: the order was already cancelled, so nothing may be charged. Duplicate: the
        // order was already charged (or failed) under another event id.
        tracing::info!(%order_id, ?gate, "no charge for this PointsReserved");
        return Ok(vec![]);
    }

    let amount = event.amount_due();
    let balance = store::lock_balance(tx, event.customer_id)
        .await?
        .unwrap_or(Money::ZERO);
    let payment_id = domain::payment_id_for(order_id);
    let (status, emitted) = match domain::charge(balance, amount) {
        Ok(new_balance) => {
            if new_balance != balance {
                store::set_balance(tx, event.customer_id, new_balance).await?;
            }
            let succeeded = PaymentSucceeded {
                order_id,
                payment_id,
                customer_id: event.customer_id,
                amount,
                lines: event.lines,
            };
            (
                PaymentStatus::Charged,
                PaymentEvent::PaymentSucceeded(succeeded),
            )
        }
        Err(insufficient) => {
            tracing::info!(%order_id, customer_id = %event.customer_id, %insufficient, "payment failed");
            let failed = PaymentFailed {
                order_id,
                customer_id: event.customer_id,
                amount,
            };
            (PaymentStatus::Failed, PaymentEvent::PaymentFailed(failed))
        }
    };
    store::insert_payment(
        tx,
        &Payment {
            order_id,
            payment_id,
            customer_id: event.customer_id,
            amount,
            status,
        },
    )
    .await?;
    Ok(vec![emitted])
}

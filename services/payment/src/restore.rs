//! The payment service's own events applied again as recorded facts, for `jetsaga replay`: one
//! function per event, each the state change the API or the handler made when it committed that
//! event, without deciding anything again (see [`saga_kit::facts`]).
//!
//! - AccountCredited: the credit's ledger row and the balance it raised, once per credit id.
//! - PaymentSucceeded: the CHARGED payment and the balance it lowered, whatever the balance is
//!   now: the facts arrive in commit order, so the balance covers it; when it does not, a credit
//!   is missing and the error says which order.
//! - PaymentFailed: the FAILED payment; no money moved.
//! - PaymentRefunded: the payment REFUNDED and its amount back on the balance, from the
//!   OrderCancelled handler or a reconcile repair (a root event) alike.
//!
//! Each is idempotent by its business key (the credit id, the order's payment) and writes the
//! barrier records the handler wrote, under the input's id (`causation_id`).

use crate::domain::{self, PaymentStatus};
use crate::handlers::BRANCH;
use crate::store::{self, Payment};
use jetsaga_contracts::events::payment::{
    AccountCredited, PaymentFailed, PaymentRefunded, PaymentSucceeded,
};
use jetsaga_contracts::{Money, PaymentEvent};
use saga_kit::facts::{FactContext, Restore};
use saga_kit::HandlerError;
use sqlx::PgConnection;

/// The payment service's [`Restore`].
#[derive(Debug, Clone, Copy)]
pub struct Restorer;

impl Restore for Restorer {
    type Event = PaymentEvent;

    async fn restore(
        &self,
        tx: &mut PgConnection,
        event: PaymentEvent,
        ctx: &FactContext,
    ) -> Result<(), HandlerError> {
        match event {
            PaymentEvent::AccountCredited(e) => credited(tx, e).await,
            PaymentEvent::PaymentSucceeded(e) => succeeded(tx, e, ctx).await,
            PaymentEvent::PaymentFailed(e) => failed(tx, e, ctx).await,
            PaymentEvent::PaymentRefunded(e) => refunded(tx, e, ctx).await,
        }
    }
}

/// An operator's credit: its ledger row and the balance, as the route made them.
async fn credited(tx: &mut PgConnection, e: AccountCredited) -> Result<(), HandlerError> {
    let what = format!(
        "restoring credit {} to customer {}",
        e.credit_id, e.customer_id
    );
    let db = |err| HandlerError::database(&what, err);
    if store::has_credit(tx, e.credit_id).await.map_err(db)? {
        return Ok(());
    }
    let balance = store::lock_or_open_account(tx, e.customer_id)
        .await
        .map_err(db)?;
    let new_balance = domain::credit(balance, e.amount)
        .map_err(|err| HandlerError::permanent(format!("{what}: {err}")))?;
    store::set_balance(tx, e.customer_id, new_balance)
        .await
        .map_err(db)?;
    store::insert_credit(tx, e.credit_id, e.customer_id, e.amount)
        .await
        .map_err(db)?;
    Ok(())
}

/// An order charged: the amount left the balance (an amount of 0 touches no account, as in the
/// handler) and the payment is CHARGED.
async fn succeeded(
    tx: &mut PgConnection,
    e: PaymentSucceeded,
    ctx: &FactContext,
) -> Result<(), HandlerError> {
    let order_id = e.order_id;
    let what = format!("restoring the charge of order {order_id}");
    let db = |err| HandlerError::database(&what, err);
    let refused = |reason: String| HandlerError::permanent(format!("{what}: {reason}"));
    ctx.restore_forward(tx, &order_id.to_string(), BRANCH, &what)
        .await?;
    if let Some(found) = store::lock_payment(tx, order_id).await.map_err(db)? {
        // Restored before (and perhaps refunded since); a FAILED payment contradicts the charge.
        return match found.status {
            PaymentStatus::Failed => Err(refused("the payment is FAILED".into())),
            PaymentStatus::Charged | PaymentStatus::Refunded => Ok(()),
        };
    }
    if e.amount > Money::ZERO {
        let balance = store::lock_balance(tx, e.customer_id)
            .await
            .map_err(db)?
            .ok_or_else(|| {
                refused(format!(
                    "customer {} has no account (a credit is missing)",
                    e.customer_id
                ))
            })?;
        let new_balance = domain::charge(balance, e.amount)
            .map_err(|err| refused(format!("customer {}: {err}", e.customer_id)))?;
        store::set_balance(tx, e.customer_id, new_balance)
            .await
            .map_err(db)?;
    }
    let charged = Payment {
        order_id,
        payment_id: e.payment_id,
        customer_id: e.customer_id,
        amount: e.amount,
        status: PaymentStatus::Charged,
    };
    store::insert_payment(tx, &charged).await.map_err(db)?;
    Ok(())
}

/// An order the balance did not cover: a FAILED payment, no money moved.
async fn failed(
    tx: &mut PgConnection,
    e: PaymentFailed,
    ctx: &FactContext,
) -> Result<(), HandlerError> {
    let order_id = e.order_id;
    let what = format!("restoring the failed payment of order {order_id}");
    let db = |err| HandlerError::database(&what, err);
    ctx.restore_forward(tx, &order_id.to_string(), BRANCH, &what)
        .await?;
    if let Some(found) = store::lock_payment(tx, order_id).await.map_err(db)? {
        return match found.status {
            PaymentStatus::Failed => Ok(()),
            other => Err(HandlerError::permanent(format!(
                "{what}: the payment is {}",
                other.as_str()
            ))),
        };
    }
    let failed = Payment {
        order_id,
        payment_id: domain::payment_id_for(order_id),
        customer_id: e.customer_id,
        amount: e.amount,
        status: PaymentStatus::Failed,
    };
    store::insert_payment(tx, &failed).await.map_err(db)?;
    Ok(())
}

/// A cancelled order's charge given back: the amount returns to the balance and the payment is
/// REFUNDED.
async fn refunded(
    tx: &mut PgConnection,
    e: PaymentRefunded,
    ctx: &FactContext,
) -> Result<(), HandlerError> {
    let order_id = e.order_id;
    let what = format!("restoring the refund of order {order_id}");
    let db = |err| HandlerError::database(&what, err);
    let refused = |reason: String| HandlerError::permanent(format!("{what}: {reason}"));
    // The handler's compensation, or a repair's (a root event, whose causation id is its own).
    ctx.restore_compensation(tx, &order_id.to_string(), BRANCH, &what)
        .await?;

    let payment = store::lock_payment(tx, order_id)
        .await
        .map_err(db)?
        .ok_or_else(|| refused("the order has no payment (its charge is missing)".into()))?;
    if payment.status == PaymentStatus::Refunded {
        return Ok(());
    }
    let refunded = payment
        .status
        .transition(PaymentStatus::Refunded)
        .map_err(|err| refused(err.to_string()))?;
    if (payment.payment_id, payment.amount) != (e.payment_id, e.amount) {
        return Err(refused(format!(
            "the event refunds payment {} of {} cents, the ledger holds payment {} of {} cents",
            e.payment_id,
            e.amount.cents(),
            payment.payment_id,
            payment.amount.cents()
        )));
    }
    // As the handler: the account is opened if need be (a refund of 0 to a customer never
    // credited leaves a balance of 0).
    let balance = store::lock_or_open_account(tx, payment.customer_id)
        .await
        .map_err(db)?;
    let new_balance = domain::credit(balance, payment.amount)
        .map_err(|err| refused(format!("customer {}: {err}", payment.customer_id)))?;
    store::set_balance(tx, payment.customer_id, new_balance)
        .await
        .map_err(db)?;
    store::set_payment_status(tx, order_id, refunded)
        .await
        .map_err(db)?;
    Ok(())
}

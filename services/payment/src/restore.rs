//! What `jetsaga replay` re-applies from the payment service's own stream: the root events the
//! service emitted on its own (an account credited, a refund a repair made) that its database lost. Charges and refunds
//! come back by re-consuming its inputs.

use crate::repair::{self, Announce};
use crate::{domain, store};
use jetsaga_contracts::PaymentEvent;
use saga_kit::replay::Restore;
use saga_kit::{EventContext, HandlerError};
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
        _ctx: &EventContext,
    ) -> Result<(), HandlerError> {
        match event {
            PaymentEvent::AccountCredited(e) => {
                let balance = store::lock_or_open_account(tx, e.customer_id).await?;
                let new_balance = domain::credit(balance, e.amount).map_err(|err| {
                    HandlerError::permanent(format!(
                        "credit {} to customer {}: {err}",
                        e.credit_id, e.customer_id
                    ))
                })?;
                store::set_balance(tx, e.customer_id, new_balance).await?;
                store::insert_credit(tx, e.credit_id, e.customer_id, e.amount).await?;
                Ok(())
            }
            // A refund a reconcile repair made (the handler's own refunds are derived events).
            PaymentEvent::PaymentRefunded(e) => {
                repair::refund_cancelled(tx, e.order_id, Announce::AlreadyInStream)
                    .await
                    .map_err(|err| HandlerError::permanent(err.to_string()))?;
                Ok(())
            }
            other => Err(HandlerError::permanent(format!(
                "{} is not a root event the payment service restores",
                jetsaga_contracts::EventSet::ce_type(&other)
            ))),
        }
    }
}

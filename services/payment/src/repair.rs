//! Repairs the reconciler asks of the payment service: what an operator's `jetsaga reconcile
//! --repair` may fix here, with the rules and SQL the handlers use.
//!
//! A repair is an ordinary change of this service: it runs in the caller's transaction, moves the
//! payment only through [`PaymentStatus::transition`], and writes the event that announces it to
//! the outbox in that same transaction, for the service's relay to publish.
//!
//! The event id is derived from the order and the version (`updated_at`) of the row the repair
//! found: running the same repair again over the same state names the same event, and a second,
//! later repair of the same order (the row went wrong again) is announced as a new event.

use crate::handlers::order_cancelled::{refund, Refund, RefundError};
use crate::handlers::BRANCH;
use jetsaga_contracts::{EventId, OrderId, PaymentEvent};
use saga_kit::barrier;
use saga_kit::envelope::keyed_event_id;
pub use saga_kit::repair::Repaired;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// A repair that could not run.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("refund of order {order_id}: the payment database failed: {source}")]
    Database {
        order_id: OrderId,
        #[source]
        source: sqlx::Error,
    },
    #[error("refund of order {order_id}: {reason}")]
    Refused { order_id: OrderId, reason: String },
}

/// The id of the refund a repair emits for `order_id` over a payment row last changed at
/// `version`.
pub fn refund_event_id(order_id: OrderId, version: OffsetDateTime) -> EventId {
    keyed_event_id(
        "payment-repair-refund",
        &format!("{order_id}@{}", version.unix_timestamp_nanos()),
    )
}

/// Refunds the charge of an order the order service has CANCELLED, as the OrderCancelled handler
/// would have: the amount goes back to the balance, the payment becomes REFUNDED, and
/// PaymentRefunded says so. The caller has seen the order CANCELLED (a terminal state).
///
/// The compensation is also recorded in the saga barrier, so an OrderCancelled still on its way
/// finds the work done. A payment that is not CHARGED (none, FAILED, REFUNDED) is left alone.
pub async fn refund_cancelled(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Repaired, RepairError> {
    let db = |source| RepairError::Database { order_id, source };
    let no_payment = || {
        Ok(Repaired::AlreadyConsistent(
            "the order has no payment".into(),
        ))
    };
    let version: Option<OffsetDateTime> =
        sqlx::query_scalar("SELECT updated_at FROM payments WHERE order_id = $1")
            .bind(order_id.as_uuid())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    let Some(version) = version else {
        return no_payment();
    };
    let event_id = refund_event_id(order_id, version);
    // The barrier first, then the payment, then the account: the order the OrderCancelled
    // handler takes its locks in, so a repair racing it waits instead of deadlocking. Duplicate
    // (the handler ran, then the row was changed by hand) is expected: the barrier only has to
    // know that the compensation has happened.
    barrier::compensate(conn, &order_id.to_string(), BRANCH, event_id)
        .await
        .map_err(db)?;
    let refunded = match refund(conn, order_id).await {
        Ok(Refund::Refunded(refunded)) => refunded,
        Ok(Refund::Nothing(found)) => return Ok(Repaired::AlreadyConsistent(found)),
        Err(RefundError::Database(source)) => return Err(db(source)),
        Err(refused @ RefundError::Refused { .. }) => {
            return Err(RepairError::Refused {
                order_id,
                reason: refused.to_string(),
            })
        }
    };
    let amount = refunded.amount;
    let event = PaymentEvent::PaymentRefunded(refunded);
    let repaired = saga_kit::repair::emit(conn, event_id, &event)
        .await
        .map_err(db)?;
    tracing::info!(%order_id, amount = amount.cents(), "reconciler refunded a cancelled order");
    Ok(repaired)
}

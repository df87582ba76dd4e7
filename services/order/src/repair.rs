//! Repairs the reconciler asks of the order service: what an operator's `jetsaga reconcile
//! --repair` may fix here, with the same rules and SQL the handlers and the deadline sweep use.
//!
//! A repair is an ordinary change of this service: it runs in the caller's transaction, moves the
//! order only through [`domain::transition`], and writes the event that announces the change to
//! the outbox in that same transaction. The service's relay publishes it and the other services
//! compensate as they would for any other cancellation.

use crate::deadline::timeout_event_id;
use crate::domain::{self, OrderInput, Transition};
use crate::store;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::{CancelReason, OrderEvent, OrderId};
pub use saga_kit::repair::Repaired;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// A repair that could not run.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("order {order_id} is not in the order database")]
    UnknownOrder { order_id: OrderId },
    #[error("repair of order {order_id}: the order database failed: {source}")]
    Database {
        order_id: OrderId,
        #[source]
        source: sqlx::Error,
    },
}

/// Cancels an order that is still PENDING after its deadline, with reason `timeout`, exactly as
/// the deadline sweep does (same rules, same event id): OrderCancelled then makes voucher, payment
/// and stock give back what they hold.
///
/// The order is locked first; one that is no longer pending, or whose deadline has not passed at
/// `now`, is left alone.
pub async fn cancel_overdue(
    conn: &mut PgConnection,
    order_id: OrderId,
    now: OffsetDateTime,
) -> Result<Repaired, RepairError> {
    let db = |source| RepairError::Database { order_id, source };
    let order = store::lock_order(conn, order_id)
        .await
        .map_err(db)?
        .ok_or(RepairError::UnknownOrder { order_id })?;
    let reason = match domain::transition(order.status, OrderInput::Failed(CancelReason::Timeout)) {
        Transition::Cancel(reason) => reason,
        Transition::Confirm | Transition::Record | Transition::Ignore => {
            return Ok(Repaired::AlreadyConsistent(format!(
                "order is already {}",
                order.status
            )));
        }
    };
    if !domain::is_past_deadline(order.deadline, now) {
        return Ok(Repaired::AlreadyConsistent(
            "order is PENDING and its deadline has not passed: its saga is still running".into(),
        ));
    }
    store::cancel(conn, order_id, reason).await.map_err(db)?;
    let event = OrderEvent::OrderCancelled(OrderCancelled { order_id, reason });
    // The sweep's id: should the sweep also get to this order, both write the same event once.
    let envelope = saga_kit::outbox::emit_root(conn, timeout_event_id(order_id), &event)
        .await
        .map_err(db)?;
    tracing::info!(%order_id, "reconciler cancelled an overdue order");
    Ok(Repaired::Emitted(Box::new(envelope)))
}

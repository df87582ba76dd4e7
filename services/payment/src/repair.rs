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

use crate::handlers::order_cancelled::refund;
use crate::handlers::BRANCH;
use jetsaga_contracts::{OrderId, PaymentEvent};
use saga_kit::compensation;
pub use saga_kit::repair::{RepairError, Repaired};
use sqlx::PgConnection;
use time::OffsetDateTime;

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
    compensation::repair::<PaymentEvent, _, _, _>(
        conn,
        "payment-repair-refund",
        order_id,
        BRANCH,
        version,
        refund,
    )
    .await
}

/// The version (`updated_at`) of an order's payment, if it has one.
async fn version(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar("SELECT updated_at FROM payments WHERE order_id = $1")
        .bind(order_id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
}

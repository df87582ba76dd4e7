//! Repairs the reconciler asks of the stock service: what an operator's `jetsaga reconcile
//! --repair` may fix here, with the rules and SQL the handlers use.
//!
//! A repair is an ordinary change of this service: it runs in the caller's transaction, moves a
//! reservation only through [`ReservationStatus::release`], locks stock rows in SKU order like
//! every other writer, and writes the event that announces the change to the outbox in that same
//! transaction, for the service's relay to publish.
//!
//! The event id is derived from the order and the version (the latest `updated_at`) of the
//! reservations the repair found: the same repair over the same state names the same event, and a
//! later repair of the same order (the rows went wrong again) is announced as a new event.

use crate::domain::ReservationStatus;
use crate::handlers::order_cancelled::release;
use crate::handlers::BRANCH;
use jetsaga_contracts::{OrderId, StockEvent};
use saga_kit::compensation;
pub use saga_kit::repair::{RepairError, Repaired};
use sqlx::PgConnection;
use time::OffsetDateTime;

/// Gives back what an order the order service has CANCELLED still holds, as the OrderCancelled
/// handler would have: each HELD reservation becomes RELEASED, its units go from `reserved` back to
/// `available`, and StockReleased says so. The caller has seen the order CANCELLED.
///
/// The compensation is also recorded in the saga barrier, so an OrderCancelled still on its way
/// finds the work done. An order that holds nothing is left alone.
pub async fn release_cancelled(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Repaired, RepairError> {
    compensation::repair::<StockEvent, _, _, _>(
        conn,
        "stock-repair-release",
        order_id,
        BRANCH,
        version,
        release,
    )
    .await
}

/// The version of what an order holds: when its latest HELD reservation changed, if it holds any.
async fn version(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT max(updated_at) FROM reservations WHERE order_id = $1 AND status = $2",
    )
    .bind(order_id.as_uuid())
    .bind(ReservationStatus::Held.as_str())
    .fetch_one(&mut *conn)
    .await
}

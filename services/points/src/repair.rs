//! Repairs the reconciler asks of the points service: what an operator's `jetsaga reconcile
//! --repair` may fix here, with the rules and SQL the handlers use.
//!
//! A repair runs in the caller's transaction, changes points only through the functions the
//! handlers use (`release`, `earn`), and writes the event that announces the change to the outbox
//! in that same transaction. The event id is derived from the order, the repair and the version
//! (`updated_at`) of the hold it found, so the same repair over the same state names the same event.

use crate::handlers::order_cancelled::release;
use crate::handlers::order_confirmed::earn;
use crate::handlers::BRANCH;
use jetsaga_contracts::events::order::OrderConfirmed;
use jetsaga_contracts::{OrderId, PointsEvent};
use saga_kit::compensation;
use saga_kit::repair;
pub use saga_kit::repair::{RepairError, Repaired};
use sqlx::PgConnection;
use time::OffsetDateTime;

/// Makes the points a CANCELLED order still holds available again, as the OrderCancelled handler
/// would have, and says so with PointsReleased. The compensation is recorded in the barrier too, so
/// an OrderCancelled still on its way finds the work done.
pub async fn release_cancelled(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Repaired, RepairError> {
    compensation::repair::<PointsEvent, _, _, _>(
        conn,
        "points-repair-release",
        order_id,
        BRANCH,
        version,
        release,
    )
    .await
}

/// Spends what a CONFIRMED order still holds and awards what it earned, as the OrderConfirmed
/// handler would have, and says so with PointsEarned. `confirmed` is the order as the order
/// service confirmed it.
pub async fn earn_confirmed(
    conn: &mut PgConnection,
    confirmed: &OrderConfirmed,
) -> Result<Repaired, RepairError> {
    const REPAIR: &str = "points-repair-earn";
    let order_id = confirmed.order_id;
    let failed = |e: sqlx::Error| RepairError::new(REPAIR, order_id, e);
    let version = version(conn, order_id).await.map_err(failed)?;
    let found = earn(conn, confirmed)
        .await
        .map_err(|e| RepairError::new(REPAIR, order_id, e))?;
    repair::announce::<_, PointsEvent>(conn, repair::event_id(REPAIR, order_id, version), found)
        .await
        .map_err(failed)
}

/// The version (`updated_at`) of an order's hold, if it has one.
async fn version(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar("SELECT updated_at FROM holds WHERE order_id = $1")
        .bind(order_id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
}

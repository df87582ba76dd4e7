//! Repairs the reconciler asks of the points service: what an operator's `jetsaga reconcile
//! --repair` may fix here, with the rules and SQL the handlers use.
//!
//! A repair runs in the caller's transaction, changes points only through the functions the
//! handlers use (`release`, `earn`), and writes the event that announces the change to the outbox
//! in that same transaction. The event id is derived from the order, the repair and the version
//! (`updated_at`) of the hold it found, so the same repair over the same state names the same event.

use crate::handlers::order_cancelled::release;
use crate::handlers::order_confirmed::earn;
use crate::handlers::{Unchanged, BRANCH};
use jetsaga_contracts::events::order::OrderConfirmed;
use jetsaga_contracts::{EventId, EventSet, OrderId, PointsEvent};
use saga_kit::barrier;
use saga_kit::envelope::keyed_event_id;
pub use saga_kit::repair::Repaired;
use saga_kit::HandlerError;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// A repair that could not run.
#[derive(Debug, thiserror::Error)]
#[error("points repair of order {order_id}: {source}")]
pub struct RepairError {
    pub order_id: OrderId,
    #[source]
    pub source: HandlerError,
}

/// The id of the event a repair (`"release"` or `"earn"`) emits for `order_id` over a hold last
/// changed at `version` (none for an order without a hold).
pub fn repair_event_id(
    repair: &str,
    order_id: OrderId,
    version: Option<OffsetDateTime>,
) -> EventId {
    let version = version.map_or(0, OffsetDateTime::unix_timestamp_nanos);
    keyed_event_id(
        &format!("points-repair-{repair}"),
        &format!("{order_id}@{version}"),
    )
}

/// Makes the points a CANCELLED order still holds available again, as the OrderCancelled handler
/// would have, and says so with PointsReleased. The compensation is recorded in the barrier too, so
/// an OrderCancelled still on its way finds the work done.
pub async fn release_cancelled(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Repaired, RepairError> {
    let err = |source| RepairError { order_id, source };
    let db = |source: sqlx::Error| err(HandlerError::from(source));
    let Some(version) = version(conn, order_id).await.map_err(db)? else {
        return Ok(Repaired::AlreadyConsistent(Unchanged::NoHold.to_string()));
    };
    let event_id = repair_event_id("release", order_id, Some(version));
    barrier::compensate(conn, &order_id.to_string(), BRANCH, event_id)
        .await
        .map_err(db)?;
    let event = match release(conn, order_id).await.map_err(err)? {
        Ok(released) => PointsEvent::PointsReleased(released),
        Err(found) => return Ok(Repaired::AlreadyConsistent(found.to_string())),
    };
    emit(conn, event_id, &event).await.map_err(db)
}

/// Spends what a CONFIRMED order still holds and awards what it earned, as the OrderConfirmed
/// handler would have, and says so with PointsEarned. `confirmed` is the order as the order
/// service confirmed it.
pub async fn earn_confirmed(
    conn: &mut PgConnection,
    confirmed: &OrderConfirmed,
) -> Result<Repaired, RepairError> {
    let order_id = confirmed.order_id;
    let err = |source| RepairError { order_id, source };
    let db = |source: sqlx::Error| err(HandlerError::from(source));
    let version = version(conn, order_id).await.map_err(db)?;
    let event_id = repair_event_id("earn", order_id, version);
    let event = match earn(conn, confirmed).await.map_err(err)? {
        Ok(earned) => PointsEvent::PointsEarned(earned),
        Err(found) => return Ok(Repaired::AlreadyConsistent(found.to_string())),
    };
    emit(conn, event_id, &event).await.map_err(db)
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

async fn emit(
    conn: &mut PgConnection,
    event_id: EventId,
    event: &PointsEvent,
) -> Result<Repaired, sqlx::Error> {
    let repaired = saga_kit::repair::emit(conn, event_id, event).await?;
    tracing::info!(ce_type = event.ce_type(), "points repaired");
    Ok(repaired)
}

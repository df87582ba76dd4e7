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
use crate::handlers::order_cancelled::{release, ReleaseError};
use crate::handlers::BRANCH;
use jetsaga_contracts::{EventId, OrderId, StockEvent};
use saga_kit::barrier;
use saga_kit::envelope::keyed_event_id;
pub use saga_kit::repair::Repaired;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// A repair that could not run.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("stock release of order {order_id}: the stock database failed: {source}")]
    Database {
        order_id: OrderId,
        #[source]
        source: sqlx::Error,
    },
    #[error("stock release of order {order_id}: {reason}")]
    Refused { order_id: OrderId, reason: String },
}

/// The id of the release a repair emits for `order_id` over reservations last changed at
/// `version`.
pub fn release_event_id(order_id: OrderId, version: OffsetDateTime) -> EventId {
    keyed_event_id(
        "stock-repair-release",
        &format!("{order_id}@{}", version.unix_timestamp_nanos()),
    )
}

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
    let db = |source| RepairError::Database { order_id, source };
    let nothing = || {
        Ok(Repaired::AlreadyConsistent(
            "the order holds no stock".into(),
        ))
    };
    let version: Option<OffsetDateTime> = sqlx::query_scalar(
        "SELECT max(updated_at) FROM reservations WHERE order_id = $1 AND status = $2",
    )
    .bind(order_id.as_uuid())
    .bind(ReservationStatus::Held.as_str())
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    let Some(version) = version else {
        return nothing();
    };
    let event_id = release_event_id(order_id, version);
    // The barrier first, then the reservations, then the stock rows: the order the OrderCancelled
    // handler takes its locks in, so a repair racing it waits instead of deadlocking. (The
    // compensation recorded for a cancelled order is right even if the handler wins the race.)
    barrier::compensate(conn, &order_id.to_string(), BRANCH, event_id)
        .await
        .map_err(db)?;
    let event = match release(conn, order_id).await {
        Ok(Some(released)) => StockEvent::StockReleased(released),
        Ok(None) => return nothing(),
        Err(ReleaseError::Database(source)) => return Err(db(source)),
        Err(refused) => {
            return Err(RepairError::Refused {
                order_id,
                reason: refused.to_string(),
            })
        }
    };
    // Duplicate (the handler ran, then the rows were changed by hand) is expected here: the
    // barrier only has to know that the compensation has happened.
    let repaired = saga_kit::repair::emit(conn, event_id, &event)
        .await
        .map_err(db)?;
    tracing::info!(%order_id, "reconciler released the stock of a cancelled order");
    Ok(repaired)
}

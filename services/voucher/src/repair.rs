//! Repairs the reconciler asks of the voucher service: what an operator's `jetsaga reconcile
//! --repair` may fix here, with the rules and SQL the handlers use.
//!
//! A repair is an ordinary change of this service: it runs in the caller's transaction, changes the
//! voucher only through the functions the handlers use (`release`, `redeem`), and writes the event
//! that announces the change to the outbox in that same transaction, for the relay to publish.
//!
//! The event id is derived from the order, the repair and the version (`updated_at`) of the
//! voucher row it found: the same repair over the same state names the same event, and a later
//! repair of the same order (the row went wrong again) is announced as a new event.

use crate::handlers::order_cancelled::release;
use crate::handlers::order_confirmed::redeem;
use crate::handlers::Unchanged;
use crate::handlers::BRANCH;
use jetsaga_contracts::{EventId, EventSet, OrderId, VoucherEvent};
use saga_kit::barrier;
use saga_kit::envelope::keyed_event_id;
pub use saga_kit::repair::Repaired;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// A repair that could not run.
#[derive(Debug, thiserror::Error)]
#[error("voucher repair of order {order_id}: the voucher database failed: {source}")]
pub struct RepairError {
    pub order_id: OrderId,
    #[source]
    pub source: sqlx::Error,
}

/// The id of the event a repair (`"release"` or `"redeem"`) emits for `order_id` over a voucher
/// row last changed at `version`.
pub fn repair_event_id(repair: &str, order_id: OrderId, version: OffsetDateTime) -> EventId {
    keyed_event_id(
        &format!("voucher-repair-{repair}"),
        &format!("{order_id}@{}", version.unix_timestamp_nanos()),
    )
}

/// Makes the voucher an order the order service has CANCELLED still holds available again, as
/// the OrderCancelled handler would have, and says so with VoucherReleased. The caller has seen the
/// order CANCELLED. The compensation is also recorded in the saga barrier, so an OrderCancelled
/// still on its way finds the work done. A voucher that is not RESERVED by the order is left alone
/// (a REDEEMED one stays redeemed: that needs a person).
pub async fn release_cancelled(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Repaired, RepairError> {
    let db = |source| RepairError { order_id, source };
    let Some(version) = version(conn, order_id).await.map_err(db)? else {
        return Ok(Repaired::AlreadyConsistent(
            Unchanged::NoVoucher.to_string(),
        ));
    };
    let event_id = repair_event_id("release", order_id, version);
    // The barrier first, then the voucher: the order the OrderCancelled handler takes its locks
    // in, so a repair racing it waits instead of deadlocking.
    barrier::compensate(conn, &order_id.to_string(), BRANCH, event_id)
        .await
        .map_err(db)?;
    let event = match release(conn, order_id).await.map_err(db)? {
        Ok(released) => VoucherEvent::VoucherReleased(released),
        Err(found) => return Ok(Repaired::AlreadyConsistent(found.to_string())),
    };
    emit(conn, event_id, &event).await.map_err(db)
}

/// Redeems the voucher an order the order service has CONFIRMED still only holds, as the
/// OrderConfirmed handler would have, and says so with VoucherRedeemed. The caller has seen the
/// order CONFIRMED. A voucher that is not RESERVED by the order is left alone.
pub async fn redeem_confirmed(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Repaired, RepairError> {
    let db = |source| RepairError { order_id, source };
    let Some(version) = version(conn, order_id).await.map_err(db)? else {
        return Ok(Repaired::AlreadyConsistent(
            Unchanged::NoVoucher.to_string(),
        ));
    };
    let event_id = repair_event_id("redeem", order_id, version);
    let event = match redeem(conn, order_id).await.map_err(db)? {
        Ok(redeemed) => VoucherEvent::VoucherRedeemed(redeemed),
        Err(found) => return Ok(Repaired::AlreadyConsistent(found.to_string())),
    };
    emit(conn, event_id, &event).await.map_err(db)
}

/// The version (`updated_at`) of the voucher row an order holds, if it holds one.
async fn version(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar("SELECT updated_at FROM vouchers WHERE order_id = $1")
        .bind(order_id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
}

async fn emit(
    conn: &mut PgConnection,
    event_id: EventId,
    event: &VoucherEvent,
) -> Result<Repaired, sqlx::Error> {
    let repaired = saga_kit::repair::emit(conn, event_id, event).await?;
    tracing::info!(ce_type = event.ce_type(), "voucher repaired");
    Ok(repaired)
}

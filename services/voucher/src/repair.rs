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
use jetsaga_contracts::{OrderId, VoucherEvent};
use saga_kit::compensation;
use saga_kit::repair;
pub use saga_kit::repair::{RepairError, Repaired};
use sqlx::PgConnection;
use time::OffsetDateTime;

/// Makes the voucher an order the order service has CANCELLED still holds available again, as
/// the OrderCancelled handler would have, and says so with VoucherReleased. The caller has seen the
/// order CANCELLED. The compensation is also recorded in the saga barrier, so an OrderCancelled
/// still on its way finds the work done. A voucher that is not RESERVED by the order is left alone
/// (a REDEEMED one stays redeemed: that needs a person).
pub async fn release_cancelled(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Repaired, RepairError> {
    compensation::repair::<VoucherEvent, _, _, _>(
        conn,
        "voucher-repair-release",
        order_id,
        BRANCH,
        version,
        release,
    )
    .await
}

/// Redeems the voucher an order the order service has CONFIRMED still only holds, as the
/// OrderConfirmed handler would have, and says so with VoucherRedeemed. The caller has seen the
/// order CONFIRMED. A voucher that is not RESERVED by the order is left alone.
pub async fn redeem_confirmed(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Repaired, RepairError> {
    const REPAIR: &str = "voucher-repair-redeem";
    let failed = |e: sqlx::Error| RepairError::new(REPAIR, order_id, e);
    let Some(version) = version(conn, order_id).await.map_err(failed)? else {
        return Ok(Repaired::AlreadyConsistent(
            Unchanged::NoVoucher.to_string(),
        ));
    };
    let found = redeem(conn, order_id).await.map_err(failed)?;
    let event_id = repair::event_id(REPAIR, order_id, Some(version));
    repair::announce::<_, VoucherEvent>(conn, event_id, found)
        .await
        .map_err(failed)
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

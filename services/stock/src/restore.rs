//! The stock service's own events applied again as recorded facts, for `jetsaga replay`: one
//! function per event, each the state change the API or the handler made when it committed that
//! event, without deciding anything again (see [`saga_kit::facts`]).
//!
//! - StockAdjusted: the units an operator added or removed, once per adjustment id.
//! - StockReserved: every line held for the order, whatever is available now: the facts arrive
//!   in commit order, so the CHECK constraints hold; when one does not, an earlier fact is
//!   missing and the error says which order.
//! - StockFailed: nothing held; only the barrier's forward record.
//! - StockReleased: the order's HELD reservations released, from the OrderCancelled handler or a
//!   reconcile repair (a root event) alike.
//!
//! Each is idempotent by its business key (the adjustment id, the order's reservations) and
//! writes the barrier records the handler wrote, under the input's id (`causation_id`).

use crate::domain::{self, ReservationStatus};
use crate::handlers::BRANCH;
use crate::store;
use jetsaga_contracts::events::stock::{StockAdjusted, StockReleased, StockReserved};
use jetsaga_contracts::{Sku, StockEvent, StockLine};
use saga_kit::facts::{FactContext, Restore};
use saga_kit::HandlerError;
use sqlx::PgConnection;

/// The stock service's [`Restore`].
#[derive(Debug, Clone, Copy)]
pub struct Restorer;

impl Restore for Restorer {
    type Event = StockEvent;

    async fn restore(
        &self,
        tx: &mut PgConnection,
        event: StockEvent,
        ctx: &FactContext,
    ) -> Result<(), HandlerError> {
        match event {
            StockEvent::StockAdjusted(e) => adjusted(tx, e).await,
            StockEvent::StockReserved(e) => reserved(tx, e, ctx).await,
            StockEvent::StockFailed(e) => {
                // Nothing changed but the barrier.
                let what = format!("restoring the failed reservation of order {}", e.order_id);
                ctx.restore_forward(tx, &e.order_id.to_string(), BRANCH, &what)
                    .await
            }
            StockEvent::StockReleased(e) => released(tx, e, ctx).await,
        }
    }
}

/// An operator's adjustment: its ledger row and its change of `available`, as the route made
/// them.
async fn adjusted(tx: &mut PgConnection, e: StockAdjusted) -> Result<(), HandlerError> {
    let what = format!("restoring adjustment {} of sku {}", e.adjustment_id, e.sku);
    let db = |err| HandlerError::database(&what, err);
    if store::has_adjustment(tx, e.adjustment_id)
        .await
        .map_err(db)?
    {
        return Ok(());
    }
    store::ensure_row(tx, &e.sku).await.map_err(db)?;
    let row = store::lock(tx, &[&e.sku])
        .await
        .map_err(db)?
        .pop()
        .ok_or_else(|| HandlerError::permanent(format!("{what}: the sku has no row")))?;
    let available = domain::adjust(row.available, e.delta)
        .map_err(|err| HandlerError::permanent(format!("{what}: {err}")))?;
    store::set_available(tx, &e.sku, available)
        .await
        .map_err(db)?;
    store::insert_adjustment(tx, e.adjustment_id, &e.sku, e.delta)
        .await
        .map_err(db)?;
    Ok(())
}

/// A paid order's lines held: units from `available` to `reserved`, and HELD reservations.
async fn reserved(
    tx: &mut PgConnection,
    e: StockReserved,
    ctx: &FactContext,
) -> Result<(), HandlerError> {
    let order_id = e.order_id;
    let what = format!("restoring the reservation of order {order_id}");
    let db = |err| HandlerError::database(&what, err);
    ctx.restore_forward(tx, &order_id.to_string(), BRANCH, &what)
        .await?;
    if store::has_reservations(tx, order_id).await.map_err(db)? {
        return Ok(());
    }
    let skus: Vec<&Sku> = e.lines.iter().map(|l| &l.sku).collect();
    let rows = store::lock(tx, &skus).await.map_err(db)?;
    if let Some(missing) = skus
        .iter()
        .find(|s| !rows.iter().any(|r| r.sku == s.as_str()))
    {
        return Err(HandlerError::permanent(format!(
            "{what}: sku {missing} has no stock row (its adjustment is missing)"
        )));
    }
    // The CHECK constraints refuse a hold of units that are not there.
    store::reserve(tx, order_id, &e.lines).await.map_err(db)?;
    Ok(())
}

/// A cancelled order's units given back: each released line's reservation becomes RELEASED and
/// its units go from `reserved` back to `available`. Lines already RELEASED were restored before.
async fn released(
    tx: &mut PgConnection,
    e: StockReleased,
    ctx: &FactContext,
) -> Result<(), HandlerError> {
    let order_id = e.order_id;
    let what = format!("restoring the release of order {order_id}");
    let db = |err| HandlerError::database(&what, err);
    let refused = |reason: String| HandlerError::permanent(format!("{what}: {reason}"));
    // The handler's compensation, or a repair's (a root event, whose causation id is its own).
    ctx.restore_compensation(tx, &order_id.to_string(), BRANCH, &what)
        .await?;

    let reservations = store::lock_reservations(tx, order_id).await.map_err(db)?;
    let mut to_release: Vec<(&StockLine, ReservationStatus)> = Vec::with_capacity(e.lines.len());
    for line in &e.lines {
        let row = reservations
            .iter()
            .find(|r| r.sku == line.sku.as_str())
            .ok_or_else(|| refused(format!("sku {} was never reserved", line.sku)))?;
        let status = ReservationStatus::parse(&row.status)
            .ok_or_else(|| refused(format!("sku {} has status {:?}", row.sku, row.status)))?;
        // Released already: this fact was restored before.
        let Ok(released) = status.release() else {
            continue;
        };
        if row.quantity != i64::from(line.quantity) {
            return Err(refused(format!(
                "sku {} holds {} units, the event releases {}",
                line.sku, row.quantity, line.quantity
            )));
        }
        to_release.push((line, released));
    }

    let skus: Vec<&Sku> = to_release.iter().map(|(l, _)| &l.sku).collect();
    store::lock(tx, &skus).await.map_err(db)?;
    for (line, released) in to_release {
        store::hold(tx, &line.sku, -i64::from(line.quantity))
            .await
            .map_err(db)?;
        store::set_reservation_status(tx, order_id, &line.sku, released)
            .await
            .map_err(db)?;
    }
    Ok(())
}

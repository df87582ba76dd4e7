//! OrderCancelled → StockReleased, when this order holds units.

use super::BRANCH;
use crate::domain::ReservationStatus;
use crate::store;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::stock::StockReleased;
use jetsaga_contracts::{OrderId, Sku, StockEvent, StockLine};
use saga_kit::compensation::{self, Undo};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

/// Gives back what a cancelled order holds.
///
/// A cancellation that arrives before the payment was seen is a null compensation: the barrier
/// records it, so the late PaymentSucceeded reserves nothing. A second cancellation is a
/// duplicate. A cancelled order whose reservation had failed holds nothing, and nothing is said.
pub async fn handle(
    tx: &mut PgConnection,
    event: OrderCancelled,
    ctx: &EventContext,
) -> Result<Vec<StockEvent>, HandlerError> {
    compensation::compensate(tx, event.order_id, BRANCH, ctx.event_id, release).await
}

/// Why an order's stock could not be given back: the database, or a stored row the rules refuse.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("reservation of order {order_id}, sku {sku}: {reason}")]
    Refused {
        order_id: OrderId,
        sku: String,
        reason: String,
    },
}

impl From<ReleaseError> for HandlerError {
    fn from(e: ReleaseError) -> Self {
        match e {
            ReleaseError::Database(e) => e.into(),
            refused @ ReleaseError::Refused { .. } => HandlerError::permanent(refused.to_string()),
        }
    }
}

/// Gives back what an order holds: its HELD reservations move to RELEASED by the domain rule and
/// their units return to the stock, rows locked in SKU order like every other writer. Nothing when
/// it holds nothing. The one release of this service: the OrderCancelled handler and the
/// reconciler's repair both call it, after the barrier.
pub async fn release(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Undo<StockReleased>, ReleaseError> {
    let held = store::lock_held(conn, order_id).await?;
    if held.is_empty() {
        // A cancelled order whose reservation had failed holds nothing; nothing is said.
        return Ok(Undo::nothing("the order holds no stock"));
    }
    let mut lines = Vec::with_capacity(held.len());
    for row in held {
        let refused = |reason: String| ReleaseError::Refused {
            order_id,
            sku: row.sku.clone(),
            reason,
        };
        let status = ReservationStatus::parse(&row.status)
            .ok_or_else(|| refused(format!("unknown status {:?}", row.status)))?;
        let released = status.release().map_err(|e| refused(e.to_string()))?;
        let quantity = u32::try_from(row.quantity).map_err(|_| {
            refused(format!(
                "holds {} units, more than an order line can",
                row.quantity
            ))
        })?;
        let sku = Sku::parse(row.sku.as_str()).map_err(|e| refused(format!("stored sku: {e}")))?;
        lines.push((StockLine { sku, quantity }, released));
    }
    // The reservations are locked; now their stock rows, in SKU order like every other writer.
    let skus: Vec<_> = lines.iter().map(|(l, _)| &l.sku).collect();
    store::lock(conn, &skus).await?;
    for (line, released) in &lines {
        store::hold(conn, &line.sku, -i64::from(line.quantity)).await?;
        store::set_reservation_status(conn, order_id, &line.sku, *released).await?;
    }
    Ok(Undo::Done(StockReleased {
        order_id,
        lines: lines.into_iter().map(|(l, _)| l).collect(),
    }))
}

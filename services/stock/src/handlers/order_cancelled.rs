//! OrderCancelled → StockReleased, when this order holds units.

use super::{stored_sku, BRANCH};
use crate::domain::ReservationStatus;
use crate::store;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::stock::StockReleased;
use jetsaga_contracts::{StockEvent, StockLine};
use saga_kit::barrier::{self, Gate};
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
    let order_id = event.order_id;
    let saga = order_id.to_string();
    match barrier::compensate(tx, &saga, BRANCH, ctx.event_id).await? {
        Gate::Proceed => {}
        gate => {
            tracing::info!(%order_id, ?gate, "no stock to release");
            return Ok(vec![]);
        }
    }

    let held = store::lock_held(tx, order_id).await?;
    if held.is_empty() {
        return Ok(vec![]);
    }
    let mut lines = Vec::with_capacity(held.len());
    for row in held {
        let status = ReservationStatus::parse(&row.status).ok_or_else(|| {
            HandlerError::permanent(format!(
                "reservation of order {order_id}, sku {}, has unknown status {:?}",
                row.sku, row.status
            ))
        })?;
        let released = status.release().map_err(|e| {
            HandlerError::permanent(format!("order {order_id}, sku {}: {e}", row.sku))
        })?;
        let quantity = u32::try_from(row.quantity).map_err(|_| {
            HandlerError::permanent(format!(
                "reservation of order {order_id}, sku {}, holds {} units, more than an order line can",
                row.sku, row.quantity
            ))
        })?;
        let sku = stored_sku(row.sku)?;
        lines.push((StockLine { sku, quantity }, released));
    }

    // The reservations are locked; now their stock rows, in SKU order like every other writer.
    let skus: Vec<_> = lines.iter().map(|(l, _)| &l.sku).collect();
    store::lock(tx, &skus).await?;
    for (line, released) in &lines {
        store::hold(tx, &line.sku, -i64::from(line.quantity)).await?;
        store::set_reservation_status(tx, order_id, &line.sku, *released).await?;
    }
    Ok(vec![StockEvent::StockReleased(StockReleased {
        order_id,
        lines: lines.into_iter().map(|(l, _)| l).collect(),
    })])
}

//! PaymentSucceeded → StockReserved (every line held) | StockFailed (nothing held).

use super::{stored_sku, BRANCH};
use crate::domain::{merge_lines, reserve_all, Shortage};
use crate::store;
use jetsaga_contracts::events::payment::PaymentSucceeded;
use jetsaga_contracts::events::stock::{StockFailed, StockReserved};
use jetsaga_contracts::{Sku, StockEvent};
use saga_kit::barrier::{self, Gate};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;
use std::collections::HashMap;

/// Holds every line of a paid order, or none of them.
///
/// A second PaymentSucceeded for the same order (another event id) is a duplicate, and one that
/// arrives after the order was cancelled is a hanging step: the barrier stops both, and nothing is
/// reserved or said.
pub async fn handle(
    tx: &mut PgConnection,
    event: PaymentSucceeded,
    ctx: &EventContext,
) -> Result<Vec<StockEvent>, HandlerError> {
    let order_id = event.order_id;
    let requested = merge_lines(&event.lines).map_err(|e| {
        HandlerError::permanent(format!("PaymentSucceeded of order {order_id}: {e}"))
    })?;
    let saga = order_id.to_string();
    match barrier::forward(tx, &saga, BRANCH, ctx.event_id).await? {
        Gate::Proceed => {}
        gate => {
            tracing::info!(%order_id, ?gate, "stock step not taken");
            return Ok(vec![]);
        }
    }

    let skus: Vec<&Sku> = requested.iter().map(|l| &l.sku).collect();
    let mut available = HashMap::new();
    for row in store::lock(tx, &skus).await? {
        available.insert(stored_sku(row.sku)?, row.available);
    }

    match reserve_all(&requested, &available) {
        Ok(lines) => {
            store::reserve(tx, order_id, &lines).await?;
            Ok(vec![StockEvent::StockReserved(StockReserved {
                order_id,
                lines,
            })])
        }
        Err(Shortage {
            sku,
            requested,
            available,
        }) => {
            tracing::info!(%order_id, %sku, requested, available, "not enough stock");
            Ok(vec![StockEvent::StockFailed(StockFailed {
                order_id,
                sku,
                requested,
                available,
            })])
        }
    }
}

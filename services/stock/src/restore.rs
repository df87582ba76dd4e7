//! What `jetsaga replay` re-applies from the stock service's own stream: the root events the
//! service emitted on its own (a stock adjustment, a release a repair made) that its database lost. Reservations and
//! releases come back by re-consuming its inputs.

use crate::repair::{self, Announce};
use crate::{domain, store};
use jetsaga_contracts::StockEvent;
use saga_kit::replay::Restore;
use saga_kit::{EventContext, HandlerError};
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
        _ctx: &EventContext,
    ) -> Result<(), HandlerError> {
        match event {
            StockEvent::StockAdjusted(e) => {
                store::ensure_row(tx, &e.sku).await?;
                let row = store::lock(tx, &[&e.sku]).await?.pop().ok_or_else(|| {
                    HandlerError::permanent(format!(
                        "adjustment {}: sku {} has no row",
                        e.adjustment_id, e.sku
                    ))
                })?;
                let available = domain::adjust(row.available, e.delta).map_err(|err| {
                    HandlerError::permanent(format!(
                        "adjustment {} of sku {}: {err}",
                        e.adjustment_id, e.sku
                    ))
                })?;
                store::set_available(tx, &e.sku, available).await?;
                store::insert_adjustment(tx, e.adjustment_id, &e.sku, e.delta).await?;
                Ok(())
            }
            // A release a reconcile repair made (the handler's own releases are derived events).
            StockEvent::StockReleased(e) => {
                repair::release_cancelled(tx, e.order_id, Announce::AlreadyInStream)
                    .await
                    .map_err(|err| HandlerError::permanent(err.to_string()))?;
                Ok(())
            }
            other => Err(HandlerError::permanent(format!(
                "{} is not a root event the stock service restores",
                jetsaga_contracts::EventSet::ce_type(&other)
            ))),
        }
    }
}

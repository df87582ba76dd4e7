//! What `jetsaga replay` re-applies from the order service's own stream: the root events the
//! service emitted on its own (a product priced, an order accepted, an order cancelled at its
//! deadline) that its database lost. The rest of its state comes back by re-consuming its inputs.

use crate::store::{self, Line, NewOrder};
use jetsaga_contracts::OrderEvent;
use saga_kit::replay::Restore;
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

/// The order service's [`Restore`].
#[derive(Debug, Clone, Copy)]
pub struct Restorer;

impl Restore for Restorer {
    type Event = OrderEvent;

    async fn restore(
        &self,
        tx: &mut PgConnection,
        event: OrderEvent,
        _ctx: &EventContext,
    ) -> Result<(), HandlerError> {
        match event {
            OrderEvent::ProductPriced(e) => {
                store::upsert_product(tx, &e.sku, &e.name, e.price).await?
            }
            OrderEvent::OrderCreated(e) => {
                if store::find_order(&mut *tx, e.order_id).await?.is_some() {
                    return Ok(());
                }
                let lines: Vec<Line> = e
                    .lines
                    .iter()
                    .map(|l| Line {
                        sku: l.sku.clone(),
                        quantity: l.quantity,
                        unit_price: l.unit_price,
                    })
                    .collect();
                // The client's Idempotency-Key is not part of the event, so it is not restored.
                store::insert_order(
                    tx,
                    &NewOrder {
                        order_id: e.order_id,
                        customer_id: e.customer_id,
                        total: e.total,
                        voucher_code: e.voucher_code.as_ref(),
                        deadline: e.deadline,
                        idempotency_key: None,
                        request_hash: "",
                        lines: &lines,
                    },
                )
                .await?;
            }
            // The deadline sweep's (or a repair's) cancellation; only a PENDING order changes.
            OrderEvent::OrderCancelled(e) => store::cancel(tx, e.order_id, e.reason).await?,
            OrderEvent::OrderConfirmed(e) => {
                return Err(HandlerError::permanent(format!(
                    "OrderConfirmed of order {} is never a root event",
                    e.order_id
                )))
            }
        }
        Ok(())
    }
}

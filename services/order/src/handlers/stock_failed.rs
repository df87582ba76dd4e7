//! StockFailed: a line could not be held, so the order is cancelled (`stock_failed`).

use super::cancel;
use jetsaga_contracts::events::stock::StockFailed;
use jetsaga_contracts::{CancelReason, OrderEvent};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: StockFailed,
    _ctx: &EventContext,
) -> Result<Vec<OrderEvent>, HandlerError> {
    cancel(tx, event.order_id, CancelReason::StockFailed).await
}

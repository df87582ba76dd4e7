//! PaymentFailed: the customer could not be charged, so the order is cancelled (`payment_failed`).

use super::cancel;
use jetsaga_contracts::events::payment::PaymentFailed;
use jetsaga_contracts::{CancelReason, OrderEvent};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: PaymentFailed,
    _ctx: &EventContext,
) -> Result<Vec<OrderEvent>, HandlerError> {
    cancel(tx, event.order_id, CancelReason::PaymentFailed).await
}

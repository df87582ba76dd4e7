//! VoucherRejected: the voucher cannot be used, so the order is cancelled (`voucher_rejected`).

use super::cancel;
use jetsaga_contracts::events::voucher::VoucherRejected;
use jetsaga_contracts::{CancelReason, OrderEvent};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: VoucherRejected,
    _ctx: &EventContext,
) -> Result<Vec<OrderEvent>, HandlerError> {
    cancel(tx, event.order_id, CancelReason::VoucherRejected).await
}

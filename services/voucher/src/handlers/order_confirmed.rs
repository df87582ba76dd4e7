//! OrderConfirmed → VoucherRedeemed, when this service holds a voucher for that order.

use crate::domain::{Transition, VoucherStatus};
use crate::store;
use jetsaga_contracts::events::order::OrderConfirmed;
use jetsaga_contracts::events::voucher::VoucherRedeemed;
use jetsaga_contracts::VoucherEvent;
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: OrderConfirmed,
    _ctx: &EventContext,
) -> Result<Vec<VoucherEvent>, HandlerError> {
    let Some(voucher) = store::lock_by_order(tx, event.order_id).await? else {
        if let Some(code) = &event.voucher_code {
            tracing::warn!(order_id = %event.order_id, %code,
                "OrderConfirmed names a voucher this order does not hold");
        }
        return Ok(vec![]);
    };
    match voucher.status.apply(Transition::Redeem) {
        Ok(next) => {
            store::set_state(tx, &voucher.code, next, Some(event.order_id)).await?;
            Ok(vec![VoucherEvent::VoucherRedeemed(VoucherRedeemed {
                order_id: event.order_id,
                voucher_code: voucher.code,
            })])
        }
        // Already redeemed by this order: the same confirmation again.
        Err(_) if voucher.status == VoucherStatus::Redeemed => Ok(vec![]),
        Err(e) => {
            tracing::warn!(order_id = %event.order_id, code = %voucher.code, error = %e,
                "OrderConfirmed for a voucher that cannot be redeemed");
            Ok(vec![])
        }
    }
}

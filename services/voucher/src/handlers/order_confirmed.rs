//! OrderConfirmed → VoucherRedeemed, when this service holds a voucher for that order.

use super::Unchanged;
use crate::domain::{Transition, VoucherStatus};
use crate::store;
use jetsaga_contracts::events::order::OrderConfirmed;
use jetsaga_contracts::events::voucher::VoucherRedeemed;
use jetsaga_contracts::{OrderId, VoucherEvent};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: OrderConfirmed,
    _ctx: &EventContext,
) -> Result<Vec<VoucherEvent>, HandlerError> {
    match redeem(tx, event.order_id).await? {
        Ok(redeemed) => Ok(vec![VoucherEvent::VoucherRedeemed(redeemed)]),
        Err(Unchanged::NoVoucher) => {
            if let Some(code) = &event.voucher_code {
                tracing::warn!(order_id = %event.order_id, %code,
                    "OrderConfirmed names a voucher this order does not hold");
            }
            Ok(vec![])
        }
        // Already redeemed by this order: the same confirmation again.
        Err(Unchanged::Status(e)) if e.from == VoucherStatus::Redeemed => Ok(vec![]),
        Err(Unchanged::Status(e)) => {
            tracing::warn!(order_id = %event.order_id, error = %e,
                "OrderConfirmed for a voucher that cannot be redeemed");
            Ok(vec![])
        }
    }
}

/// Redeems the voucher an order holds, by the domain rule. The one redemption of this service:
/// the OrderConfirmed handler and the reconciler's repair both call it.
pub async fn redeem(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Result<VoucherRedeemed, Unchanged>, sqlx::Error> {
    let Some(voucher) = store::lock_by_order(conn, order_id).await? else {
        return Ok(Err(Unchanged::NoVoucher));
    };
    let next = match voucher.status.apply(Transition::Redeem) {
        Ok(next) => next,
        Err(e) => return Ok(Err(e.into())),
    };
    store::set_state(conn, &voucher.code, next, Some(order_id)).await?;
    Ok(Ok(VoucherRedeemed {
        order_id,
        voucher_code: voucher.code,
    }))
}

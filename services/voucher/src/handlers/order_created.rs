//! OrderCreated → VoucherReserved (also with discount 0 when the order has no voucher) or
//! VoucherRejected.

use super::BRANCH;
use crate::domain::{self, Transition, Voucher};
use crate::store;
use jetsaga_contracts::events::order::OrderCreated;
use jetsaga_contracts::events::voucher::{VoucherRejected, VoucherReserved};
use jetsaga_contracts::{Money, RejectReason, VoucherCode, VoucherEvent};
use saga_kit::barrier::{self, Gate};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: OrderCreated,
    ctx: &EventContext,
) -> Result<Vec<VoucherEvent>, HandlerError> {
    let saga = event.order_id.to_string();
    match barrier::forward(tx, &saga, BRANCH, ctx.event_id).await? {
        Gate::Proceed => {}
        gate => {
            // Hanging: the order was cancelled before it reached us. Duplicate: already done.
            tracing::info!(order_id = %event.order_id, ?gate, "OrderCreated not applied");
            return Ok(vec![]);
        }
    }
    let Some(code) = event.voucher_code.clone() else {
        return Ok(vec![reserved(event, None, Money::ZERO)]);
    };
    let voucher = store::lock_by_code(tx, &code).await?;
    // The order's own time, not the clock: a replay of this event decides as the first run did.
    let reason = match (
        &voucher,
        domain::check_voucher(voucher.as_ref(), event.customer_id, ctx.event_time),
    ) {
        (Some(voucher), Ok(discount)) => return reserve(tx, event, voucher, discount).await,
        (_, Err(reason)) => reason,
        // check_voucher never accepts a missing voucher; should it ever, refuse as unknown.
        (None, Ok(_)) => RejectReason::Unknown,
    };
    tracing::info!(order_id = %event.order_id, %code, ?reason, "voucher rejected");
    Ok(vec![VoucherEvent::VoucherRejected(VoucherRejected {
        order_id: event.order_id,
        voucher_code: code,
        reason,
    })])
}

/// Holds `voucher` for the order and announces the discount it gives.
async fn reserve(
    tx: &mut PgConnection,
    event: OrderCreated,
    voucher: &Voucher,
    voucher_discount: Money,
) -> Result<Vec<VoucherEvent>, HandlerError> {
    let next = voucher.status.apply(Transition::Reserve).map_err(|e| {
        HandlerError::permanent(format!(
            "voucher {} for order {}: {e}",
            voucher.code, event.order_id
        ))
    })?;
    store::set_state(tx, &voucher.code, next, Some(event.order_id)).await?;
    let discount = domain::applied_discount(voucher_discount, event.total);
    let code = voucher.code.clone();
    Ok(vec![reserved(event, Some(code), discount)])
}

fn reserved(
    event: OrderCreated,
    voucher_code: Option<VoucherCode>,
    discount: Money,
) -> VoucherEvent {
    VoucherEvent::VoucherReserved(VoucherReserved {
        order_id: event.order_id,
        customer_id: event.customer_id,
        voucher_code,
        lines: event.lines,
        total: event.total,
        discount,
        points: event.points,
    })
}

//! The voucher service's own events applied again as recorded facts, for `jetsaga replay`: one
//! function per event, each the state change the API or the handler made when it committed that
//! event, without deciding anything again (see [`saga_kit::facts`]).
//!
//! - VoucherIssued: the AVAILABLE voucher, once per code.
//! - VoucherReserved: the order's voucher RESERVED for it (nothing for an order without one),
//!   whatever its expiry or owner: the order's check passed when the fact was committed.
//! - VoucherRejected: nothing changed but the barrier.
//! - VoucherReleased, VoucherRedeemed: the voucher AVAILABLE again, or used up, from the
//!   OrderCancelled and OrderConfirmed handlers or a reconcile repair (a root event) alike.
//!
//! Each is idempotent by its business key (the code, the order holding it) and writes the barrier
//! records the handler wrote, under the input's id (`causation_id`). Every voucher moves through
//! [`VoucherStatus::apply`] here too, so a fact that does not fit the voucher as restored so far
//! (a reservation of a voucher another order holds) fails with the order and the code.

use crate::domain::{Transition, Voucher, VoucherStatus};
use crate::handlers::BRANCH;
use crate::store::{self, NewVoucher};
use jetsaga_contracts::events::voucher::{
    VoucherIssued, VoucherRedeemed, VoucherReleased, VoucherReserved,
};
use jetsaga_contracts::{VoucherCode, VoucherEvent};
use saga_kit::facts::{FactContext, Restore};
use saga_kit::HandlerError;
use sqlx::PgConnection;

/// The voucher service's [`Restore`].
#[derive(Debug, Clone, Copy)]
pub struct Restorer;

impl Restore for Restorer {
    type Event = VoucherEvent;

    async fn restore(
        &self,
        tx: &mut PgConnection,
        event: VoucherEvent,
        ctx: &FactContext,
    ) -> Result<(), HandlerError> {
        match event {
            VoucherEvent::VoucherIssued(e) => issued(tx, e).await,
            VoucherEvent::VoucherReserved(e) => reserved(tx, e, ctx).await,
            VoucherEvent::VoucherRejected(e) => {
                // Nothing changed but the barrier.
                let what = format!("restoring the voucher rejection of order {}", e.order_id);
                ctx.restore_forward(tx, &e.order_id.to_string(), BRANCH, &what)
                    .await
            }
            VoucherEvent::VoucherReleased(e) => released(tx, e, ctx).await,
            VoucherEvent::VoucherRedeemed(e) => redeemed(tx, e).await,
        }
    }
}

/// An operator's voucher, AVAILABLE; a voucher of that code is this one, restored before.
async fn issued(tx: &mut PgConnection, e: VoucherIssued) -> Result<(), HandlerError> {
    let voucher = NewVoucher {
        code: e.code,
        customer_id: e.customer_id,
        discount: e.discount,
        expires_at: e.expires_at,
    };
    store::insert(tx, &voucher).await.map_err(|err| {
        HandlerError::database(format!("restoring voucher {}", voucher.code), err)
    })?;
    Ok(())
}

/// The voucher step passed: the order's voucher, if it has one, is RESERVED for it.
async fn reserved(
    tx: &mut PgConnection,
    e: VoucherReserved,
    ctx: &FactContext,
) -> Result<(), HandlerError> {
    let order_id = e.order_id;
    let what = format!("restoring the voucher reservation of order {order_id}");
    let db = |err| HandlerError::database(&what, err);
    ctx.restore_forward(tx, &order_id.to_string(), BRANCH, &what)
        .await?;
    let Some(code) = e.voucher_code else {
        return Ok(());
    };
    let voucher = lock(tx, &code, &what).await?;
    if voucher.order_id == Some(order_id) {
        return Ok(());
    }
    let next = apply(&voucher, Transition::Reserve, &what)?;
    store::set_state(tx, &code, next, Some(order_id))
        .await
        .map_err(db)?;
    Ok(())
}

/// A cancelled order's voucher is AVAILABLE again. One the order no longer holds was restored
/// before (and may have been reserved by another order since).
async fn released(
    tx: &mut PgConnection,
    e: VoucherReleased,
    ctx: &FactContext,
) -> Result<(), HandlerError> {
    let order_id = e.order_id;
    let what = format!(
        "restoring the release of voucher {} by order {order_id}",
        e.voucher_code
    );
    let db = |err| HandlerError::database(&what, err);
    // The handler's compensation, or a repair's (a root event, whose causation id is its own).
    ctx.restore_compensation(tx, &order_id.to_string(), BRANCH, &what)
        .await?;
    let voucher = lock(tx, &e.voucher_code, &what).await?;
    if voucher.order_id != Some(order_id) {
        return Ok(());
    }
    let next = apply(&voucher, Transition::Release, &what)?;
    store::set_state(tx, &e.voucher_code, next, None)
        .await
        .map_err(db)?;
    Ok(())
}

/// A confirmed order's voucher is used up. The OrderConfirmed handler and the repair pass no
/// barrier, so neither does this.
async fn redeemed(tx: &mut PgConnection, e: VoucherRedeemed) -> Result<(), HandlerError> {
    let order_id = e.order_id;
    let what = format!(
        "restoring the redemption of voucher {} by order {order_id}",
        e.voucher_code
    );
    let voucher = lock(tx, &e.voucher_code, &what).await?;
    if voucher.order_id == Some(order_id) && voucher.status == VoucherStatus::Redeemed {
        return Ok(());
    }
    if voucher.order_id != Some(order_id) {
        return Err(HandlerError::permanent(format!(
            "{what}: the order does not hold it (its reservation is missing)"
        )));
    }
    let next = apply(&voucher, Transition::Redeem, &what)?;
    store::set_state(tx, &e.voucher_code, next, Some(order_id))
        .await
        .map_err(|err| HandlerError::database(&what, err))?;
    Ok(())
}

/// Locks the voucher `code`; a voucher that is not there was never issued as far as the facts
/// restored so far go.
async fn lock(
    tx: &mut PgConnection,
    code: &VoucherCode,
    what: &str,
) -> Result<Voucher, HandlerError> {
    store::lock_by_code(tx, code)
        .await
        .map_err(|err| HandlerError::database(what, err))?
        .ok_or_else(|| {
            HandlerError::permanent(format!("{what}: no such voucher (its issue is missing)"))
        })
}

/// The status `transition` takes `voucher` to, by the domain's rule.
fn apply(
    voucher: &Voucher,
    transition: Transition,
    what: &str,
) -> Result<VoucherStatus, HandlerError> {
    voucher.status.apply(transition).map_err(|err| {
        let holder = voucher
            .order_id
            .map(|o| format!(" (held by order {o})"))
            .unwrap_or_default();
        HandlerError::permanent(format!("{what}: {err}{holder}"))
    })
}

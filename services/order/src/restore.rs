//! The order service's own events applied again as recorded facts, for `jetsaga replay`: one
//! function per event, each the state change the API, a handler, the deadline sweep or a repair
//! made when it committed that event, without deciding anything again (see
//! [`saga_kit::facts`]).
//!
//! - ProductPriced: the product's name and price.
//! - OrderCreated: the PENDING order with its lines, and its Idempotency-Key record: the key from
//!   the event, the request hash computed from it ([`domain::request_hash`]). An event written
//!   before the key was carried restores the order without one.
//! - OrderConfirmed: the order CONFIRMED with the discount and points spent the event reports.
//! - OrderCancelled: the order CANCELLED for the event's reason, whether a handler, the deadline
//!   sweep or a repair cancelled it.
//!
//! Each is idempotent by its business key (the SKU, the order). The order service passes no saga
//! barrier, so there is none to restore. What its handlers record without saying anything (the
//! discount and points of a PointsReserved, a StockReserved that came first) has no fact: the replay handles
//! those inputs again.

use crate::domain::{self, RecordedEnd};
use crate::store::{self, Line, NewOrder};
use jetsaga_contracts::events::order::{
    OrderCancelled, OrderConfirmed, OrderCreated, ProductPriced,
};
use jetsaga_contracts::{OrderEvent, OrderId};
use saga_kit::facts::{FactContext, Restore};
use saga_kit::HandlerError;
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
        _ctx: &FactContext,
    ) -> Result<(), HandlerError> {
        match event {
            OrderEvent::ProductPriced(e) => priced(tx, e).await,
            OrderEvent::OrderCreated(e) => created(tx, e).await,
            OrderEvent::OrderConfirmed(e) => confirmed(tx, e).await,
            OrderEvent::OrderCancelled(e) => cancelled(tx, e).await,
        }
    }
}

/// An operator's price.
async fn priced(tx: &mut PgConnection, e: ProductPriced) -> Result<(), HandlerError> {
    store::upsert_product(tx, &e.sku, &e.name, e.price)
        .await
        .map_err(|err| HandlerError::database(format!("restoring product {}", e.sku), err))
}

/// An accepted order, PENDING, with its lines and its idempotency record.
async fn created(tx: &mut PgConnection, e: OrderCreated) -> Result<(), HandlerError> {
    let what = format!("restoring order {}", e.order_id);
    let db = |err| HandlerError::database(&what, err);
    if store::find_order(&mut *tx, e.order_id)
        .await
        .map_err(db)?
        .is_some()
    {
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
    let items: Vec<_> = e
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.quantity))
        .collect();
    let request_hash =
        domain::request_hash(e.customer_id, &items, e.voucher_code.as_ref(), e.points);
    let order = NewOrder {
        order_id: e.order_id,
        customer_id: e.customer_id,
        total: e.total,
        voucher_code: e.voucher_code.as_ref(),
        points_requested: e.points,
        deadline: e.deadline,
        idempotency_key: e.idempotency_key.as_deref(),
        request_hash: &request_hash,
        lines: &lines,
    };
    if !store::insert_order(tx, &order).await.map_err(db)? {
        return Err(HandlerError::permanent(format!(
            "{what}: its Idempotency-Key {:?} is held by another order",
            e.idempotency_key.unwrap_or_default()
        )));
    }
    Ok(())
}

/// The order CONFIRMED, with the discount and the points spent the confirmation reports (the one the handler had
/// recorded).
async fn confirmed(tx: &mut PgConnection, e: OrderConfirmed) -> Result<(), HandlerError> {
    let what = format!("restoring the confirmation of order {}", e.order_id);
    if !to_end(tx, e.order_id, RecordedEnd::Confirmed, &what).await? {
        return Ok(());
    }
    let db = |err| HandlerError::database(&what, err);
    store::record_deductions(tx, e.order_id, e.discount, e.points_spent)
        .await
        .map_err(db)?;
    store::confirm(tx, e.order_id).await.map_err(db)
}

/// The order CANCELLED for the event's reason.
async fn cancelled(tx: &mut PgConnection, e: OrderCancelled) -> Result<(), HandlerError> {
    let what = format!("restoring the cancellation of order {}", e.order_id);
    if !to_end(tx, e.order_id, RecordedEnd::Cancelled(e.reason), &what).await? {
        return Ok(());
    }
    store::cancel(tx, e.order_id, e.reason)
        .await
        .map_err(|err| HandlerError::database(&what, err))
}

/// Locks the order and says whether `end` still has to be applied to it
/// ([`domain::end_to_restore`]).
async fn to_end(
    tx: &mut PgConnection,
    order_id: OrderId,
    end: RecordedEnd,
    what: &str,
) -> Result<bool, HandlerError> {
    let order = store::lock_order(tx, order_id)
        .await
        .map_err(|err| HandlerError::database(what, err))?
        .ok_or_else(|| {
            HandlerError::permanent(format!(
                "{what}: no such order (its OrderCreated is missing)"
            ))
        })?;
    domain::end_to_restore(order.status, order.cancel_reason, end)
        .map_err(|err| HandlerError::permanent(format!("{what}: {err}")))
}

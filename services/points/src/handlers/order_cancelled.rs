//! OrderCancelled → PointsReleased, when this service holds points for that order.

use super::{broken, Unchanged, BRANCH};
use crate::domain::Transition;
use crate::store;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::points::PointsReleased;
use jetsaga_contracts::{OrderId, PointsEvent};
use saga_kit::compensation::{self, Undo};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

/// Gives back the points a cancelled order holds. Spent points stay spent: a cancellation never
/// undoes a confirmation. Before the VoucherReserved it is a null compensation, and the barrier
/// blocks that late step.
pub async fn handle(
    tx: &mut PgConnection,
    event: OrderCancelled,
    ctx: &EventContext,
) -> Result<Vec<PointsEvent>, HandlerError> {
    compensation::compensate(tx, event.order_id, BRANCH, ctx.event_id, release).await
}

/// Makes the points an order holds available again, by the domain rule. The one release of this
/// service: the OrderCancelled handler and the reconciler's repair both call it, after the barrier.
pub async fn release(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Undo<PointsReleased>, HandlerError> {
    let Some(hold) = store::lock_hold(conn, order_id).await? else {
        // The order spent no points, or its points were rejected.
        return Ok(Undo::nothing(Unchanged::NoHold));
    };
    let next = match hold.status.apply(Transition::Release) {
        Ok(next) => next,
        Err(e) => return Ok(Undo::kept(e)),
    };
    let account = store::lock_account(conn, hold.customer_id).await?;
    let account = account
        .release(hold.points)
        .map_err(|e| broken(order_id, e))?;
    store::set_account(conn, hold.customer_id, account).await?;
    store::set_hold(conn, order_id, next, None).await?;
    Ok(Undo::Done(PointsReleased {
        order_id,
        customer_id: hold.customer_id,
        points: hold.points,
    }))
}

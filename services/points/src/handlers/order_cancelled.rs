//! OrderCancelled → PointsReleased, when this service holds points for that order.

use super::{broken, Unchanged, BRANCH};
use crate::domain::Transition;
use crate::store;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::points::PointsReleased;
use jetsaga_contracts::{OrderId, PointsEvent};
use saga_kit::barrier::{self, Gate};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: OrderCancelled,
    ctx: &EventContext,
) -> Result<Vec<PointsEvent>, HandlerError> {
    let saga = event.order_id.to_string();
    match barrier::compensate(tx, &saga, BRANCH, ctx.event_id).await? {
        Gate::Proceed => {}
        gate => {
            // Null compensation: the barrier now blocks a late VoucherReserved. Duplicate: done.
            tracing::info!(order_id = %event.order_id, ?gate, "OrderCancelled: nothing to release");
            return Ok(vec![]);
        }
    }
    match release(tx, event.order_id).await? {
        Ok(released) => Ok(vec![PointsEvent::PointsReleased(released)]),
        // The order spent no points, or its points were rejected.
        Err(Unchanged::NoHold) => Ok(vec![]),
        Err(Unchanged::Status(e)) => {
            // Spent points stay spent: a cancellation never undoes a confirmation.
            tracing::warn!(order_id = %event.order_id, error = %e,
                "OrderCancelled for an order whose points cannot be released");
            Ok(vec![])
        }
    }
}

/// Makes the points an order holds available again, by the domain rule. The one release of this
/// service: the OrderCancelled handler and the reconciler's repair both call it, after the barrier.
pub async fn release(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Result<PointsReleased, Unchanged>, HandlerError> {
    let Some(hold) = store::lock_hold(conn, order_id).await? else {
        return Ok(Err(Unchanged::NoHold));
    };
    let next = match hold.status.apply(Transition::Release) {
        Ok(next) => next,
        Err(e) => return Ok(Err(e.into())),
    };
    let account = store::lock_account(conn, hold.customer_id).await?;
    let account = account
        .release(hold.points)
        .map_err(|e| broken(order_id, e))?;
    store::set_account(conn, hold.customer_id, account).await?;
    store::set_hold(conn, order_id, next, None).await?;
    Ok(Ok(PointsReleased {
        order_id,
        customer_id: hold.customer_id,
        points: hold.points,
    }))
}

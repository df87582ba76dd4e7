//! OrderConfirmed → PointsEarned: the order's held points are spent and the customer earns one
//! point per full 1.00 charged, once (a SPENT hold is never spent again).

use super::{broken, Unchanged};
use crate::domain::{self, HoldStatus, Transition};
use crate::store::{self, Hold};
use jetsaga_contracts::events::order::OrderConfirmed;
use jetsaga_contracts::events::points::PointsEarned;
use jetsaga_contracts::{Points, PointsEvent};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: OrderConfirmed,
    _ctx: &EventContext,
) -> Result<Vec<PointsEvent>, HandlerError> {
    let order_id = event.order_id;
    match earn(tx, &event).await? {
        Ok(earned) => Ok(vec![PointsEvent::PointsEarned(earned)]),
        // Already spent by this order: the same confirmation again.
        Err(Unchanged::Status(e)) if e.from == HoldStatus::Spent => Ok(vec![]),
        Err(e) => {
            tracing::warn!(%order_id, error = %e, "OrderConfirmed for points that cannot be spent");
            Ok(vec![])
        }
    }
}

/// Spends what a confirmed order holds and awards what it earned, by the domain rule. The one
/// confirmation of this service: the OrderConfirmed handler and the reconciler's repair both call
/// it. An order that held no points gets a SPENT hold of 0 points, which records what it earned.
pub async fn earn(
    conn: &mut PgConnection,
    event: &OrderConfirmed,
) -> Result<Result<PointsEarned, Unchanged>, HandlerError> {
    let order_id = event.order_id;
    let hold = store::lock_hold(conn, order_id).await?;
    let spent = match &hold {
        Some(hold) => {
            if let Err(e) = hold.status.apply(Transition::Spend) {
                return Ok(Err(e.into()));
            }
            hold.points
        }
        None => Points::ZERO,
    };
    if spent != event.points_spent {
        tracing::warn!(%order_id, held = %spent, confirmed = %event.points_spent,
            "the confirmation reports other points spent than this service held");
    }
    let earned = domain::earned_for(domain::charged(event.total, event.discount, spent));
    let account = store::lock_account(conn, event.customer_id).await?;
    let account = account
        .spend_and_earn(spent, earned)
        .map_err(|e| broken(order_id, e))?;
    store::set_account(conn, event.customer_id, account).await?;
    if hold.is_some() {
        store::set_hold(conn, order_id, HoldStatus::Spent, Some(earned)).await?;
    } else {
        store::insert_hold(
            conn,
            &Hold {
                order_id,
                customer_id: event.customer_id,
                points: Points::ZERO,
                status: HoldStatus::Spent,
                earned: Some(earned),
            },
        )
        .await?;
    }
    Ok(Ok(PointsEarned {
        order_id,
        customer_id: event.customer_id,
        spent,
        earned,
    }))
}

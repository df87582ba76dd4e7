//! The points service's own events applied again as recorded facts, for `jetsaga replay`: one
//! function per event, each the state change the API or the handler made when it committed that
//! event, without deciding anything again (see [`saga_kit::facts`]).
//!
//! - PointsAwarded: the award, and the customer's available points, once per award.
//! - PointsReserved: the order's points HELD (nothing for an order that spends none).
//! - PointsRejected: nothing changed but the barrier.
//! - PointsReleased: the order's points available again, from the OrderCancelled handler or a
//!   reconcile repair (a root event) alike.
//! - PointsEarned: the order's points spent and what it earned available.
//!
//! Each is idempotent by its business key (the award, the order's hold) and writes the barrier
//! records the handler wrote, under the input's id (`causation_id`).

use crate::domain::{HoldStatus, Transition};
use crate::handlers::BRANCH;
use crate::store::{self, Hold};
use jetsaga_contracts::events::points::{
    PointsAwarded, PointsEarned, PointsReleased, PointsReserved,
};
use jetsaga_contracts::{Points, PointsEvent};
use saga_kit::facts::{FactContext, Restore};
use saga_kit::HandlerError;
use sqlx::PgConnection;

/// The points service's [`Restore`].
#[derive(Debug, Clone, Copy)]
pub struct Restorer;

impl Restore for Restorer {
    type Event = PointsEvent;

    async fn restore(
        &self,
        tx: &mut PgConnection,
        event: PointsEvent,
        ctx: &FactContext,
    ) -> Result<(), HandlerError> {
        match event {
            PointsEvent::PointsAwarded(e) => awarded(tx, e).await,
            PointsEvent::PointsReserved(e) => reserved(tx, e, ctx).await,
            PointsEvent::PointsRejected(e) => {
                let what = format!("restoring the points rejection of order {}", e.order_id);
                ctx.restore_forward(tx, &e.order_id.to_string(), BRANCH, &what)
                    .await
            }
            PointsEvent::PointsReleased(e) => released(tx, e, ctx).await,
            PointsEvent::PointsEarned(e) => earned(tx, e).await,
        }
    }
}

fn broken(what: &str, e: impl std::fmt::Display) -> HandlerError {
    HandlerError::permanent(format!("{what}: {e}"))
}

/// An operator's award.
async fn awarded(tx: &mut PgConnection, e: PointsAwarded) -> Result<(), HandlerError> {
    let what = format!("restoring points award {} to {}", e.award_id, e.customer_id);
    let db = |err| HandlerError::database(&what, err);
    if !store::insert_award(tx, e.award_id, e.customer_id, e.points, &e.actor)
        .await
        .map_err(db)?
    {
        return Ok(());
    }
    let account = store::lock_account(tx, e.customer_id).await.map_err(db)?;
    let account = account.award(e.points).map_err(|err| broken(&what, err))?;
    store::set_account(tx, e.customer_id, account)
        .await
        .map_err(db)
}

/// The points step passed: the order's points, if it spends any, are HELD.
async fn reserved(
    tx: &mut PgConnection,
    e: PointsReserved,
    ctx: &FactContext,
) -> Result<(), HandlerError> {
    let order_id = e.order_id;
    let what = format!("restoring the points reservation of order {order_id}");
    let db = |err| HandlerError::database(&what, err);
    ctx.restore_forward(tx, &order_id.to_string(), BRANCH, &what)
        .await?;
    if e.points == Points::ZERO || store::lock_hold(tx, order_id).await.map_err(db)?.is_some() {
        return Ok(());
    }
    let account = store::lock_account(tx, e.customer_id).await.map_err(db)?;
    let account = account
        .hold(e.points)
        .map_err(|reason| broken(&what, format!("{reason:?}")))?;
    store::set_account(tx, e.customer_id, account)
        .await
        .map_err(db)?;
    store::insert_hold(
        tx,
        &Hold {
            order_id,
            customer_id: e.customer_id,
            points: e.points,
            status: HoldStatus::Held,
            earned: None,
        },
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// A cancelled order's points are available again.
async fn released(
    tx: &mut PgConnection,
    e: PointsReleased,
    ctx: &FactContext,
) -> Result<(), HandlerError> {
    let order_id = e.order_id;
    let what = format!("restoring the points release of order {order_id}");
    let db = |err| HandlerError::database(&what, err);
    ctx.restore_compensation(tx, &order_id.to_string(), BRANCH, &what)
        .await?;
    let hold = store::lock_hold(tx, order_id)
        .await
        .map_err(db)?
        .ok_or_else(|| broken(&what, "no hold (its reservation is missing)"))?;
    if hold.status == HoldStatus::Released {
        return Ok(());
    }
    let next = hold
        .status
        .apply(Transition::Release)
        .map_err(|err| broken(&what, err))?;
    let account = store::lock_account(tx, hold.customer_id)
        .await
        .map_err(db)?;
    let account = account
        .release(hold.points)
        .map_err(|err| broken(&what, err))?;
    store::set_account(tx, hold.customer_id, account)
        .await
        .map_err(db)?;
    store::set_hold(tx, order_id, next, None).await.map_err(db)
}

/// A confirmed order's points are spent and what it earned is available. The OrderConfirmed
/// handler passes no barrier, so neither does this.
async fn earned(tx: &mut PgConnection, e: PointsEarned) -> Result<(), HandlerError> {
    let order_id = e.order_id;
    let what = format!("restoring the points earned by order {order_id}");
    let db = |err| HandlerError::database(&what, err);
    let hold = store::lock_hold(tx, order_id).await.map_err(db)?;
    match &hold {
        Some(h) if h.status == HoldStatus::Spent => return Ok(()),
        Some(h) => {
            h.status
                .apply(Transition::Spend)
                .map_err(|err| broken(&what, err))?;
        }
        None => {}
    }
    let account = store::lock_account(tx, e.customer_id).await.map_err(db)?;
    let account = account
        .spend_and_earn(e.spent, e.earned)
        .map_err(|err| broken(&what, err))?;
    store::set_account(tx, e.customer_id, account)
        .await
        .map_err(db)?;
    if hold.is_some() {
        store::set_hold(tx, order_id, HoldStatus::Spent, Some(e.earned))
            .await
            .map_err(db)
    } else {
        store::insert_hold(
            tx,
            &Hold {
                order_id,
                customer_id: e.customer_id,
                points: e.spent,
                status: HoldStatus::Spent,
                earned: Some(e.earned),
            },
        )
        .await
        .map_err(db)
        .map(|_| ())
    }
}

//! VoucherReserved → PointsReserved (0 points when the order spends none) or PointsRejected.
//!
//! The barrier's forward record makes the hold happen at most once per order, and makes a
//! VoucherReserved that arrives after the order was cancelled (a hanging step) hold nothing.

use super::BRANCH;
use crate::domain::{self, HoldStatus};
use crate::store::{self, Hold};
use jetsaga_contracts::events::points::{PointsRejected, PointsReserved};
use jetsaga_contracts::events::voucher::VoucherReserved;
use jetsaga_contracts::{Points, PointsEvent};
use saga_kit::barrier::{self, Gate};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: VoucherReserved,
    ctx: &EventContext,
) -> Result<Vec<PointsEvent>, HandlerError> {
    let order_id = event.order_id;
    match barrier::forward(tx, &order_id.to_string(), BRANCH, ctx.event_id).await? {
        Gate::Proceed => {}
        gate => {
            // Hanging: the order was cancelled before it reached us. Duplicate: already done.
            tracing::info!(%order_id, ?gate, "VoucherReserved not applied");
            return Ok(vec![]);
        }
    }
    let points = domain::points_to_hold(event.points, event.total, event.discount);
    if points > Points::ZERO {
        let account = store::lock_existing_account(tx, event.customer_id)
            .await?
            .unwrap_or_default();
        match account.hold(points) {
            Ok(next) => {
                store::set_account(tx, event.customer_id, next).await?;
                store::insert_hold(
                    tx,
                    &Hold {
                        order_id,
                        customer_id: event.customer_id,
                        points,
                        status: HoldStatus::Held,
                        earned: None,
                    },
                )
                .await?;
            }
            Err(reason) => {
                tracing::info!(%order_id, customer_id = %event.customer_id, %points,
                    available = %account.available, "points rejected");
                return Ok(vec![PointsEvent::PointsRejected(PointsRejected {
                    order_id,
                    customer_id: event.customer_id,
                    requested: points,
                    reason,
                })]);
            }
        }
    }
    Ok(vec![PointsEvent::PointsReserved(PointsReserved {
        order_id,
        customer_id: event.customer_id,
        voucher_code: event.voucher_code,
        lines: event.lines,
        total: event.total,
        discount: event.discount,
        points,
    })])
}

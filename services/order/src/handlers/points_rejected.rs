//! PointsRejected: the customer has too few points, so the order is cancelled (`points_rejected`).

use super::cancel;
use jetsaga_contracts::events::points::PointsRejected;
use jetsaga_contracts::{CancelReason, OrderEvent};
use saga_kit::{EventContext, HandlerError};
use sqlx::PgConnection;

pub async fn handle(
    tx: &mut PgConnection,
    event: PointsRejected,
    _ctx: &EventContext,
) -> Result<Vec<OrderEvent>, HandlerError> {
    cancel(tx, event.order_id, CancelReason::PointsRejected).await
}

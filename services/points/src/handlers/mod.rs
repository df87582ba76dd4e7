//! One file per event the points service reacts to. Each takes the consumer's transaction and the
//! typed event and returns the events to emit; the kit writes them to the outbox.

pub mod order_cancelled;
pub mod order_confirmed;
pub mod voucher_reserved;

use jetsaga_contracts::{OrderId, PointsError};

/// This service's branch of every saga in the barrier (`kit_barrier.branch`).
pub const BRANCH: &str = "points";

/// Why a points step changed nothing for an order: what was found instead.
#[derive(Debug, thiserror::Error)]
pub enum Unchanged {
    #[error("the order holds no points")]
    NoHold,
    #[error(transparent)]
    Status(#[from] crate::domain::InvalidTransition),
}

/// A stored account that cannot take a change its hold says it must (a corrupted database).
pub(crate) fn broken(order_id: OrderId, e: PointsError) -> saga_kit::HandlerError {
    saga_kit::HandlerError::permanent(format!(
        "points of order {order_id}: the account cannot take the change: {e}"
    ))
}

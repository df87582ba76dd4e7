//! The deadline sweep: every interval, cancel the pending orders whose deadline has passed, with
//! reason `timeout`. A step that is still running then finds the order cancelled and is
//! compensated like any other.
//!
//! The sweep is a step ([`sweep_once`]) with a thin loop around it ([`run`]). Several instances
//! may sweep at once: `FOR UPDATE SKIP LOCKED` gives each order to one of them, and the
//! cancellation's event id is derived from the order id, so even a repeated cancellation would be
//! the same event.

use crate::metrics::sagas_ended;
use crate::store;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::{CancelReason, OrderEvent, OrderId};
use saga_kit::envelope::keyed_event_id;
use saga_kit::Metrics;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Orders cancelled per transaction.
pub const BATCH: usize = 100;

/// The event id of the timeout cancellation of `order_id`.
pub fn timeout_event_id(order_id: OrderId) -> jetsaga_contracts::EventId {
    keyed_event_id("order-timeout", &order_id.to_string())
}

/// Cancels up to [`BATCH`] overdue orders in one transaction and returns how many.
pub async fn sweep_once(pool: &PgPool, metrics: &Metrics) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let overdue = store::lock_overdue(&mut tx, BATCH).await?;
    let mut events = Vec::with_capacity(overdue.len());
    for order_id in overdue {
        store::cancel(&mut tx, order_id, CancelReason::Timeout).await?;
        let event = OrderEvent::OrderCancelled(OrderCancelled {
            order_id,
            reason: CancelReason::Timeout,
        });
        saga_kit::outbox::emit_root(&mut tx, timeout_event_id(order_id), &event).await?;
        tracing::info!(%order_id, "order passed its deadline; cancelled");
        events.push(event);
    }
    tx.commit().await?;
    sagas_ended(metrics, &events);
    Ok(events.len())
}

/// Sweeps every `interval` until `shutdown`. A full batch is followed at once by the next one.
pub async fn run(
    pool: PgPool,
    metrics: std::sync::Arc<Metrics>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let pause = match sweep_once(&pool, &metrics).await {
            Ok(n) if n >= BATCH => Duration::ZERO,
            Ok(_) => interval,
            Err(e) => {
                tracing::warn!(error = %e, "deadline sweep failed; retrying at the next interval");
                interval
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

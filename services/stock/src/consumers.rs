//! The stock service's inputs: one durable consumer per input stream, and its [`Handler`], which
//! only dispatches each event to its file in [`crate::handlers`] and counts the outcomes.

use crate::handlers;
use jetsaga_contracts::{OrderEvent, PaymentEvent, StockEvent};
use saga_kit::{EventContext, Handler, HandlerError, Metrics};
use sqlx::PgConnection;

/// Durable consumer of `payments.succeeded.*`.
///
/// Renaming re-delivers the whole stream and changes every id derived from it.
pub const ON_PAYMENTS: &str = "stock-on-payments";
/// The subjects [`ON_PAYMENTS`] reads.
pub const ON_PAYMENTS_FILTER: &[&str] = &["payments.succeeded.*"];

/// Durable consumer of `orders.cancelled.*`.
///
/// Renaming re-delivers the whole stream and changes every id derived from it.
pub const ON_ORDERS: &str = "stock-on-orders";
/// The subjects [`ON_ORDERS`] reads.
pub const ON_ORDERS_FILTER: &[&str] = &["orders.cancelled.*"];

/// The business outcome counter: `outcome` is `reserved`, `failed` or `released`.
pub const STOCK_TOTAL: &str = "jetsaga_stock_total";

/// Counts what a committed transaction decided.
fn count(metrics: &Metrics, events: &[StockEvent]) {
    for event in events {
        let outcome = match event {
            StockEvent::StockReserved(_) => "reserved",
            StockEvent::StockFailed(_) => "failed",
            StockEvent::StockReleased(_) => "released",
            StockEvent::StockAdjusted(_) => continue,
        };
        metrics.inc(STOCK_TOTAL, &[("outcome", outcome)]);
    }
}

/// Reacts to the payment service: a paid order gets its stock held.
#[derive(Debug, Clone)]
pub struct OnPayments;

impl Handler for OnPayments {
    type Input = PaymentEvent;
    type Output = StockEvent;

    fn committed(&self, emitted: &[StockEvent], metrics: &Metrics) {
        count(metrics, emitted);
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: PaymentEvent,
        ctx: &EventContext,
    ) -> Result<Vec<StockEvent>, HandlerError> {
        let events = match event {
            PaymentEvent::PaymentSucceeded(e) => {
                handlers::payment_succeeded::handle(tx, e, ctx).await?
            }
            PaymentEvent::AccountCredited(_)
            | PaymentEvent::PaymentFailed(_)
            | PaymentEvent::PaymentRefunded(_) => vec![],
        };
        Ok(events)
    }
}

/// Reacts to the order service: a cancelled order gets its stock back.
#[derive(Debug, Clone)]
pub struct OnOrders;

impl Handler for OnOrders {
    type Input = OrderEvent;
    type Output = StockEvent;

    /// OrderCancelled undoes this service's step (through the barrier).
    fn compensates(&self, event: &OrderEvent) -> bool {
        matches!(event, OrderEvent::OrderCancelled(_))
    }

    fn committed(&self, emitted: &[StockEvent], metrics: &Metrics) {
        count(metrics, emitted);
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: OrderEvent,
        ctx: &EventContext,
    ) -> Result<Vec<StockEvent>, HandlerError> {
        let events = match event {
            OrderEvent::OrderCancelled(e) => handlers::order_cancelled::handle(tx, e, ctx).await?,
            OrderEvent::OrderCreated(_)
            | OrderEvent::OrderConfirmed(_)
            | OrderEvent::ProductPriced(_) => vec![],
        };
        Ok(events)
    }
}

/// Declares this service's consumers once, for whoever runs them: the service (durable consumers)
/// or `jetsaga replay` (the same handlers over the same subjects).
pub fn wire(wiring: &mut impl saga_kit::replay::Wiring) {
    wiring.consumer(ON_PAYMENTS, ON_PAYMENTS_FILTER, OnPayments);
    wiring.consumer(ON_ORDERS, ON_ORDERS_FILTER, OnOrders);
}

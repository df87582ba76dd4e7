//! The stock service's inputs, declared once: which event goes to which file in
//! [`crate::handlers`], on which durable consumer. Filters, dispatch and ignored events follow.

use crate::handlers;
use jetsaga_contracts::{OrderEvent, PaymentEvent, StockEvent};
use saga_kit::Metrics;

/// Counts what a committed transaction decided.
fn count(metrics: &Metrics, events: &[StockEvent]) {
    for event in events {
        let outcome = match event {
            StockEvent::StockReserved(_) => "reserved",
            StockEvent::StockFailed(_) => "failed",
            StockEvent::StockReleased(_) => "released",
            StockEvent::StockAdjusted(_) => continue,
        };
        crate::metrics::count(metrics, outcome);
    }
}

saga_kit::routes! {
    emits StockEvent, committed count;
    /// Reacts to the payment service: a paid order gets its stock held.
    consumer OnPayments("stock-on-payments"): PaymentEvent {
        PaymentSucceeded => step handlers::payment_succeeded::handle,
    }
    /// Reacts to the order service: a cancelled order gets its stock back.
    consumer OnOrders("stock-on-orders"): OrderEvent {
        OrderCancelled => compensation handlers::order_cancelled::handle,
    }
}

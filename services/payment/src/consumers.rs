//! The payment service's inputs, declared once: which event goes to which file in
//! [`crate::handlers`], on which durable consumer. Filters, dispatch and ignored events follow.

use crate::handlers;
use jetsaga_contracts::{OrderEvent, PaymentEvent, PointsEvent};
use saga_kit::Metrics;

fn count_outcomes(metrics: &Metrics, events: &[PaymentEvent]) {
    for event in events {
        let outcome = match event {
            PaymentEvent::PaymentSucceeded(_) => "succeeded",
            PaymentEvent::PaymentFailed(_) => "failed",
            PaymentEvent::PaymentRefunded(_) => "refunded",
            PaymentEvent::AccountCredited(_) => continue,
        };
        crate::metrics::count(metrics, outcome);
    }
}

saga_kit::routes! {
    emits PaymentEvent, committed count_outcomes;
    /// PointsReserved → charge what the voucher and the points leave to pay.
    consumer OnPoints("payment-on-points"): PointsEvent {
        PointsReserved => step handlers::points_reserved::handle,
    }
    /// OrderCancelled → refund.
    consumer OnOrders("payment-on-orders"): OrderEvent {
        OrderCancelled => compensation handlers::order_cancelled::handle,
    }
}

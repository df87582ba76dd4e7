//! The order service's inputs, declared once: which event goes to which function in
//! [`crate::handlers`], on which durable consumer. Filters, dispatch and ignored events follow.

use crate::handlers;
use jetsaga_contracts::{OrderEvent, PaymentEvent, PointsEvent, StockEvent, VoucherEvent};
use saga_kit::Metrics;

/// Counts the sagas ended by the events a committed transaction emitted.
pub(crate) fn count_outcomes(metrics: &Metrics, events: &[OrderEvent]) {
    for event in events {
        match event {
            OrderEvent::OrderConfirmed(_) => {
                metrics.inc("jetsaga_sagas_total", &[("outcome", "confirmed")]);
            }
            OrderEvent::OrderCancelled(c) => metrics.inc(
                "jetsaga_sagas_total",
                &[("outcome", "cancelled"), ("reason", c.reason.as_str())],
            ),
            OrderEvent::OrderCreated(_) | OrderEvent::ProductPriced(_) => {}
        }
    }
}

saga_kit::routes! {
    emits OrderEvent, committed count_outcomes;
    /// Reacts to a rejected voucher (a reserved one goes on to the points step).
    consumer OnVouchers("order-on-vouchers"): VoucherEvent {
        VoucherRejected => step handlers::voucher_rejected::handle,
    }
    /// Reacts to the points step, which carries the voucher's discount on.
    consumer OnPoints("order-on-points"): PointsEvent {
        PointsReserved => step handlers::points_reserved::handle,
        PointsRejected => step handlers::points_rejected::handle,
    }
    /// Reacts to the payment step.
    consumer OnPayments("order-on-payments"): PaymentEvent {
        PaymentFailed => step handlers::payment_failed::handle,
    }
    /// Reacts to the stock step.
    consumer OnStock("order-on-stock"): StockEvent {
        StockReserved => step handlers::stock_reserved::handle,
        StockFailed => step handlers::stock_failed::handle,
    }
}

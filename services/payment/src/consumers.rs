//! The durable consumers of the payment service and their handlers, which only dispatch each input
//! variant to its handler in `handlers/` and count the business outcome.

use crate::handlers;
use jetsaga_contracts::{OrderEvent, PaymentEvent, VoucherEvent};
use saga_kit::{EventContext, Handler, HandlerError, Metrics};
use sqlx::PgConnection;

/// VoucherReserved → charge. Renaming re-delivers the whole stream and changes every id derived
/// from it.
pub const ON_VOUCHERS: &str = "payment-on-vouchers";
/// The subjects [`ON_VOUCHERS`] receives.
pub const ON_VOUCHERS_FILTER: &[&str] = &["vouchers.reserved.*"];

/// OrderCancelled → refund. Renaming re-delivers the whole stream and changes every id derived
/// from it.
pub const ON_ORDERS: &str = "payment-on-orders";
/// The subjects [`ON_ORDERS`] receives.
pub const ON_ORDERS_FILTER: &[&str] = &["orders.cancelled.*"];

/// The business outcome counter: `jetsaga_payments_total{outcome="succeeded|failed|refunded"}`.
pub const PAYMENTS_TOTAL: &str = "jetsaga_payments_total";

fn count_outcomes(metrics: &Metrics, events: &[PaymentEvent]) {
    for event in events {
        let outcome = match event {
            PaymentEvent::PaymentSucceeded(_) => "succeeded",
            PaymentEvent::PaymentFailed(_) => "failed",
            PaymentEvent::PaymentRefunded(_) => "refunded",
            PaymentEvent::AccountCredited(_) => continue,
        };
        metrics.inc(PAYMENTS_TOTAL, &[("outcome", outcome)]);
    }
}

/// The handler of [`ON_VOUCHERS`].
#[derive(Debug, Clone)]
pub struct OnVouchers;

impl Handler for OnVouchers {
    type Input = VoucherEvent;
    type Output = PaymentEvent;

    fn committed(&self, emitted: &[PaymentEvent], metrics: &Metrics) {
        count_outcomes(metrics, emitted);
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: VoucherEvent,
        ctx: &EventContext,
    ) -> Result<Vec<PaymentEvent>, HandlerError> {
        let events = match event {
            VoucherEvent::VoucherReserved(e) => {
                handlers::voucher_reserved::handle(tx, e, ctx).await?
            }
            _ => vec![],
        };
        Ok(events)
    }
}

/// The handler of [`ON_ORDERS`].
#[derive(Debug, Clone)]
pub struct OnOrders;

impl Handler for OnOrders {
    type Input = OrderEvent;
    type Output = PaymentEvent;

    /// OrderCancelled undoes this service's step (through the barrier).
    fn compensates(&self, event: &OrderEvent) -> bool {
        matches!(event, OrderEvent::OrderCancelled(_))
    }

    fn committed(&self, emitted: &[PaymentEvent], metrics: &Metrics) {
        count_outcomes(metrics, emitted);
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: OrderEvent,
        ctx: &EventContext,
    ) -> Result<Vec<PaymentEvent>, HandlerError> {
        let events = match event {
            OrderEvent::OrderCancelled(e) => handlers::order_cancelled::handle(tx, e, ctx).await?,
            _ => vec![],
        };
        Ok(events)
    }
}

/// Declares this service's consumers once, for whoever runs them: the service (durable consumers)
/// or `jetsaga replay` (the same handlers over the same subjects).
pub fn wire(wiring: &mut impl saga_kit::replay::Wiring) {
    wiring.consumer(ON_VOUCHERS, ON_VOUCHERS_FILTER, OnVouchers);
    wiring.consumer(ON_ORDERS, ON_ORDERS_FILTER, OnOrders);
}

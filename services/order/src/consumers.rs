//! The order service's durable consumers, one per input stream, and their [`Handler`]s. A handler
//! here only dispatches each event to its function in [`crate::handlers`] and counts the outcome.

use crate::handlers;
use jetsaga_contracts::{OrderEvent, PaymentEvent, StockEvent, VoucherEvent};
use saga_kit::{EventContext, Handler, HandlerError, Metrics};
use sqlx::PgConnection;

/// Durable consumer of the VOUCHERS stream. Renaming re-delivers the whole stream and changes every
/// id derived from it.
pub const ON_VOUCHERS: &str = "order-on-vouchers";
/// The VOUCHERS subjects the order service reacts to.
pub const ON_VOUCHERS_SUBJECTS: &[&str] = &["vouchers.reserved.*", "vouchers.rejected.*"];

/// Durable consumer of the PAYMENTS stream. Renaming re-delivers the whole stream and changes every
/// id derived from it.
pub const ON_PAYMENTS: &str = "order-on-payments";
/// The PAYMENTS subjects the order service reacts to.
pub const ON_PAYMENTS_SUBJECTS: &[&str] = &["payments.failed.*"];

/// Durable consumer of the STOCK stream. Renaming re-delivers the whole stream and changes every id
/// derived from it.
pub const ON_STOCK: &str = "order-on-stock";
/// The STOCK subjects the order service reacts to.
pub const ON_STOCK_SUBJECTS: &[&str] = &["stock.reserved.*", "stock.failed.*"];

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

/// Reacts to the voucher step.
#[derive(Debug, Clone)]
pub struct OnVouchers;

impl Handler for OnVouchers {
    type Input = VoucherEvent;
    type Output = OrderEvent;

    fn committed(&self, emitted: &[OrderEvent], metrics: &Metrics) {
        count_outcomes(metrics, emitted);
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: VoucherEvent,
        ctx: &EventContext,
    ) -> Result<Vec<OrderEvent>, HandlerError> {
        let out = match event {
            VoucherEvent::VoucherReserved(e) => {
                handlers::voucher_reserved::handle(tx, e, ctx).await
            }
            VoucherEvent::VoucherRejected(e) => {
                handlers::voucher_rejected::handle(tx, e, ctx).await
            }
            // Outside the consumer's filter; nothing of ours depends on them.
            VoucherEvent::VoucherIssued(_)
            | VoucherEvent::VoucherReleased(_)
            | VoucherEvent::VoucherRedeemed(_) => Ok(vec![]),
        }?;
        Ok(out)
    }
}

/// Reacts to the payment step.
#[derive(Debug, Clone)]
pub struct OnPayments;

impl Handler for OnPayments {
    type Input = PaymentEvent;
    type Output = OrderEvent;

    fn committed(&self, emitted: &[OrderEvent], metrics: &Metrics) {
        count_outcomes(metrics, emitted);
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: PaymentEvent,
        ctx: &EventContext,
    ) -> Result<Vec<OrderEvent>, HandlerError> {
        let out = match event {
            PaymentEvent::PaymentFailed(e) => handlers::payment_failed::handle(tx, e, ctx).await,
            // Outside the consumer's filter; nothing of ours depends on them.
            PaymentEvent::AccountCredited(_)
            | PaymentEvent::PaymentSucceeded(_)
            | PaymentEvent::PaymentRefunded(_) => Ok(vec![]),
        }?;
        Ok(out)
    }
}

/// Reacts to the stock step.
#[derive(Debug, Clone)]
pub struct OnStock;

impl Handler for OnStock {
    type Input = StockEvent;
    type Output = OrderEvent;

    fn committed(&self, emitted: &[OrderEvent], metrics: &Metrics) {
        count_outcomes(metrics, emitted);
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: StockEvent,
        ctx: &EventContext,
    ) -> Result<Vec<OrderEvent>, HandlerError> {
        let out = match event {
            StockEvent::StockReserved(e) => handlers::stock_reserved::handle(tx, e, ctx).await,
            StockEvent::StockFailed(e) => handlers::stock_failed::handle(tx, e, ctx).await,
            // Outside the consumer's filter; nothing of ours depends on them.
            StockEvent::StockAdjusted(_) | StockEvent::StockReleased(_) => Ok(vec![]),
        }?;
        Ok(out)
    }
}

/// Declares this service's consumers once, for whoever runs them: the service (durable consumers)
/// or `jetsaga replay` (the same handlers over the same subjects).
pub fn wire(wiring: &mut impl saga_kit::replay::Wiring) {
    wiring.consumer(ON_VOUCHERS, ON_VOUCHERS_SUBJECTS, OnVouchers);
    wiring.consumer(ON_PAYMENTS, ON_PAYMENTS_SUBJECTS, OnPayments);
    wiring.consumer(ON_STOCK, ON_STOCK_SUBJECTS, OnStock);
}

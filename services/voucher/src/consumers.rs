//! The durable consumers of the voucher service and the [`Handler`]s that dispatch each input
//! event to its handler in [`crate::handlers`].

use crate::handlers::{order_cancelled, order_confirmed, order_created};
use jetsaga_contracts::{OrderEvent, VoucherEvent};
use saga_kit::{EventContext, Handler, HandlerError, Metrics};
use sqlx::PgConnection;

/// The voucher service's consumer of the ORDERS stream.
///
/// Renaming re-delivers the whole stream and changes every id derived from it.
pub const ON_ORDERS: &str = "voucher-on-orders";

/// The order events [`ON_ORDERS`] receives.
pub const ON_ORDERS_FILTERS: &[&str] = &[
    "orders.created.*",
    "orders.cancelled.*",
    "orders.confirmed.*",
];

/// Business outcomes, by `outcome`: reserved, rejected, released, redeemed.
pub const VOUCHERS_TOTAL: &str = "jetsaga_vouchers_total";

/// Reacts to order events: reserves, releases and redeems vouchers.
#[derive(Debug, Clone)]
pub struct OnOrders;

impl Handler for OnOrders {
    type Input = OrderEvent;
    type Output = VoucherEvent;

    /// OrderCancelled undoes this service's step (through the barrier).
    fn compensates(&self, event: &OrderEvent) -> bool {
        matches!(event, OrderEvent::OrderCancelled(_))
    }

    fn committed(&self, emitted: &[VoucherEvent], metrics: &Metrics) {
        for outcome in emitted.iter().filter_map(outcome) {
            metrics.inc(VOUCHERS_TOTAL, &[("outcome", outcome)]);
        }
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: OrderEvent,
        ctx: &EventContext,
    ) -> Result<Vec<VoucherEvent>, HandlerError> {
        let emitted = match event {
            OrderEvent::OrderCreated(e) => order_created::handle(tx, e, ctx).await?,
            OrderEvent::OrderCancelled(e) => order_cancelled::handle(tx, e, ctx).await?,
            OrderEvent::OrderConfirmed(e) => order_confirmed::handle(tx, e, ctx).await?,
            // Not in our filters; a price is none of our business.
            OrderEvent::ProductPriced(_) => vec![],
        };
        Ok(emitted)
    }
}

/// The `outcome` label of an emitted event.
fn outcome(event: &VoucherEvent) -> Option<&'static str> {
    match event {
        VoucherEvent::VoucherReserved(_) => Some("reserved"),
        VoucherEvent::VoucherRejected(_) => Some("rejected"),
        VoucherEvent::VoucherReleased(_) => Some("released"),
        VoucherEvent::VoucherRedeemed(_) => Some("redeemed"),
        VoucherEvent::VoucherIssued(_) => None,
    }
}

/// Declares this service's consumers once, for whoever runs them: the service (durable consumers)
/// or `jetsaga replay` (the same handlers over the same subjects).
pub fn wire(wiring: &mut impl saga_kit::replay::Wiring) {
    wiring.consumer(ON_ORDERS, ON_ORDERS_FILTERS, OnOrders);
}

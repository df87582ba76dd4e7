//! The voucher service's inputs, declared once: which event goes to which file in
//! [`crate::handlers`], on which durable consumer. Filters, dispatch and ignored events follow.

use crate::handlers::{order_cancelled, order_confirmed, order_created};
use jetsaga_contracts::{OrderEvent, VoucherEvent};
use saga_kit::Metrics;

fn count(metrics: &Metrics, emitted: &[VoucherEvent]) {
    for outcome in emitted.iter().filter_map(outcome) {
        crate::metrics::count(metrics, outcome);
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

saga_kit::routes! {
    emits VoucherEvent, committed count;
    /// Reacts to order events: reserves, releases and redeems vouchers.
    consumer OnOrders("voucher-on-orders"): OrderEvent {
        OrderCreated => step order_created::handle,
        OrderCancelled => compensation order_cancelled::handle,
        OrderConfirmed => step order_confirmed::handle,
    }
}

//! The points service's inputs, declared once: which event goes to which file in
//! [`crate::handlers`], on which durable consumer. Filters, dispatch and ignored events follow.

use crate::handlers::{order_cancelled, order_confirmed, voucher_reserved};
use jetsaga_contracts::{OrderEvent, PointsEvent, VoucherEvent};
use saga_kit::Metrics;

fn count(metrics: &Metrics, emitted: &[PointsEvent]) {
    for outcome in emitted.iter().filter_map(outcome) {
        crate::metrics::count(metrics, outcome);
    }
}

/// The `outcome` label of an emitted event.
fn outcome(event: &PointsEvent) -> Option<&'static str> {
    match event {
        PointsEvent::PointsReserved(_) => Some("reserved"),
        PointsEvent::PointsRejected(_) => Some("rejected"),
        PointsEvent::PointsReleased(_) => Some("released"),
        PointsEvent::PointsEarned(_) => Some("earned"),
        PointsEvent::PointsAwarded(_) => None,
    }
}

saga_kit::routes! {
    emits PointsEvent, committed count;
    /// VoucherReserved → hold the points the order spends.
    consumer OnVouchers("points-on-vouchers"): VoucherEvent {
        VoucherReserved => step voucher_reserved::handle,
    }
    /// OrderCancelled → give the points back; OrderConfirmed → spend them and award what was earned.
    consumer OnOrders("points-on-orders"): OrderEvent {
        OrderCancelled => compensation order_cancelled::handle,
        OrderConfirmed => step order_confirmed::handle,
    }
}

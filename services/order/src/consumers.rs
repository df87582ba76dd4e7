//! The order service's inputs, declared once: which event goes to which function in
//! [`crate::handlers`], on which durable consumer. Filters, dispatch and ignored events follow.

use crate::handlers;
use jetsaga_contracts::{OrderEvent, PaymentEvent, PointsEvent, StockEvent, VoucherEvent};

saga_kit::routes! {
    emits OrderEvent, committed crate::metrics::sagas_ended;
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

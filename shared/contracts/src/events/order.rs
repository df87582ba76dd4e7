//! Events of the order service, on the ORDERS stream (`orders.>`).

use super::{keyed_by_order, OrderLine};
use crate::event_set::Keyed;
use crate::{event_set, Actor, CustomerId, Money, OrderId, Points, Sku, VoucherCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Why an order was cancelled. The wire names are part of the external contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    VoucherRejected,
    PointsRejected,
    PaymentFailed,
    StockFailed,
    Timeout,
}

impl CancelReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            CancelReason::VoucherRejected => "voucher_rejected",
            CancelReason::PointsRejected => "points_rejected",
            CancelReason::PaymentFailed => "payment_failed",
            CancelReason::StockFailed => "stock_failed",
            CancelReason::Timeout => "timeout",
        }
    }
}

/// A customer placed an order; the saga starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCreated {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub lines: Vec<OrderLine>,
    /// The sum of the lines, before any discount.
    pub total: Money,
    pub voucher_code: Option<VoucherCode>,
    /// The loyalty points the customer asked to spend on the order. Absent from the JSON when none
    /// were asked, and from events written before points existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<Points>,
    /// The order is cancelled with reason `timeout` if its saga has not finished by then.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub deadline: OffsetDateTime,
    /// The client's `Idempotency-Key`, when it sent one, so the order service rebuilds the key's
    /// record from its own stream (the request hash is computed from the fields above). Absent
    /// from the JSON when there is none, and from events written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Every step succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderConfirmed {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub total: Money,
    pub discount: Money,
    pub voucher_code: Option<VoucherCode>,
    /// The points spent on the order (charged = total - discount - points_spent). Absent from the
    /// JSON when none were spent, and from events written before points existed.
    #[serde(default, skip_serializing_if = "Points::is_zero")]
    pub points_spent: Points,
}

/// The saga failed or timed out; participants compensate what they did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelled {
    pub order_id: OrderId,
    pub reason: CancelReason,
}

/// `jetsaga.orders.cancelled.v2`: OrderCancelled with the words a person reads beside the reason.
/// Consumers accept it beside `.v1` (the detail is for people; no participant decides on it), so
/// producers can move to it; the order service still emits `.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelledV2 {
    pub order_id: OrderId,
    pub reason: CancelReason,
    pub detail: String,
}

impl From<OrderCancelledV2> for OrderCancelled {
    fn from(v2: OrderCancelledV2) -> Self {
        OrderCancelled {
            order_id: v2.order_id,
            reason: v2.reason,
        }
    }
}

/// An operator set a product's name and price (admin change, keyed by SKU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPriced {
    pub sku: Sku,
    pub name: String,
    pub price: Money,
    /// The operator who made the change; `anonymous` when admin routes were open, and in events
    /// written before changes carried one.
    #[serde(default = "Actor::anonymous")]
    pub actor: Actor,
}

keyed_by_order!(OrderCreated, OrderConfirmed, OrderCancelled);

impl Keyed for ProductPriced {
    fn key(&self) -> String {
        self.sku.to_string()
    }
}

event_set! {
    /// Everything the order service says.
    pub enum OrderEvent {
        service: "order", stream: "ORDERS", domain: "orders";
        OrderCreated(OrderCreated) = "created",
        OrderConfirmed(OrderConfirmed) = "confirmed",
        OrderCancelled(OrderCancelled) = "cancelled" also "v2" => OrderCancelledV2,
        ProductPriced(ProductPriced) = "product_priced",
    }
}

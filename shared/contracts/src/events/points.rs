//! Events of the points service, on the POINTS stream (`points.>`).

use super::{keyed_by_order, OrderLine};
use crate::event_set::Keyed;
use crate::{event_set, Actor, CustomerId, Money, OrderId, Points, VoucherCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why points could not be spent on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointsRejectReason {
    /// The customer's available points are fewer than the order spends.
    InsufficientPoints,
}

/// An operator awarded points to a customer (admin change, keyed by customer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsAwarded {
    pub award_id: uuid::Uuid,
    pub customer_id: CustomerId,
    pub points: Points,
    /// The operator who made the change; `anonymous` when admin routes were open.
    #[serde(default = "Actor::anonymous")]
    pub actor: Actor,
}

/// The points step passed: `points` (0 when the order spends none) are held for the order. It
/// carries the order and the voucher's discount on, so payment charges
/// `total - discount - points` without asking anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsReserved {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub voucher_code: Option<VoucherCode>,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub discount: Money,
    pub points: Points,
}

impl PointsReserved {
    /// What is left to charge: the total minus the discount minus the points spent.
    pub fn amount_due(&self) -> Money {
        self.total
            .saturating_sub(self.discount)
            .saturating_sub(self.points.as_money())
    }
}

/// The customer has fewer points than the order spends; nothing is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsRejected {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub requested: Points,
    pub reason: PointsRejectReason,
}

/// Compensation: the points held for a cancelled order are available again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsReleased {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub points: Points,
}

/// The order was confirmed: the points it held are spent, and the customer earned one point per
/// full 1.00 charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsEarned {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub spent: Points,
    pub earned: Points,
}

keyed_by_order!(PointsReserved, PointsRejected, PointsReleased, PointsEarned);

impl Keyed for PointsAwarded {
    fn key(&self) -> String {
        self.customer_id.to_string()
    }
}

event_set! {
    /// Everything the points service says.
    pub enum PointsEvent {
        service: "points", stream: "POINTS", domain: "points";
        PointsAwarded(PointsAwarded) = "awarded",
        PointsReserved(PointsReserved) = "reserved",
        PointsRejected(PointsRejected) = "rejected",
        PointsReleased(PointsReleased) = "released",
        PointsEarned(PointsEarned) = "earned",
    }
}

//! Events of the voucher service, on the VOUCHERS stream (`vouchers.>`).

use super::{keyed_by_order, OrderLine};
use crate::event_set::Keyed;
use crate::{event_set, Actor, CustomerId, Money, OrderId, Points, VoucherCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Why a voucher could not be used for an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    Unknown,
    Expired,
    NotOwner,
    AlreadyUsed,
}

/// An operator issued a voucher (admin change, keyed by code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherIssued {
    pub code: VoucherCode,
    pub customer_id: CustomerId,
    pub discount: Money,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub expires_at: Option<OffsetDateTime>,
    /// The operator who made the change; `anonymous` when admin routes were open, and in events
    /// written before changes carried one.
    #[serde(default = "Actor::anonymous")]
    pub actor: Actor,
}

/// The voucher step passed: either a voucher is now held for the order, or the order has none and
/// the discount is zero. It carries the order on, with the points it asks to spend, so the points
/// step decides without asking anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherReserved {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub voucher_code: Option<VoucherCode>,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub discount: Money,
    /// The points the order asks to spend (from OrderCreated). Absent from the JSON when none were
    /// asked, and from events written before points existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<Points>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherRejected {
    pub order_id: OrderId,
    pub voucher_code: VoucherCode,
    pub reason: RejectReason,
}

/// Compensation: the voucher held for a cancelled order is available again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherReleased {
    pub order_id: OrderId,
    pub voucher_code: VoucherCode,
}

/// The order was confirmed; its voucher is used up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherRedeemed {
    pub order_id: OrderId,
    pub voucher_code: VoucherCode,
}

keyed_by_order!(
    VoucherReserved,
    VoucherRejected,
    VoucherReleased,
    VoucherRedeemed
);

impl Keyed for VoucherIssued {
    fn key(&self) -> String {
        self.code.to_string()
    }
}

event_set! {
    /// Everything the voucher service says.
    pub enum VoucherEvent {
        service: "voucher", stream: "VOUCHERS", domain: "vouchers";
        VoucherIssued(VoucherIssued) = "issued",
        VoucherReserved(VoucherReserved) = "reserved",
        VoucherRejected(VoucherRejected) = "rejected",
        VoucherReleased(VoucherReleased) = "released",
        VoucherRedeemed(VoucherRedeemed) = "redeemed",
    }
}

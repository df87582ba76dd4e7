//! What the reconciler finds: a [`Difference`] has a [`Kind`], the service whose record differs,
//! the entity it is about, a sentence for a person, and the [`RepairAction`] that fixes it, if an
//! ordinary compensating event can.

use jetsaga_contracts::{CustomerId, OrderId, Producer};
use serde::Serialize;
use std::fmt;
use uuid::Uuid;

/// The kinds of difference, as the issue names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One service has a record the other side lacks: a participant's record of an order the
    /// order service does not know, or a confirmed order without its charge, reservation or
    /// redemption.
    Missing,
    /// Both sides have the record but the amounts differ: a charge that is not total − discount,
    /// a reservation that is not the line's quantity, a settlement amount that is not ours.
    AmountMismatch,
    /// The statuses contradict each other: a cancelled order still charged, holding stock or a
    /// voucher; a confirmed order refunded or its voucher not redeemed.
    StatusMismatch,
    /// An order still PENDING after its deadline plus the slack.
    Stuck,
    /// A service's own books do not balance: credits ≠ balances + captured, stock added ≠
    /// available + held, or points awarded + earned ≠ available + held + spent.
    Conservation,
    /// In the provider's settlement file, not charged in our ledger.
    MissingOurs,
    /// Charged in our ledger on the business date, not in the provider's settlement file.
    MissingTheirs,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::AmountMismatch => "amount_mismatch",
            Kind::StatusMismatch => "status_mismatch",
            Kind::Stuck => "stuck",
            Kind::Conservation => "conservation",
            Kind::MissingOurs => "missing_ours",
            Kind::MissingTheirs => "missing_theirs",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a difference is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    Order(OrderId),
    Customer(CustomerId),
    Sku(String),
    Payment(Uuid),
}

impl Entity {
    /// `order`, `customer`, `sku` or `payment`.
    pub const fn type_name(&self) -> &'static str {
        match self {
            Entity::Order(_) => "order",
            Entity::Customer(_) => "customer",
            Entity::Sku(_) => "sku",
            Entity::Payment(_) => "payment",
        }
    }

    pub fn id(&self) -> String {
        match self {
            Entity::Order(id) => id.to_string(),
            Entity::Customer(id) => id.to_string(),
            Entity::Sku(sku) => sku.clone(),
            Entity::Payment(id) => id.to_string(),
        }
    }

    pub const fn order_id(&self) -> Option<OrderId> {
        match self {
            Entity::Order(id) => Some(*id),
            _ => None,
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.type_name(), self.id())
    }
}

/// A fix by an ordinary event of the owning service, written to its outbox in the transaction that
/// makes the change (see `services/<service>/src/repair.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairAction {
    /// The order service cancels an overdue order with reason `timeout` (OrderCancelled); the
    /// participants then compensate as for any cancellation.
    CancelOverdue,
    /// The payment service refunds a cancelled order's charge (PaymentRefunded).
    Refund,
    /// The stock service releases what a cancelled order holds (StockReleased).
    ReleaseStock,
    /// The voucher service releases the voucher a cancelled order holds (VoucherReleased).
    ReleaseVoucher,
    /// The voucher service redeems the voucher a confirmed order only holds (VoucherRedeemed).
    RedeemVoucher,
    /// The points service gives back the points a cancelled order holds (PointsReleased).
    ReleasePoints,
    /// The points service spends what a confirmed order holds and awards what it earned
    /// (PointsEarned).
    EarnPoints,
}

impl RepairAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            RepairAction::CancelOverdue => "cancel_overdue",
            RepairAction::Refund => "refund",
            RepairAction::ReleaseStock => "release_stock",
            RepairAction::ReleaseVoucher => "release_voucher",
            RepairAction::RedeemVoucher => "redeem_voucher",
            RepairAction::ReleasePoints => "release_points",
            RepairAction::EarnPoints => "earn_points",
        }
    }

    /// The service that makes the change and emits the event.
    pub const fn service(self) -> Producer {
        match self {
            RepairAction::CancelOverdue => Producer::ORDER,
            RepairAction::Refund => Producer::PAYMENT,
            RepairAction::ReleaseStock => Producer::STOCK,
            RepairAction::ReleaseVoucher | RepairAction::RedeemVoucher => Producer::VOUCHER,
            RepairAction::ReleasePoints | RepairAction::EarnPoints => Producer::POINTS,
        }
    }

    /// What the repair does, for a person.
    pub const fn describe(self) -> &'static str {
        match self {
            RepairAction::CancelOverdue => "order cancels it, timeout (OrderCancelled)",
            RepairAction::Refund => "payment refunds (PaymentRefunded)",
            RepairAction::ReleaseStock => "stock releases (StockReleased)",
            RepairAction::ReleaseVoucher => "voucher releases (VoucherReleased)",
            RepairAction::RedeemVoucher => "voucher redeems (VoucherRedeemed)",
            RepairAction::ReleasePoints => "points releases (PointsReleased)",
            RepairAction::EarnPoints => "points spends and awards (PointsEarned)",
        }
    }
}

/// One difference between the services' records and the invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub kind: Kind,
    /// The service whose record differs; for a repairable difference, the one that repairs it.
    pub service: Producer,
    pub entity: Entity,
    /// What was found, in a sentence.
    pub detail: String,
    /// `None`: no ordinary event fixes it; it needs a person.
    pub repair: Option<RepairAction>,
}

impl Difference {
    /// A difference only a person can resolve.
    pub fn for_person(kind: Kind, service: Producer, entity: Entity, detail: String) -> Self {
        Difference {
            kind,
            service,
            entity,
            detail,
            repair: None,
        }
    }

    /// A difference the owning service repairs with `action`.
    pub fn repairable(kind: Kind, entity: Entity, detail: String, action: RepairAction) -> Self {
        Difference {
            kind,
            service: action.service(),
            entity,
            detail,
            repair: Some(action),
        }
    }

    pub fn needs_person(&self) -> bool {
        self.repair.is_none()
    }
}

//! The reconciler's rules, pure: given what the five services hold about one order (or one
//! account, one SKU), which differences are there, and which of them an ordinary event repairs.
//! [`super::check`] reads the rows; this file only decides.
//!
//! The saga is asynchronous, so a difference is only a difference once the saga had its time:
//! - a PENDING order is running, unless it is past its deadline plus the slack (then it is stuck);
//! - a terminal order changed less than the settle time ago is settling: its compensations (or
//!   its voucher's redemption) may still be on their way, and it is judged on a later run.

use super::difference::{Difference, Entity, Kind, RepairAction};
use crate::output::cents;
use jetsaga_contracts::{CustomerId, OrderId, Producer};
use order_service::domain::OrderStatus;
use payment_service::domain::PaymentStatus;
use points_service::domain::HoldStatus;
use std::collections::BTreeMap;
use stock_service::domain::ReservationStatus;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use voucher_service::domain::VoucherStatus;

/// An order as the order service stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    pub total_cents: i64,
    /// `None` until the voucher step's discount was recorded.
    pub discount_cents: Option<i64>,
    pub voucher_code: Option<String>,
    /// `None` until the points step's answer was recorded.
    pub points_spent: Option<i64>,
    pub deadline: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What the points service did with an order's points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsRow {
    pub points: i64,
    pub status: HoldStatus,
    /// What the confirmation awarded (SPENT only).
    pub earned: Option<i64>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRow {
    pub sku: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// One row of the payment ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    pub order_id: OrderId,
    pub payment_id: Uuid,
    pub customer_id: CustomerId,
    pub amount_cents: i64,
    pub status: PaymentStatus,
    pub created_at: OffsetDateTime,
}

/// One order's hold on one SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRow {
    pub order_id: OrderId,
    pub sku: String,
    pub quantity: i64,
    pub status: ReservationStatus,
}

/// One voucher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherRow {
    pub code: String,
    pub discount_cents: i64,
    pub status: VoucherStatus,
    /// The order holding (RESERVED) or having used (REDEEMED) it.
    pub order_id: Option<OrderId>,
}

/// Everything the five services hold about one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFacts {
    pub order: OrderRow,
    pub lines: Vec<LineRow>,
    pub payment: Option<PaymentRow>,
    pub reservations: Vec<ReservationRow>,
    /// The vouchers held by this order, and the one it names (whoever holds it).
    pub vouchers: Vec<VoucherRow>,
    /// The order's points, if the points service recorded anything for it.
    pub points: Option<PointsRow>,
}

/// The reconciler's sense of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Now, by the order database's clock.
    pub now: OffsetDateTime,
    /// How long after its deadline a PENDING order counts as stuck.
    pub slack: Duration,
    /// How long after its last change a terminal order is left to its in-flight events.
    pub settle: Duration,
}

/// What became of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// PENDING within its deadline plus the slack: its saga is running.
    Running,
    /// Terminal, but changed less than the settle time ago.
    Settling,
    /// Judged: these differences (none when consistent).
    Judged(Vec<Difference>),
}

/// Judges one order against the invariants.
pub fn judge_order(facts: &OrderFacts, clock: &Clock) -> Verdict {
    let order = &facts.order;
    match order.status {
        OrderStatus::Pending if clock.now > order.deadline + clock.slack => {
            Verdict::Judged(vec![Difference::repairable(
                Kind::Stuck,
                Entity::Order(order.order_id),
                format!(
                    "order is PENDING {} s past its deadline ({} s slack)",
                    (clock.now - order.deadline).whole_seconds(),
                    clock.slack.whole_seconds()
                ),
                RepairAction::CancelOverdue,
            )])
        }
        OrderStatus::Pending => Verdict::Running,
        _ if clock.now - order.updated_at < clock.settle => Verdict::Settling,
        OrderStatus::Confirmed => Verdict::Judged(confirmed(facts)),
        OrderStatus::Cancelled => Verdict::Judged(cancelled(facts)),
    }
}

fn order_entity(facts: &OrderFacts) -> Entity {
    Entity::Order(facts.order.order_id)
}

/// The order's own books: its total is the sum of its lines.
fn total(facts: &OrderFacts, out: &mut Vec<Difference>) {
    let lines: i64 = facts
        .lines
        .iter()
        .map(|l| l.quantity.saturating_mul(l.unit_price_cents))
        .fold(0i64, i64::saturating_add);
    if lines != facts.order.total_cents {
        out.push(Difference::for_person(
            Kind::AmountMismatch,
            Producer::ORDER,
            order_entity(facts),
            format!(
                "order total {}, its lines add up to {}",
                cents(facts.order.total_cents),
                cents(lines)
            ),
        ));
    }
}

/// Quantity per SKU over the order's lines.
fn line_quantities(facts: &OrderFacts) -> BTreeMap<&str, i64> {
    let mut quantities = BTreeMap::new();
    for line in &facts.lines {
        *quantities.entry(line.sku.as_str()).or_default() += line.quantity;
    }
    quantities
}

/// CONFIRMED: charged exactly total − discount, each line reserved once, the voucher redeemed.
fn confirmed(facts: &OrderFacts) -> Vec<Difference> {
    let order = &facts.order;
    let entity = order_entity(facts);
    let mut out = Vec::new();
    total(facts, &mut out);

    match &facts.payment {
        None => out.push(Difference::for_person(
            Kind::Missing,
            Producer::PAYMENT,
            entity.clone(),
            "order is CONFIRMED but payment has no charge for it".into(),
        )),
        Some(p) if p.status == PaymentStatus::Charged => {
            if let Some(discount) = order.discount_cents {
                let points = order.points_spent.unwrap_or(0);
                let expected = order.total_cents - discount - points;
                if p.amount_cents != expected {
                    out.push(Difference::for_person(
                        Kind::AmountMismatch,
                        Producer::PAYMENT,
                        entity.clone(),
                        format!(
                            "charged {}, but total {} − discount {}{} is {}",
                            cents(p.amount_cents),
                            cents(order.total_cents),
                            cents(discount),
                            if points > 0 {
                                format!(" − points {}", cents(points))
                            } else {
                                String::new()
                            },
                            cents(expected)
                        ),
                    ));
                }
            }
        }
        Some(p) => out.push(Difference::for_person(
            Kind::StatusMismatch,
            Producer::PAYMENT,
            entity.clone(),
            format!(
                "order is CONFIRMED but its payment is {} ({})",
                p.status.as_str(),
                cents(p.amount_cents)
            ),
        )),
    }

    let lines = line_quantities(facts);
    for (sku, quantity) in &lines {
        match facts.reservations.iter().find(|r| r.sku == *sku) {
            None => out.push(Difference::for_person(
                Kind::Missing,
                Producer::STOCK,
                entity.clone(),
                format!("order is CONFIRMED but sku {sku} ×{quantity} is not reserved"),
            )),
            Some(r) if r.status == ReservationStatus::Released => {
                out.push(Difference::for_person(
                    Kind::StatusMismatch,
                    Producer::STOCK,
                    entity.clone(),
                    format!("order is CONFIRMED but its reservation of sku {sku} ×{quantity} is RELEASED"),
                ));
            }
            Some(r) if r.quantity != *quantity => out.push(Difference::for_person(
                Kind::AmountMismatch,
                Producer::STOCK,
                entity.clone(),
                format!(
                    "sku {sku}: ×{} reserved, the order line has ×{quantity}",
                    r.quantity
                ),
            )),
            Some(_) => {}
        }
    }
    for r in &facts.reservations {
        if !lines.contains_key(r.sku.as_str()) {
            out.push(Difference::for_person(
                Kind::AmountMismatch,
                Producer::STOCK,
                entity.clone(),
                format!(
                    "sku {} ×{} is reserved ({}) but the order has no such line",
                    r.sku,
                    r.quantity,
                    r.status.as_str()
                ),
            ));
        }
    }

    confirmed_voucher(facts, &mut out);
    confirmed_points(facts, &mut out);
    out
}

/// CONFIRMED: the points spent were deducted once, and one point per full 1.00 charged was
/// earned once.
fn confirmed_points(facts: &OrderFacts, out: &mut Vec<Difference>) {
    let order = &facts.order;
    let entity = order_entity(facts);
    let spent = order.points_spent.unwrap_or(0);
    let Some(row) = &facts.points else {
        out.push(Difference::repairable(
            Kind::Missing,
            entity,
            format!("order is CONFIRMED but points has not spent its {spent} points nor awarded what it earned"),
            RepairAction::EarnPoints,
        ));
        return;
    };
    match row.status {
        HoldStatus::Held => out.push(Difference::repairable(
            Kind::StatusMismatch,
            entity,
            format!(
                "order is CONFIRMED but its {} points are only HELD, not spent",
                row.points
            ),
            RepairAction::EarnPoints,
        )),
        HoldStatus::Released => out.push(Difference::for_person(
            Kind::StatusMismatch,
            Producer::POINTS,
            entity,
            format!(
                "order is CONFIRMED but its {} points were RELEASED",
                row.points
            ),
        )),
        HoldStatus::Spent => {
            let charged = order.total_cents - order.discount_cents.unwrap_or(0) - spent;
            let expected = charged.max(0) / 100;
            if row.points != spent || row.earned != Some(expected) {
                out.push(Difference::for_person(
                    Kind::AmountMismatch,
                    Producer::POINTS,
                    entity,
                    format!(
                        "points spent {} and earned {}, the order says {spent} spent and {} charged \
                         earn {expected}",
                        row.points,
                        row.earned.unwrap_or(0),
                        cents(charged)
                    ),
                ));
            }
        }
    }
}

fn held_vouchers(facts: &OrderFacts) -> impl Iterator<Item = &VoucherRow> {
    let order_id = facts.order.order_id;
    facts
        .vouchers
        .iter()
        .filter(move |v| v.order_id == Some(order_id))
}

fn confirmed_voucher(facts: &OrderFacts, out: &mut Vec<Difference>) {
    let order = &facts.order;
    let entity = order_entity(facts);
    let named = order.voucher_code.as_deref();
    for v in held_vouchers(facts) {
        if Some(v.code.as_str()) != named {
            out.push(Difference::for_person(
                Kind::StatusMismatch,
                Producer::VOUCHER,
                entity.clone(),
                format!(
                    "voucher {} is {} by this order, which names {}",
                    v.code,
                    v.status,
                    named.map_or_else(|| "no voucher".to_owned(), |c| format!("voucher {c}"))
                ),
            ));
        }
    }
    let Some(code) = named else {
        return;
    };
    let held = held_vouchers(facts).find(|v| v.code == code);
    match held {
        Some(v) if v.status == VoucherStatus::Reserved => out.push(Difference::repairable(
            Kind::StatusMismatch,
            entity.clone(),
            format!("order is CONFIRMED but voucher {code} is only RESERVED, not redeemed"),
            RepairAction::RedeemVoucher,
        )),
        Some(_) => {}
        None => {
            let found = match facts.vouchers.iter().find(|v| v.code == code) {
                None => "it does not exist".to_owned(),
                Some(v) => match v.order_id {
                    Some(other) => format!("it is {} by order {other}", v.status),
                    None => format!("it is {}", v.status),
                },
            };
            out.push(Difference::for_person(
                Kind::Missing,
                Producer::VOUCHER,
                entity.clone(),
                format!("order is CONFIRMED with voucher {code}, but {found}"),
            ));
        }
    }
    if let Some(v) = held {
        let expected = v.discount_cents.min(order.total_cents);
        if order.discount_cents != Some(expected) {
            out.push(Difference::for_person(
                Kind::AmountMismatch,
                Producer::ORDER,
                entity,
                format!(
                    "order discount {}, voucher {code} gives {}",
                    order.discount_cents.map_or_else(|| "unknown".into(), cents),
                    cents(expected)
                ),
            ));
        }
    }
}

/// CANCELLED: net charge 0, no stock held, the voucher available again, no points held or spent.
fn cancelled(facts: &OrderFacts) -> Vec<Difference> {
    let entity = order_entity(facts);
    let mut out = Vec::new();
    total(facts, &mut out);

    if let Some(p) = &facts.payment {
        if p.status == PaymentStatus::Charged {
            out.push(Difference::repairable(
                Kind::StatusMismatch,
                entity.clone(),
                format!(
                    "order is CANCELLED but its payment is CHARGED ({})",
                    cents(p.amount_cents)
                ),
                RepairAction::Refund,
            ));
        }
    }

    let held: Vec<String> = facts
        .reservations
        .iter()
        .filter(|r| r.status == ReservationStatus::Held)
        .map(|r| format!("sku {} ×{}", r.sku, r.quantity))
        .collect();
    if !held.is_empty() {
        out.push(Difference::repairable(
            Kind::StatusMismatch,
            entity.clone(),
            format!("order is CANCELLED but still holds {}", held.join(", ")),
            RepairAction::ReleaseStock,
        ));
    }

    for v in held_vouchers(facts) {
        match v.status {
            VoucherStatus::Reserved => out.push(Difference::repairable(
                Kind::StatusMismatch,
                entity.clone(),
                format!(
                    "order is CANCELLED but still holds voucher {} (RESERVED)",
                    v.code
                ),
                RepairAction::ReleaseVoucher,
            )),
            VoucherStatus::Redeemed => out.push(Difference::for_person(
                Kind::StatusMismatch,
                Producer::VOUCHER,
                entity.clone(),
                format!(
                    "order is CANCELLED but voucher {} is REDEEMED by it",
                    v.code
                ),
            )),
            // A voucher with a holder is never AVAILABLE (a CHECK constraint).
            VoucherStatus::Available => {}
        }
    }

    match &facts.points {
        Some(p) if p.status == HoldStatus::Held => out.push(Difference::repairable(
            Kind::StatusMismatch,
            entity.clone(),
            format!("order is CANCELLED but still holds {} points", p.points),
            RepairAction::ReleasePoints,
        )),
        Some(p) if p.status == HoldStatus::Spent => out.push(Difference::for_person(
            Kind::StatusMismatch,
            Producer::POINTS,
            entity.clone(),
            format!(
                "order is CANCELLED but its {} points were spent and {} earned",
                p.points,
                p.earned.unwrap_or(0)
            ),
        )),
        _ => {}
    }
    out
}

/// Conservation of one customer's points: awarded + earned = available + held + spent.
pub fn points_difference(
    customer: CustomerId,
    awarded: i64,
    earned: i64,
    available: i64,
    held: i64,
    spent: i64,
) -> Option<Difference> {
    let income = awarded.saturating_add(earned);
    let books = available.saturating_add(held).saturating_add(spent);
    (income != books).then(|| {
        Difference::for_person(
            Kind::Conservation,
            Producer::POINTS,
            Entity::Customer(customer),
            format!(
                "points awarded {awarded} + earned {earned} ≠ available {available} + held {held} \
                 + spent {spent}"
            ),
        )
    })
}

/// A payment of an order the order service does not know.
pub fn orphan_payment(p: &PaymentRow) -> Difference {
    Difference::for_person(
        Kind::Missing,
        Producer::PAYMENT,
        Entity::Order(p.order_id),
        format!(
            "payment {} is {} ({}) for an order the order service does not know",
            p.payment_id,
            p.status.as_str(),
            cents(p.amount_cents)
        ),
    )
}

/// Reservations of an order the order service does not know.
pub fn orphan_reservations(order_id: OrderId, rows: &[ReservationRow]) -> Difference {
    let list: Vec<String> = rows
        .iter()
        .map(|r| format!("sku {} ×{} {}", r.sku, r.quantity, r.status.as_str()))
        .collect();
    Difference::for_person(
        Kind::Missing,
        Producer::STOCK,
        Entity::Order(order_id),
        format!(
            "stock has {} for an order the order service does not know",
            list.join(", ")
        ),
    )
}

/// A voucher held or used by an order the order service does not know.
pub fn orphan_voucher(v: &VoucherRow) -> Option<Difference> {
    let order_id = v.order_id?;
    Some(Difference::for_person(
        Kind::Missing,
        Producer::VOUCHER,
        Entity::Order(order_id),
        format!(
            "voucher {} is {} by an order the order service does not know",
            v.code, v.status
        ),
    ))
}

/// Conservation of one account: money credited = balance + net captured (CHARGED payments).
pub fn account_difference(
    customer: CustomerId,
    credited: i64,
    balance: i64,
    charged: i64,
) -> Option<Difference> {
    let books = balance.saturating_add(charged);
    (credited != books).then(|| {
        Difference::for_person(
            Kind::Conservation,
            Producer::PAYMENT,
            Entity::Customer(customer),
            format!(
                "credited {} ≠ balance {} + charged {} (off by {})",
                cents(credited),
                cents(balance),
                cents(charged),
                cents(books.saturating_sub(credited))
            ),
        )
    })
}

/// Conservation of one SKU: units added = available + reserved, and reserved = what the HELD
/// reservations hold.
pub fn sku_difference(
    sku: &str,
    added: i64,
    available: i64,
    reserved: i64,
    held: i64,
) -> Option<Difference> {
    let mut problems = Vec::new();
    if added != available.saturating_add(reserved) {
        problems.push(format!(
            "added {added} ≠ available {available} + reserved {reserved}"
        ));
    }
    if reserved != held {
        problems.push(format!("reserved {reserved} ≠ {held} held by reservations"));
    }
    (!problems.is_empty()).then(|| {
        Difference::for_person(
            Kind::Conservation,
            Producer::STOCK,
            Entity::Sku(sku.to_owned()),
            problems.join("; "),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: OffsetDateTime = time::macros::datetime!(2026-03-01 12:00 UTC);

    fn clock(now: OffsetDateTime) -> Clock {
        Clock {
            now,
            slack: Duration::seconds(30),
            settle: Duration::seconds(10),
        }
    }

    /// A confirmed order of 2 × 5.00 with a 1.00 voucher, and everything as it should be.
    fn consistent(with_voucher: bool) -> OrderFacts {
        let order_id = OrderId::new_random();
        let customer_id = CustomerId::new_random();
        OrderFacts {
            order: OrderRow {
                order_id,
                customer_id,
                status: OrderStatus::Confirmed,
                total_cents: 1000,
                discount_cents: Some(if with_voucher { 100 } else { 0 }),
                voucher_code: with_voucher.then(|| "TEN".to_owned()),
                points_spent: Some(0),
                deadline: T0 + Duration::seconds(30),
                updated_at: T0,
            },
            lines: vec![LineRow {
                sku: "MUG".into(),
                quantity: 2,
                unit_price_cents: 500,
            }],
            payment: Some(PaymentRow {
                order_id,
                payment_id: Uuid::new_v4(),
                customer_id,
                amount_cents: if with_voucher { 900 } else { 1000 },
                status: PaymentStatus::Charged,
                created_at: T0,
            }),
            reservations: vec![ReservationRow {
                order_id,
                sku: "MUG".into(),
                quantity: 2,
                status: ReservationStatus::Held,
            }],
            vouchers: if with_voucher {
                vec![VoucherRow {
                    code: "TEN".into(),
                    discount_cents: 100,
                    status: VoucherStatus::Redeemed,
                    order_id: Some(order_id),
                }]
            } else {
                vec![]
            },
            points: Some(PointsRow {
                points: 0,
                status: HoldStatus::Spent,
                earned: Some(if with_voucher { 9 } else { 10 }),
            }),
        }
    }

    /// The same order, cancelled and fully compensated.
    fn compensated() -> OrderFacts {
        let mut f = consistent(true);
        f.order.status = OrderStatus::Cancelled;
        f.payment.as_mut().unwrap().status = PaymentStatus::Refunded;
        f.reservations[0].status = ReservationStatus::Released;
        f.vouchers[0].status = VoucherStatus::Available;
        f.vouchers[0].order_id = None;
        f.points = None;
        f
    }

    fn judged(f: &OrderFacts) -> Vec<Difference> {
        match judge_order(f, &clock(T0 + Duration::minutes(5))) {
            Verdict::Judged(d) => d,
            other => panic!("expected a judgement, got {other:?}"),
        }
    }

    fn kinds(d: &[Difference]) -> Vec<(Kind, Producer, Option<RepairAction>)> {
        d.iter().map(|d| (d.kind, d.service, d.repair)).collect()
    }

    #[test]
    fn consistent_orders_have_no_differences() {
        assert_eq!(judged(&consistent(true)), vec![]);
        assert_eq!(judged(&consistent(false)), vec![]);
        assert_eq!(judged(&compensated()), vec![]);
    }

    #[test]
    fn a_pending_order_runs_until_its_deadline_plus_slack_then_is_stuck() {
        let mut f = consistent(false);
        f.order.status = OrderStatus::Pending;
        let deadline = f.order.deadline;
        assert_eq!(
            judge_order(&f, &clock(deadline + Duration::seconds(30))),
            Verdict::Running
        );
        let Verdict::Judged(d) = judge_order(&f, &clock(deadline + Duration::seconds(31))) else {
            panic!("not judged");
        };
        assert_eq!(
            kinds(&d),
            [(
                Kind::Stuck,
                Producer::ORDER,
                Some(RepairAction::CancelOverdue)
            )]
        );
    }

    #[test]
    fn a_recently_ended_order_is_left_to_settle() {
        let mut f = compensated();
        f.payment.as_mut().unwrap().status = PaymentStatus::Charged;
        assert_eq!(
            judge_order(&f, &clock(T0 + Duration::seconds(9))),
            Verdict::Settling
        );
        assert_eq!(judged(&f).len(), 1);
    }

    #[test]
    fn a_cancelled_order_still_charged_holding_stock_and_voucher_is_repaired_by_each_owner() {
        let mut f = compensated();
        f.payment.as_mut().unwrap().status = PaymentStatus::Charged;
        f.reservations[0].status = ReservationStatus::Held;
        f.vouchers[0].status = VoucherStatus::Reserved;
        f.vouchers[0].order_id = Some(f.order.order_id);
        assert_eq!(
            kinds(&judged(&f)),
            [
                (
                    Kind::StatusMismatch,
                    Producer::PAYMENT,
                    Some(RepairAction::Refund)
                ),
                (
                    Kind::StatusMismatch,
                    Producer::STOCK,
                    Some(RepairAction::ReleaseStock)
                ),
                (
                    Kind::StatusMismatch,
                    Producer::VOUCHER,
                    Some(RepairAction::ReleaseVoucher)
                ),
            ]
        );
    }

    #[test]
    fn a_cancelled_order_whose_voucher_was_redeemed_needs_a_person() {
        let mut f = compensated();
        f.vouchers[0].status = VoucherStatus::Redeemed;
        f.vouchers[0].order_id = Some(f.order.order_id);
        assert_eq!(
            kinds(&judged(&f)),
            [(Kind::StatusMismatch, Producer::VOUCHER, None)]
        );
    }

    #[test]
    fn a_confirmed_order_whose_voucher_is_only_reserved_is_redeemed_by_repair() {
        let mut f = consistent(true);
        f.vouchers[0].status = VoucherStatus::Reserved;
        assert_eq!(
            kinds(&judged(&f)),
            [(
                Kind::StatusMismatch,
                Producer::VOUCHER,
                Some(RepairAction::RedeemVoucher)
            )]
        );
    }

    #[test]
    fn a_confirmed_order_missing_its_charge_reservation_or_voucher_needs_a_person() {
        let mut f = consistent(true);
        f.payment = None;
        f.reservations.clear();
        f.vouchers[0].status = VoucherStatus::Available;
        f.vouchers[0].order_id = None;
        let d = judged(&f);
        assert_eq!(
            kinds(&d),
            [
                (Kind::Missing, Producer::PAYMENT, None),
                (Kind::Missing, Producer::STOCK, None),
                (Kind::Missing, Producer::VOUCHER, None),
            ]
        );
        assert!(d[2].detail.contains("it is AVAILABLE"), "{}", d[2].detail);
    }

    #[test]
    fn wrong_amounts_and_quantities_are_amount_mismatches() {
        let mut f = consistent(true);
        f.payment.as_mut().unwrap().amount_cents = 1000;
        f.reservations[0].quantity = 3;
        f.reservations.push(ReservationRow {
            order_id: f.order.order_id,
            sku: "LAMP".into(),
            quantity: 1,
            status: ReservationStatus::Held,
        });
        f.order.discount_cents = Some(50);
        let d = judged(&f);
        assert_eq!(
            kinds(&d),
            [
                (Kind::AmountMismatch, Producer::PAYMENT, None),
                (Kind::AmountMismatch, Producer::STOCK, None),
                (Kind::AmountMismatch, Producer::STOCK, None),
                (Kind::AmountMismatch, Producer::ORDER, None),
            ]
        );
        assert_eq!(
            d[0].detail,
            "charged 10.00, but total 10.00 − discount 0.50 is 9.50"
        );
    }

    #[test]
    fn a_confirmed_order_refunded_or_released_needs_a_person() {
        let mut f = consistent(false);
        f.payment.as_mut().unwrap().status = PaymentStatus::Refunded;
        f.reservations[0].status = ReservationStatus::Released;
        assert_eq!(
            kinds(&judged(&f)),
            [
                (Kind::StatusMismatch, Producer::PAYMENT, None),
                (Kind::StatusMismatch, Producer::STOCK, None),
            ]
        );
    }

    #[test]
    fn a_total_that_is_not_the_sum_of_the_lines_is_an_order_amount_mismatch() {
        let mut f = compensated();
        f.order.total_cents = 999;
        assert_eq!(
            kinds(&judged(&f)),
            [(Kind::AmountMismatch, Producer::ORDER, None)]
        );
    }

    #[test]
    fn points_are_spent_and_earned_once_for_a_confirmed_order_and_given_back_for_a_cancelled_one() {
        // Paid 3.00 of 10.00 with points: charged 7.00, earned 7.
        let mut f = consistent(false);
        f.order.points_spent = Some(300);
        f.payment.as_mut().unwrap().amount_cents = 700;
        f.points = Some(PointsRow {
            points: 300,
            status: HoldStatus::Spent,
            earned: Some(7),
        });
        assert_eq!(judged(&f), vec![]);
        f.points.as_mut().unwrap().status = HoldStatus::Held;
        f.points.as_mut().unwrap().earned = None;
        assert_eq!(
            kinds(&judged(&f)),
            [(
                Kind::StatusMismatch,
                Producer::POINTS,
                Some(RepairAction::EarnPoints)
            )]
        );
        f.points = None;
        assert_eq!(
            kinds(&judged(&f)),
            [(
                Kind::Missing,
                Producer::POINTS,
                Some(RepairAction::EarnPoints)
            )]
        );
        f.points = Some(PointsRow {
            points: 300,
            status: HoldStatus::Spent,
            earned: Some(8),
        });
        assert_eq!(
            kinds(&judged(&f)),
            [(Kind::AmountMismatch, Producer::POINTS, None)]
        );

        let mut c = compensated();
        c.points = Some(PointsRow {
            points: 300,
            status: HoldStatus::Held,
            earned: None,
        });
        assert_eq!(
            kinds(&judged(&c)),
            [(
                Kind::StatusMismatch,
                Producer::POINTS,
                Some(RepairAction::ReleasePoints)
            )]
        );
        c.points.as_mut().unwrap().status = HoldStatus::Released;
        assert_eq!(judged(&c), vec![]);
    }

    #[test]
    fn books_that_do_not_balance_are_conservation_differences() {
        let c = CustomerId::new_random();
        assert_eq!(account_difference(c, 1000, 400, 600), None);
        let d = account_difference(c, 1000, 300, 600).unwrap();
        assert_eq!(
            (d.kind, d.service, d.repair),
            (Kind::Conservation, Producer::PAYMENT, None)
        );
        assert_eq!(
            d.detail,
            "credited 10.00 ≠ balance 3.00 + charged 6.00 (off by -1.00)"
        );
        assert_eq!(sku_difference("MUG", 10, 8, 2, 2), None);
        assert!(sku_difference("MUG", 10, 8, 2, 1).is_some());
        assert!(sku_difference("MUG", 10, 7, 2, 2).is_some());
        assert_eq!(points_difference(c, 500, 20, 100, 120, 300), None);
        let p = points_difference(c, 500, 20, 100, 120, 299).unwrap();
        assert_eq!(
            (p.kind, p.service, p.repair),
            (Kind::Conservation, Producer::POINTS, None)
        );
    }

    #[test]
    fn records_of_unknown_orders_are_missing_in_the_order_service() {
        let f = consistent(true);
        let p = orphan_payment(f.payment.as_ref().unwrap());
        assert_eq!((p.kind, p.service), (Kind::Missing, Producer::PAYMENT));
        assert!(p.detail.contains("CHARGED (9.00)"), "{}", p.detail);
        let s = orphan_reservations(f.order.order_id, &f.reservations);
        assert_eq!((s.kind, s.service), (Kind::Missing, Producer::STOCK));
        let v = orphan_voucher(&f.vouchers[0]).unwrap();
        assert_eq!((v.kind, v.service), (Kind::Missing, Producer::VOUCHER));
        assert!(p.needs_person() && s.needs_person() && v.needs_person());
    }
}

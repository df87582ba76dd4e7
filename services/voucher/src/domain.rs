//! The voucher rules, pure: no database, no clock of their own (the caller passes `now`).
//!
//! A voucher is stored as AVAILABLE, RESERVED or REDEEMED and only moves through [`VoucherStatus::apply`]:
//! reserve (AVAILABLE → RESERVED), release (RESERVED → AVAILABLE) and redeem (RESERVED → REDEEMED).
//! EXPIRED is never stored; [`visible_status`] derives it for an AVAILABLE voucher past its expiry.

use jetsaga_contracts::{CustomerId, Money, OrderId, RejectReason, VoucherCode};
use std::fmt;
use time::OffsetDateTime;

/// The stored status of a voucher (TEXT with a CHECK constraint in SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoucherStatus {
    /// Nobody holds it; it can be reserved unless it has expired.
    Available,
    /// An order holds it while its saga runs.
    Reserved,
    /// A confirmed order used it up. Final.
    Redeemed,
}

/// The stored text was not a known status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown voucher status {0:?}")]
pub struct UnknownStatus(pub String);

impl VoucherStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            VoucherStatus::Available => "AVAILABLE",
            VoucherStatus::Reserved => "RESERVED",
            VoucherStatus::Redeemed => "REDEEMED",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownStatus> {
        match s {
            "AVAILABLE" => Ok(VoucherStatus::Available),
            "RESERVED" => Ok(VoucherStatus::Reserved),
            "REDEEMED" => Ok(VoucherStatus::Redeemed),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }

    /// The status after `transition`, or an error when the transition is not allowed from here.
    ///
    /// This is the only way a status moves, so an old or repeated event can never move a voucher
    /// back (a release after a redemption, a second redemption).
    pub fn apply(self, transition: Transition) -> Result<VoucherStatus, InvalidTransition> {
        match (self, transition) {
            (VoucherStatus::Available, Transition::Reserve) => Ok(VoucherStatus::Reserved),
            (VoucherStatus::Reserved, Transition::Release) => Ok(VoucherStatus::Available),
            (VoucherStatus::Reserved, Transition::Redeem) => Ok(VoucherStatus::Redeemed),
            (from, transition) => Err(InvalidTransition { from, transition }),
        }
    }
}

impl fmt::Display for VoucherStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of a voucher's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// An order takes the voucher.
    Reserve,
    /// The order was cancelled; the voucher is free again.
    Release,
    /// The order was confirmed; the voucher is used up.
    Redeem,
}

/// A transition that is not allowed from the voucher's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {transition:?} a voucher that is {from}")]
pub struct InvalidTransition {
    pub from: VoucherStatus,
    pub transition: Transition,
}

/// The status a client sees: the stored one, plus EXPIRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VisibleStatus {
    Available,
    Reserved,
    Redeemed,
    Expired,
}

impl VisibleStatus {
    /// The wire name in `GET /vouchers/{code}`.
    pub const fn as_str(self) -> &'static str {
        match self {
            VisibleStatus::Available => "AVAILABLE",
            VisibleStatus::Reserved => "RESERVED",
            VisibleStatus::Redeemed => "REDEEMED",
            VisibleStatus::Expired => "EXPIRED",
        }
    }
}

/// Whether a voucher with this expiry has expired at `now`. The expiry instant itself counts as
/// expired, in the read model and in [`check_voucher`] alike.
pub fn is_expired(expires_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    expires_at.is_some_and(|at| at <= now)
}

/// The status shown at `now`. Only an AVAILABLE voucher expires: one that is held or used keeps
/// its status, because the order that holds it decided while it was still valid.
pub fn visible_status(
    stored: VoucherStatus,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> VisibleStatus {
    match stored {
        VoucherStatus::Available if is_expired(expires_at, now) => VisibleStatus::Expired,
        VoucherStatus::Available => VisibleStatus::Available,
        VoucherStatus::Reserved => VisibleStatus::Reserved,
        VoucherStatus::Redeemed => VisibleStatus::Redeemed,
    }
}

/// One voucher as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    pub code: VoucherCode,
    pub customer_id: CustomerId,
    /// Always more than zero (a CHECK constraint and the API both refuse less).
    pub discount: Money,
    pub expires_at: Option<OffsetDateTime>,
    pub status: VoucherStatus,
    /// The order holding (RESERVED) or having used (REDEEMED) it.
    pub order_id: Option<OrderId>,
}

/// Whether `customer` may use `voucher` at `now`, and if so its discount.
///
/// The reasons are checked in this order: missing → `Unknown`, someone else's → `NotOwner`,
/// expired → `Expired`, not AVAILABLE → `AlreadyUsed`.
pub fn check_voucher(
    voucher: Option<&Voucher>,
    customer: CustomerId,
    now: OffsetDateTime,
) -> Result<Money, RejectReason> {
    let voucher = voucher.ok_or(RejectReason::Unknown)?;
    if voucher.customer_id != customer {
        return Err(RejectReason::NotOwner);
    }
    if is_expired(voucher.expires_at, now) {
        return Err(RejectReason::Expired);
    }
    if voucher.status != VoucherStatus::Available {
        return Err(RejectReason::AlreadyUsed);
    }
    Ok(voucher.discount)
}

/// The discount applied to an order: the voucher's, but never more than the order's total.
pub fn applied_discount(voucher_discount: Money, order_total: Money) -> Money {
    voucher_discount.min(order_total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn cents(c: i64) -> Money {
        Money::from_cents(c).unwrap()
    }

    fn voucher(customer: CustomerId) -> Voucher {
        Voucher {
            code: VoucherCode::parse("WELCOME10").unwrap(),
            customer_id: customer,
            discount: cents(1000),
            expires_at: Some(datetime!(2026-04-01 00:00 UTC)),
            status: VoucherStatus::Available,
            order_id: None,
        }
    }

    #[test]
    fn statuses_round_trip_through_their_text() {
        for s in [
            VoucherStatus::Available,
            VoucherStatus::Reserved,
            VoucherStatus::Redeemed,
        ] {
            assert_eq!(VoucherStatus::parse(s.as_str()), Ok(s));
        }
        assert!(VoucherStatus::parse("EXPIRED").is_err());
        assert!(VoucherStatus::parse("available").is_err());
    }

    #[test]
    fn only_reserve_release_and_redeem_from_the_right_state_are_allowed() {
        use Transition::*;
        use VoucherStatus::*;
        assert_eq!(Available.apply(Reserve), Ok(Reserved));
        assert_eq!(Reserved.apply(Release), Ok(Available));
        assert_eq!(Reserved.apply(Redeem), Ok(Redeemed));
        for (from, t) in [
            (Available, Release),
            (Available, Redeem),
            (Reserved, Reserve),
            (Redeemed, Reserve),
            (Redeemed, Release),
            (Redeemed, Redeem),
        ] {
            assert_eq!(
                from.apply(t),
                Err(InvalidTransition {
                    from,
                    transition: t
                }),
                "{from} {t:?}"
            );
        }
    }

    #[test]
    fn an_available_voucher_past_its_expiry_shows_as_expired() {
        let past = Some(NOW - time::Duration::seconds(1));
        let future = Some(NOW + time::Duration::seconds(1));
        use VoucherStatus::*;
        assert_eq!(visible_status(Available, past, NOW), VisibleStatus::Expired);
        assert_eq!(
            visible_status(Available, Some(NOW), NOW),
            VisibleStatus::Expired
        );
        assert_eq!(
            visible_status(Available, future, NOW),
            VisibleStatus::Available
        );
        assert_eq!(
            visible_status(Available, None, NOW),
            VisibleStatus::Available
        );
        // A voucher held or used before it expired keeps its status.
        assert_eq!(visible_status(Reserved, past, NOW), VisibleStatus::Reserved);
        assert_eq!(visible_status(Redeemed, past, NOW), VisibleStatus::Redeemed);
        assert_eq!(VisibleStatus::Expired.as_str(), "EXPIRED");
    }

    #[test]
    fn the_owner_may_use_an_available_unexpired_voucher() {
        let me = CustomerId::new_random();
        assert_eq!(check_voucher(Some(&voucher(me)), me, NOW), Ok(cents(1000)));
        let no_expiry = Voucher {
            expires_at: None,
            ..voucher(me)
        };
        assert_eq!(check_voucher(Some(&no_expiry), me, NOW), Ok(cents(1000)));
    }

    #[test]
    fn each_rejection_reason_is_found_in_order() {
        let me = CustomerId::new_random();
        let other = CustomerId::new_random();
        assert_eq!(check_voucher(None, me, NOW), Err(RejectReason::Unknown));
        assert_eq!(
            check_voucher(Some(&voucher(other)), me, NOW),
            Err(RejectReason::NotOwner)
        );
        let expired = Voucher {
            expires_at: Some(NOW),
            ..voucher(me)
        };
        assert_eq!(
            check_voucher(Some(&expired), me, NOW),
            Err(RejectReason::Expired)
        );
        for status in [VoucherStatus::Reserved, VoucherStatus::Redeemed] {
            let used = Voucher {
                status,
                order_id: Some(OrderId::new_random()),
                ..voucher(me)
            };
            assert_eq!(
                check_voucher(Some(&used), me, NOW),
                Err(RejectReason::AlreadyUsed)
            );
        }
        // Someone else's expired, used voucher: ownership is told first.
        let theirs = Voucher {
            status: VoucherStatus::Redeemed,
            expires_at: Some(NOW),
            order_id: Some(OrderId::new_random()),
            ..voucher(other)
        };
        assert_eq!(
            check_voucher(Some(&theirs), me, NOW),
            Err(RejectReason::NotOwner)
        );
    }

    #[test]
    fn the_discount_never_exceeds_the_order_total() {
        assert_eq!(applied_discount(cents(1000), cents(2500)), cents(1000));
        assert_eq!(applied_discount(cents(1000), cents(400)), cents(400));
        assert_eq!(applied_discount(cents(1000), Money::ZERO), Money::ZERO);
    }
}

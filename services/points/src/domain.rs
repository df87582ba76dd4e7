//! The points rules, pure: no database.
//!
//! A customer's points are `available` (to spend) or `held` (by orders whose saga runs). An order's
//! hold only moves through [`HoldStatus::apply`]: HELD → RELEASED (cancelled) or HELD → SPENT
//! (confirmed). One point is worth one cent; a confirmed order earns one point per full 1.00
//! charged.

use jetsaga_contracts::{Money, Points, PointsError, PointsRejectReason};
use std::fmt;

/// The stored status of an order's hold (TEXT with a CHECK constraint in SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldStatus {
    /// The order's saga runs; its points are held.
    Held,
    /// The order was cancelled; its points are available again. Final.
    Released,
    /// The order was confirmed; its points are spent and what it earned is awarded. Final.
    Spent,
}

/// The stored text was not a known status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hold status {0:?}")]
pub struct UnknownStatus(pub String);

/// A change of a hold's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The order was cancelled.
    Release,
    /// The order was confirmed.
    Spend,
}

/// A transition that is not allowed from the hold's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {transition:?} points that are {from}")]
pub struct InvalidTransition {
    pub from: HoldStatus,
    pub transition: Transition,
}

impl HoldStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Held => "HELD",
            HoldStatus::Released => "RELEASED",
            HoldStatus::Spent => "SPENT",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownStatus> {
        match s {
            "HELD" => Ok(HoldStatus::Held),
            "RELEASED" => Ok(HoldStatus::Released),
            "SPENT" => Ok(HoldStatus::Spent),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }

    /// The status after `transition`; only a HELD hold moves, so a repeated or late event never
    /// moves a hold back (a release after a confirmation, a second confirmation).
    pub fn apply(self, transition: Transition) -> Result<HoldStatus, InvalidTransition> {
        match (self, transition) {
            (HoldStatus::Held, Transition::Release) => Ok(HoldStatus::Released),
            (HoldStatus::Held, Transition::Spend) => Ok(HoldStatus::Spent),
            (from, transition) => Err(InvalidTransition { from, transition }),
        }
    }
}

impl fmt::Display for HoldStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A customer's points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Account {
    pub available: Points,
    pub held: Points,
}

impl Account {
    /// Holds `points` for an order, or says why not.
    pub fn hold(self, points: Points) -> Result<Account, PointsRejectReason> {
        let available = self
            .available
            .checked_sub(points)
            .map_err(|_| PointsRejectReason::InsufficientPoints)?;
        let held = self
            .held
            .checked_add(points)
            .map_err(|_| PointsRejectReason::InsufficientPoints)?;
        Ok(Account { available, held })
    }

    /// A cancelled order's held points are available again.
    pub fn release(self, points: Points) -> Result<Account, PointsError> {
        Ok(Account {
            available: self.available.checked_add(points)?,
            held: self.held.checked_sub(points)?,
        })
    }

    /// A confirmed order's held points are spent, and what it earned is available.
    pub fn spend_and_earn(self, spent: Points, earned: Points) -> Result<Account, PointsError> {
        Ok(Account {
            available: self.available.checked_add(earned)?,
            held: self.held.checked_sub(spent)?,
        })
    }

    /// An operator's award.
    pub fn award(self, points: Points) -> Result<Account, PointsError> {
        Ok(Account {
            available: self.available.checked_add(points)?,
            held: self.held,
        })
    }
}

/// The points an order spends: what it asked, but never more than is left to pay after the
/// voucher's discount.
pub fn points_to_hold(requested: Option<Points>, total: Money, discount: Money) -> Points {
    let due = total.saturating_sub(discount).cents();
    let asked = requested.unwrap_or_default().get();
    Points::new(asked.min(due)).unwrap_or_default()
}

/// What a confirmed order earns: one point per full 1.00 charged.
pub fn earned_for(charged: Money) -> Points {
    Points::new(charged.cents() / 100).unwrap_or_default()
}

/// What a confirmed order was charged: the total minus the discount minus the points spent.
pub fn charged(total: Money, discount: Money, spent: Points) -> Money {
    total
        .saturating_sub(discount)
        .saturating_sub(spent.as_money())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i64) -> Points {
        Points::new(n).unwrap()
    }

    fn cents(c: i64) -> Money {
        Money::from_cents(c).unwrap()
    }

    #[test]
    fn statuses_round_trip_and_only_a_held_hold_moves() {
        use HoldStatus::*;
        use Transition::*;
        for s in [Held, Released, Spent] {
            assert_eq!(HoldStatus::parse(s.as_str()), Ok(s));
        }
        assert!(HoldStatus::parse("held").is_err());
        assert_eq!(Held.apply(Release), Ok(Released));
        assert_eq!(Held.apply(Spend), Ok(Spent));
        for (from, t) in [
            (Released, Release),
            (Released, Spend),
            (Spent, Release),
            (Spent, Spend),
        ] {
            assert_eq!(
                from.apply(t),
                Err(InvalidTransition {
                    from,
                    transition: t
                })
            );
        }
    }

    #[test]
    fn an_order_holds_at_most_what_is_left_to_pay() {
        assert_eq!(points_to_hold(None, cents(2500), cents(500)), p(0));
        assert_eq!(
            points_to_hold(Some(p(300)), cents(2500), cents(500)),
            p(300)
        );
        assert_eq!(
            points_to_hold(Some(p(5000)), cents(2500), cents(500)),
            p(2000)
        );
        assert_eq!(points_to_hold(Some(p(10)), cents(500), cents(500)), p(0));
    }

    #[test]
    fn a_hold_needs_enough_available_points() {
        let acc = Account {
            available: p(100),
            held: p(5),
        };
        assert_eq!(
            acc.hold(p(100)),
            Ok(Account {
                available: p(0),
                held: p(105)
            })
        );
        assert_eq!(
            acc.hold(p(101)),
            Err(PointsRejectReason::InsufficientPoints)
        );
        assert_eq!(Account::default().hold(p(0)), Ok(Account::default()));
    }

    #[test]
    fn release_spend_and_award_keep_the_sum() {
        let acc = Account {
            available: p(40),
            held: p(60),
        };
        assert_eq!(
            acc.release(p(60)),
            Ok(Account {
                available: p(100),
                held: p(0)
            })
        );
        assert_eq!(
            acc.spend_and_earn(p(60), p(7)),
            Ok(Account {
                available: p(47),
                held: p(0)
            })
        );
        assert!(acc.release(p(61)).is_err());
        assert_eq!(acc.award(p(10)).unwrap().available, p(50));
    }

    #[test]
    fn one_point_is_earned_per_full_unit_charged() {
        assert_eq!(earned_for(cents(0)), p(0));
        assert_eq!(earned_for(cents(99)), p(0));
        assert_eq!(earned_for(cents(100)), p(1));
        assert_eq!(earned_for(cents(2599)), p(25));
        assert_eq!(charged(cents(2500), cents(500), p(300)), cents(1700));
        assert_eq!(charged(cents(2500), cents(2500), p(300)), cents(0));
    }
}

//! The payment rules, pure: no database, no clock, no NATS. Everything that decides whether money
//! moves is here, beside its unit tests.

use jetsaga_contracts::{Money, OrderId};
use uuid::Uuid;

/// The balance does not cover the amount of an order; nothing is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("balance of {} cents does not cover {} cents", balance.cents(), amount.cents())]
pub struct Insufficient {
    pub balance: Money,
    pub amount: Money,
}

/// Charges `amount` to an account holding `balance`, and returns the new balance.
///
/// An exact balance is enough; a zero amount (an order fully paid by its voucher) always succeeds.
pub fn charge(balance: Money, amount: Money) -> Result<Money, Insufficient> {
    balance
        .checked_sub(amount)
        .map_err(|_| Insufficient { balance, amount })
}

/// A credit the request or the balance cannot take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreditError {
    /// Credits are positive: a zero or negative one would only be noise in the ledger.
    #[error("amount_cents must be greater than 0, got {0}")]
    NotPositive(i64),
    /// The new balance would not fit in 64 bits of cents.
    #[error("a credit of {} cents would overflow the balance of {} cents", amount.cents(), balance.cents())]
    Overflow { balance: Money, amount: Money },
}

/// The amount of a credit request, which must be strictly positive.
pub fn credit_amount(cents: i64) -> Result<Money, CreditError> {
    if cents <= 0 {
        return Err(CreditError::NotPositive(cents));
    }
    Money::from_cents(cents).map_err(|_| CreditError::NotPositive(cents))
}

/// Adds `amount` (a credit or a refund) to `balance`, and returns the new balance.
pub fn credit(balance: Money, amount: Money) -> Result<Money, CreditError> {
    balance
        .checked_add(amount)
        .map_err(|_| CreditError::Overflow { balance, amount })
}

/// Where a payment stands. Stored as TEXT with a CHECK constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// The amount left the balance.
    Charged,
    /// The balance did not cover it; nothing moved.
    Failed,
    /// The order was cancelled after the charge; the amount went back to the balance.
    Refunded,
}

/// A stored status that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment status {0:?}")]
pub struct UnknownStatus(pub String);

/// A status change the rules do not allow (an older event must never overwrite a newer state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a payment cannot go from {} to {}", from.as_str(), to.as_str())]
pub struct InvalidTransition {
    pub from: PaymentStatus,
    pub to: PaymentStatus,
}

impl PaymentStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Charged => "CHARGED",
            PaymentStatus::Failed => "FAILED",
            PaymentStatus::Refunded => "REFUNDED",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownStatus> {
        match s {
            "CHARGED" => Ok(PaymentStatus::Charged),
            "FAILED" => Ok(PaymentStatus::Failed),
            "REFUNDED" => Ok(PaymentStatus::Refunded),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }

    /// The only move a payment makes after it was recorded: CHARGED → REFUNDED. CHARGED and FAILED
    /// are where a payment starts; FAILED and REFUNDED are final.
    pub fn transition(self, to: PaymentStatus) -> Result<PaymentStatus, InvalidTransition> {
        match (self, to) {
            (PaymentStatus::Charged, PaymentStatus::Refunded) => Ok(to),
            (from, to) => Err(InvalidTransition { from, to }),
        }
    }
}

/// The namespace of payment ids. Changing it changes the id a replay gives a payment: never change it.
const PAYMENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a65_7473_6167_6170_8000_0000_7061_7901);

/// The payment id of an order: a UUIDv5 of the order id. An order is charged at most once, so the
/// id is stable across replays and the reconciler can match it with a settlement file.
pub fn payment_id_for(order_id: OrderId) -> Uuid {
    Uuid::new_v5(&PAYMENT_ID_NAMESPACE, order_id.as_uuid().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cents(c: i64) -> Money {
        Money::from_cents(c).unwrap()
    }

    #[test]
    fn an_exact_balance_pays_and_leaves_zero() {
        assert_eq!(charge(cents(500), cents(500)), Ok(Money::ZERO));
    }

    #[test]
    fn one_cent_short_fails_and_says_why() {
        let err = charge(cents(499), cents(500)).unwrap_err();
        assert_eq!(
            err,
            Insufficient {
                balance: cents(499),
                amount: cents(500)
            }
        );
        assert_eq!(
            err.to_string(),
            "balance of 499 cents does not cover 500 cents"
        );
    }

    #[test]
    fn a_zero_amount_always_succeeds() {
        assert_eq!(charge(Money::ZERO, Money::ZERO), Ok(Money::ZERO));
        assert_eq!(charge(cents(7), Money::ZERO), Ok(cents(7)));
    }

    #[test]
    fn a_charge_leaves_the_rest() {
        assert_eq!(charge(cents(1_000), cents(250)), Ok(cents(750)));
    }

    #[test]
    fn credits_must_be_positive() {
        assert_eq!(credit_amount(0), Err(CreditError::NotPositive(0)));
        assert_eq!(credit_amount(-5), Err(CreditError::NotPositive(-5)));
        assert_eq!(credit_amount(1), Ok(cents(1)));
    }

    #[test]
    fn a_credit_that_would_overflow_is_refused() {
        assert!(matches!(
            credit(cents(i64::MAX), cents(1)),
            Err(CreditError::Overflow { .. })
        ));
        assert_eq!(credit(cents(i64::MAX - 1), cents(1)), Ok(cents(i64::MAX)));
    }

    #[test]
    fn only_a_charge_can_be_refunded() {
        use PaymentStatus::*;
        assert_eq!(Charged.transition(Refunded), Ok(Refunded));
        for (from, to) in [
            (Failed, Refunded),
            (Refunded, Refunded),
            (Refunded, Charged),
            (Failed, Charged),
            (Charged, Failed),
            (Charged, Charged),
        ] {
            assert_eq!(
                from.transition(to),
                Err(InvalidTransition { from, to }),
                "{from:?} -> {to:?}"
            );
        }
    }

    #[test]
    fn statuses_round_trip_through_their_stored_text() {
        for s in [
            PaymentStatus::Charged,
            PaymentStatus::Failed,
            PaymentStatus::Refunded,
        ] {
            assert_eq!(PaymentStatus::parse(s.as_str()), Ok(s));
        }
        assert!(PaymentStatus::parse("charged").is_err());
    }

    #[test]
    fn payment_ids_are_stable_per_order() {
        let order = OrderId::new_random();
        assert_eq!(payment_id_for(order), payment_id_for(order));
        assert_ne!(payment_id_for(order), payment_id_for(OrderId::new_random()));
    }
}

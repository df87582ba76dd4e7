//! Money in integer cents. Never a float, never negative.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of money in integer cents, `0 ..= i64::MAX`.
///
/// The constructor refuses negative amounts, and arithmetic is checked, so an overflow or a balance
/// that would go below zero is an error the caller has to handle rather than a silent wrap.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Money(i64);

impl schemars::JsonSchema for Money {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "description": "An amount of money in integer cents, never negative.",
        })
    }
}

/// Why an amount of money could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Money is never negative; debts are modelled as failed payments, not negative balances.
    #[error("amount {0} cents is negative")]
    Negative(i64),
    /// The result does not fit in 64 bits of cents.
    #[error("amount overflows")]
    Overflow,
    /// A subtraction would go below zero.
    #[error("{left} cents minus {right} cents is below zero")]
    Insufficient { left: i64, right: i64 },
}

impl Money {
    pub const ZERO: Money = Money(0);

    /// Makes an amount from cents, refusing negative ones.
    pub fn from_cents(cents: i64) -> Result<Self, MoneyError> {
        if cents < 0 {
            Err(MoneyError::Negative(cents))
        } else {
            Ok(Money(cents))
        }
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.0
            .checked_add(other.0)
            .map(Money)
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        if other.0 > self.0 {
            return Err(MoneyError::Insufficient {
                left: self.0,
                right: other.0,
            });
        }
        Ok(Money(self.0 - other.0))
    }

    /// `self - other`, or zero when `other` is larger (a discount never makes a total negative).
    pub fn saturating_sub(self, other: Money) -> Money {
        Money((self.0 - other.0).max(0))
    }

    pub fn checked_mul(self, factor: u32) -> Result<Money, MoneyError> {
        self.0
            .checked_mul(i64::from(factor))
            .map(Money)
            .ok_or(MoneyError::Overflow)
    }
}

impl TryFrom<i64> for Money {
    type Error = MoneyError;
    fn try_from(cents: i64) -> Result<Self, Self::Error> {
        Money::from_cents(cents)
    }
}

impl From<Money> for i64 {
    fn from(m: Money) -> i64 {
        m.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_amounts_are_refused() {
        assert_eq!(Money::from_cents(-1), Err(MoneyError::Negative(-1)));
        assert!(serde_json::from_str::<Money>("-5").is_err());
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::from_cents(i64::MAX).unwrap();
        assert_eq!(
            a.checked_add(Money::from_cents(1).unwrap()),
            Err(MoneyError::Overflow)
        );
        assert_eq!(a.checked_mul(2), Err(MoneyError::Overflow));
        let five = Money::from_cents(5).unwrap();
        let seven = Money::from_cents(7).unwrap();
        assert!(five.checked_sub(seven).is_err());
        assert_eq!(five.saturating_sub(seven), Money::ZERO);
        assert_eq!(seven.checked_sub(five).unwrap().cents(), 2);
    }

    #[test]
    fn money_serializes_as_plain_cents() {
        let m = Money::from_cents(1234).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "1234");
        assert_eq!(m.to_string(), "12.34");
    }
}

//! Loyalty points, a whole number that is never negative. One point is worth one cent.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A number of loyalty points, `0 ..= i64::MAX`.
///
/// Like [`crate::Money`], the constructor refuses negative numbers and arithmetic is checked, so an
/// overflow or a balance that would go below zero is an error the caller handles.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Points(i64);

impl schemars::JsonSchema for Points {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Points".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "description": "A number of loyalty points (one point is worth one cent), never negative.",
        })
    }
}

/// Why a number of points could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointsError {
    #[error("{0} points is negative")]
    Negative(i64),
    #[error("points overflow")]
    Overflow,
    #[error("{left} points minus {right} points is below zero")]
    Insufficient { left: i64, right: i64 },
}

impl Points {
    pub const ZERO: Points = Points(0);

    /// Makes a number of points, refusing negative ones.
    pub fn new(points: i64) -> Result<Self, PointsError> {
        if points < 0 {
            Err(PointsError::Negative(points))
        } else {
            Ok(Points(points))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Points) -> Result<Points, PointsError> {
        self.0
            .checked_add(other.0)
            .map(Points)
            .ok_or(PointsError::Overflow)
    }

    pub fn checked_sub(self, other: Points) -> Result<Points, PointsError> {
        if other.0 > self.0 {
            return Err(PointsError::Insufficient {
                left: self.0,
                right: other.0,
            });
        }
        Ok(Points(self.0 - other.0))
    }

    /// What these points are worth: one cent each.
    pub fn as_money(self) -> crate::Money {
        crate::Money::from_cents(self.0).unwrap_or_default()
    }
}

impl TryFrom<i64> for Points {
    type Error = PointsError;
    fn try_from(points: i64) -> Result<Self, Self::Error> {
        Points::new(points)
    }
}

impl From<Points> for i64 {
    fn from(p: Points) -> i64 {
        p.0
    }
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_points_are_refused() {
        assert_eq!(Points::new(-1), Err(PointsError::Negative(-1)));
        assert!(serde_json::from_str::<Points>("-5").is_err());
        assert_eq!(serde_json::from_str::<Points>("7").unwrap().get(), 7);
    }

    #[test]
    fn points_arithmetic_is_checked() {
        let max = Points::new(i64::MAX).unwrap();
        assert_eq!(max.checked_add(Points(1)), Err(PointsError::Overflow));
        assert!(Points(5).checked_sub(Points(7)).is_err());
        assert_eq!(Points(7).checked_sub(Points(5)), Ok(Points(2)));
        assert_eq!(Points(250).as_money().cents(), 250);
    }
}

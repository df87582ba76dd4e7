//! The stock rules, pure: no SQL, no I/O. The handlers and routes load rows, ask these functions,
//! and store what they answer.

use jetsaga_contracts::{OrderLine, Sku, StockLine};
use std::collections::{BTreeMap, HashMap};

/// The largest change one adjustment may make, either way.
pub const MAX_ADJUSTMENT: i64 = 1_000_000_000;

/// The status of one order's hold on one SKU, stored as TEXT with a CHECK constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    /// The units are counted in `stock.reserved` for this order.
    Held,
    /// The order was cancelled and the units went back to `stock.available`.
    Released,
}

impl ReservationStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "HELD",
            ReservationStatus::Released => "RELEASED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HELD" => Some(ReservationStatus::Held),
            "RELEASED" => Some(ReservationStatus::Released),
            _ => None,
        }
    }

    /// The only transition: a held reservation is released. A released one stays released; a
    /// second release is refused, so units can never go back to `available` twice.
    pub fn release(self) -> Result<ReservationStatus, AlreadyReleased> {
        match self {
            ReservationStatus::Held => Ok(ReservationStatus::Released),
            ReservationStatus::Released => Err(AlreadyReleased),
        }
    }
}

/// A release of a reservation that was already released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reservation was already released")]
pub struct AlreadyReleased;

/// Why an adjustment request is refused before anything is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDelta {
    #[error("delta must not be 0")]
    Zero,
    #[error("delta {0} is out of range: at most {MAX_ADJUSTMENT} units either way per adjustment")]
    TooLarge(i64),
}

/// Checks an adjustment's delta: non-zero, and at most [`MAX_ADJUSTMENT`] either way.
pub fn validate_delta(delta: i64) -> Result<i64, InvalidDelta> {
    if delta == 0 {
        Err(InvalidDelta::Zero)
    } else if delta.unsigned_abs() > MAX_ADJUSTMENT.unsigned_abs() {
        Err(InvalidDelta::TooLarge(delta))
    } else {
        Ok(delta)
    }
}

/// Why an adjustment cannot be applied to the current stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdjustmentRefused {
    #[error("removing {removed} units would leave fewer than 0: only {available} are available")]
    Insufficient { removed: i64, available: i64 },
    #[error("adding {added} units to {available} available would overflow")]
    Overflow { added: i64, available: i64 },
}

/// The available units after `delta`. Reserved units are never touched by an adjustment: they
/// belong to orders.
pub fn adjust(available: i64, delta: i64) -> Result<i64, AdjustmentRefused> {
    match available.checked_add(delta) {
        Some(after) if after >= 0 => Ok(after),
        Some(_) => Err(AdjustmentRefused::Insufficient {
            removed: delta.saturating_neg(),
            available,
        }),
        None => Err(AdjustmentRefused::Overflow {
            added: delta,
            available,
        }),
    }
}

/// Order lines that stock cannot work with; the event is malformed, not merely unlucky.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLines {
    #[error("the order has no lines")]
    Empty,
    #[error("a line of sku {0} has quantity 0")]
    ZeroQuantity(Sku),
    #[error("the quantities of sku {0} add up to more than {max}", max = u32::MAX)]
    Overflow(Sku),
}

/// One line per SKU, quantities summed, sorted by SKU (the order in which rows are locked).
pub fn merge_lines(lines: &[OrderLine]) -> Result<Vec<StockLine>, InvalidLines> {
    if lines.is_empty() {
        return Err(InvalidLines::Empty);
    }
    let mut merged: BTreeMap<&Sku, u32> = BTreeMap::new();
    for line in lines {
        if line.quantity == 0 {
            return Err(InvalidLines::ZeroQuantity(line.sku.clone()));
        }
        let q = merged.entry(&line.sku).or_default();
        *q = q
            .checked_add(line.quantity)
            .ok_or_else(|| InvalidLines::Overflow(line.sku.clone()))?;
    }
    Ok(merged
        .into_iter()
        .map(|(sku, quantity)| StockLine {
            sku: sku.clone(),
            quantity,
        })
        .collect())
}

/// The first line that could not be held, and what was there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub sku: Sku,
    pub requested: u32,
    pub available: i64,
}

/// All lines or none: the lines to hold when every one of them fits into what is available, or
/// the first line (in the given order) that does not. An unknown SKU has 0 available.
///
/// `requested` must hold each SKU once (see [`merge_lines`]); a SKU given twice is checked
/// against its full availability each time.
pub fn reserve_all(
    requested: &[StockLine],
    available: &HashMap<Sku, i64>,
) -> Result<Vec<StockLine>, Shortage> {
    for line in requested {
        let have = available.get(&line.sku).copied().unwrap_or(0);
        if i64::from(line.quantity) > have {
            return Err(Shortage {
                sku: line.sku.clone(),
                requested: line.quantity,
                available: have,
            });
        }
    }
    Ok(requested.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetsaga_contracts::Money;

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    fn line(s: &str, quantity: u32) -> StockLine {
        StockLine {
            sku: sku(s),
            quantity,
        }
    }

    fn order_line(s: &str, quantity: u32) -> OrderLine {
        OrderLine {
            sku: sku(s),
            quantity,
            unit_price: Money::from_cents(100).unwrap(),
        }
    }

    fn stock(rows: &[(&str, i64)]) -> HashMap<Sku, i64> {
        rows.iter().map(|(s, n)| (sku(s), *n)).collect()
    }

    #[test]
    fn every_line_that_fits_is_reserved() {
        let requested = [line("A", 2), line("B", 1)];
        let got = reserve_all(&requested, &stock(&[("A", 2), ("B", 5)])).unwrap();
        assert_eq!(got, requested.to_vec());
    }

    #[test]
    fn one_short_line_reserves_nothing_and_names_that_line() {
        let requested = [line("A", 2), line("B", 3)];
        let err = reserve_all(&requested, &stock(&[("A", 10), ("B", 1)])).unwrap_err();
        assert_eq!(
            err,
            Shortage {
                sku: sku("B"),
                requested: 3,
                available: 1
            }
        );
    }

    #[test]
    fn an_unknown_sku_has_nothing_available() {
        let err = reserve_all(&[line("NEW", 1)], &HashMap::new()).unwrap_err();
        assert_eq!(err.available, 0);
        assert_eq!(err.sku, sku("NEW"));
    }

    #[test]
    fn the_last_unit_goes_to_exactly_one_order() {
        // Two orders over one unit, decided one after the other as the row lock orders them.
        let mut available = stock(&[("LAST", 1)]);
        let mut winners = 0;
        let mut losers = 0;
        for _ in 0..2 {
            match reserve_all(&[line("LAST", 1)], &available) {
                Ok(lines) => {
                    winners += 1;
                    for l in lines {
                        *available.get_mut(&l.sku).unwrap() -= i64::from(l.quantity);
                    }
                }
                Err(shortage) => {
                    losers += 1;
                    assert_eq!(shortage.available, 0);
                }
            }
        }
        assert_eq!((winners, losers), (1, 1));
        assert_eq!(available[&sku("LAST")], 0);
    }

    #[test]
    fn lines_of_one_sku_are_merged_and_sorted() {
        let merged =
            merge_lines(&[order_line("B", 1), order_line("A", 2), order_line("B", 3)]).unwrap();
        assert_eq!(merged, vec![line("A", 2), line("B", 4)]);
    }

    #[test]
    fn merged_lines_are_checked_as_one() {
        // Two lines of 1 each over one unit: the order needs 2 and gets none.
        let merged = merge_lines(&[order_line("A", 1), order_line("A", 1)]).unwrap();
        assert!(reserve_all(&merged, &stock(&[("A", 1)])).is_err());
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert_eq!(merge_lines(&[]), Err(InvalidLines::Empty));
        assert_eq!(
            merge_lines(&[order_line("A", 0)]),
            Err(InvalidLines::ZeroQuantity(sku("A")))
        );
        assert_eq!(
            merge_lines(&[order_line("A", u32::MAX), order_line("A", 1)]),
            Err(InvalidLines::Overflow(sku("A")))
        );
    }

    #[test]
    fn deltas_must_be_non_zero_and_bounded() {
        assert_eq!(validate_delta(0), Err(InvalidDelta::Zero));
        assert_eq!(validate_delta(MAX_ADJUSTMENT), Ok(MAX_ADJUSTMENT));
        assert_eq!(validate_delta(-MAX_ADJUSTMENT), Ok(-MAX_ADJUSTMENT));
        assert!(validate_delta(MAX_ADJUSTMENT + 1).is_err());
        assert!(validate_delta(i64::MIN).is_err());
        assert!(validate_delta(i64::MAX).is_err());
    }

    #[test]
    fn an_adjustment_never_takes_available_below_zero() {
        assert_eq!(adjust(5, -5), Ok(0));
        assert_eq!(adjust(5, 3), Ok(8));
        assert_eq!(
            adjust(5, -6),
            Err(AdjustmentRefused::Insufficient {
                removed: 6,
                available: 5
            })
        );
        assert!(matches!(
            adjust(i64::MAX, 1),
            Err(AdjustmentRefused::Overflow { .. })
        ));
    }

    #[test]
    fn a_reservation_is_released_once() {
        let released = ReservationStatus::Held.release().unwrap();
        assert_eq!(released, ReservationStatus::Released);
        assert_eq!(released.release(), Err(AlreadyReleased));
    }

    #[test]
    fn statuses_round_trip_through_their_stored_text() {
        for s in [ReservationStatus::Held, ReservationStatus::Released] {
            assert_eq!(ReservationStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ReservationStatus::parse("held"), None);
    }
}

//! Orders cancelled by their deadline while no fault lasted that long: `timeouts_without_cause`.
//!
//! A saga that nothing stalls ends in well under a second, far inside its deadline (30 s). So a
//! `timeout` cancellation is excused only when faults kept that order from moving for nearly all
//! of its life, from its creation to its deadline. Precisely:
//!
//! - A *stall* is a fault during which orders cannot move: a killed, paused or restarted-by-kill
//!   instance, NATS killed or cut off, a database refusing connections ([`Kind::stalls_orders`]).
//!   A lock holder stalls only the orders with a line of the SKU whose row it holds: every other
//!   order must go on (issue 10, defect 6). A rolling restart, poison of any size, a deleted
//!   consumer and a full DLQ stall nothing: the system must ride them through, which is what these
//!   kinds test.
//! - A stall lasts from the fault's start to its end plus a *recovery* time: what a message caught
//!   in it may still wait once the fault is undone, its redelivery after the consumers' ack wait
//!   and the next try of a runner backing off from an unavailable database (capped at 5 s).
//! - An order whose life has at least `free_needed` (5 s) outside every stall that applies to it
//!   had the time to end. If it was cancelled by its deadline anyway, that timeout has no cause.
//!
//! This is stricter than "the order's life overlaps a fault held at least the deadline − 5 s": an
//! order that only met the last seconds of a long outage is not excused, and one stalled by two
//! faults in a row, each shorter, is.
//!
//! [`Kind::stalls_orders`]: super::schedule::Kind::stalls_orders

use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// A time during which orders could not move.
#[derive(Debug, Clone, PartialEq)]
pub struct Stall {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// Only orders with a line of this SKU stalled (a held stock row); `None`: every order.
    pub sku: Option<String>,
}

/// An order cancelled with reason `timeout`, as the order database has it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TimedOut {
    pub order_id: Uuid,
    pub created_at: OffsetDateTime,
    pub deadline: OffsetDateTime,
    pub skus: Vec<String>,
}

/// What a timeout is allowed.
#[derive(Debug, Clone, Copy)]
pub struct Allowance {
    /// Added to the end of every stall.
    pub recovery: Duration,
    /// The fault-free time in which an order must end.
    pub free_needed: Duration,
}

impl Allowance {
    /// The allowance of a system whose consumers wait `ack_wait` for an ack: recovery is the ack
    /// wait plus the runner's 5 s cap on its back-off from an unavailable database; 5 s free.
    pub fn for_ack_wait(ack_wait: Duration) -> Allowance {
        Allowance {
            recovery: ack_wait + Duration::from_secs(5),
            free_needed: Duration::from_secs(5),
        }
    }
}

/// The orders whose timeout no stall explains.
pub fn without_cause<'a>(
    orders: &'a [TimedOut],
    stalls: &[Stall],
    allowance: Allowance,
) -> Vec<&'a TimedOut> {
    orders
        .iter()
        .filter(|o| free_time(o, stalls, allowance.recovery) >= allowance.free_needed)
        .collect()
}

/// How much of an order's life (creation to deadline) lies outside every stall that applies to it.
fn free_time(order: &TimedOut, stalls: &[Stall], recovery: Duration) -> Duration {
    let (from, to) = (order.created_at, order.deadline);
    let mut covered: Vec<(OffsetDateTime, OffsetDateTime)> = stalls
        .iter()
        .filter(|s| s.sku.as_ref().is_none_or(|sku| order.skus.contains(sku)))
        .map(|s| (s.start.max(from), (s.end + recovery).min(to)))
        .filter(|(a, b)| a < b)
        .collect();
    covered.sort();
    let mut stalled = Duration::ZERO;
    let mut reach = from;
    for (a, b) in covered {
        let a = a.max(reach);
        if b > a {
            stalled += (b - a).unsigned_abs();
            reach = b;
        }
    }
    (to - from).unsigned_abs().saturating_sub(stalled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

    fn at(secs: f64) -> OffsetDateTime {
        T0 + Duration::from_secs_f64(secs)
    }

    fn order(created: f64, skus: &[&str]) -> TimedOut {
        TimedOut {
            order_id: Uuid::new_v4(),
            created_at: at(created),
            deadline: at(created + 30.0),
            skus: skus.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn stall(start: f64, end: f64, sku: Option<&str>) -> Stall {
        Stall {
            start: at(start),
            end: at(end),
            sku: sku.map(str::to_owned),
        }
    }

    fn ids(orders: Vec<&TimedOut>) -> Vec<Uuid> {
        orders.into_iter().map(|o| o.order_id).collect()
    }

    fn allowance() -> Allowance {
        Allowance::for_ack_wait(Duration::from_secs(3))
    }

    #[test]
    fn a_timeout_with_no_fault_at_all_has_no_cause() {
        let o = order(0.0, &["A"]);
        assert_eq!(
            ids(without_cause(std::slice::from_ref(&o), &[], allowance())),
            [o.order_id]
        );
    }

    #[test]
    fn an_order_stalled_for_all_its_life_by_an_outage_is_excused() {
        let o = order(10.0, &["A"]);
        assert!(without_cause(&[o], &[stall(9.0, 50.0, None)], allowance()).is_empty());
    }

    #[test]
    fn an_order_that_met_only_the_end_of_a_long_outage_is_not_excused() {
        // Placed 10 s before a 90 s outage ended: 12 s of its life were free after recovery.
        let o = order(80.0, &["A"]);
        let id = o.order_id;
        assert_eq!(
            ids(without_cause(&[o], &[stall(0.0, 90.0, None)], allowance())),
            [id]
        );
    }

    #[test]
    fn two_shorter_stalls_in_a_row_excuse_together() {
        let o = order(0.0, &["A"]);
        let stalls = [stall(0.0, 10.0, None), stall(12.0, 25.0, None)];
        assert!(without_cause(&[o], &stalls, allowance()).is_empty());
    }

    #[test]
    fn a_held_row_excuses_only_the_orders_of_its_sku() {
        let hot = order(0.0, &["A", "HOT"]);
        let other = order(0.0, &["B"]);
        let id = other.order_id;
        let stalls = [stall(0.0, 40.0, Some("HOT"))];
        assert_eq!(
            ids(without_cause(&[hot, other], &stalls, allowance())),
            [id]
        );
    }

    #[test]
    fn overlapping_stalls_are_not_counted_twice() {
        let o = order(0.0, &["A"]);
        // Both cover 0..18 (with recovery); 12 s of the 30 are free.
        let stalls = [stall(0.0, 10.0, None), stall(2.0, 10.0, None)];
        assert_eq!(free_time(&o, &stalls, allowance().recovery).as_secs(), 12);
    }
}

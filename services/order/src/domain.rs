//! The order's rules, pure: its status machine, pricing, and the deadline. No I/O here; the
//! handlers, the API and the deadline sweep ask these functions what to do and then do it.

use jetsaga_contracts::{CancelReason, CustomerId, Money, MoneyError, Points, Sku, VoucherCode};
use serde::Serialize;
use std::collections::HashSet;
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// The most lines one order may have.
pub const MAX_LINES: usize = 100;
/// The largest quantity of one line.
pub const MAX_QUANTITY: i64 = 1_000_000;
/// The longest product name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Where an order stands. Stored as TEXT with a CHECK constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Accepted; its saga is running.
    Pending,
    /// Terminal: every step succeeded.
    Confirmed,
    /// Terminal: a step failed or the deadline passed.
    Cancelled,
}

/// A status text that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(pub String);

impl OrderStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownStatus> {
        match s {
            "PENDING" => Ok(OrderStatus::Pending),
            "CONFIRMED" => Ok(OrderStatus::Confirmed),
            "CANCELLED" => Ok(OrderStatus::Cancelled),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }

    pub const fn is_terminal(self) -> bool {
        !matches!(self, OrderStatus::Pending)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cancel reason text that is not one of the contract's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cancel reason {0:?}")]
pub struct UnknownReason(pub String);

/// The inverse of [`CancelReason::as_str`], for reading the stored column back.
pub fn parse_cancel_reason(s: &str) -> Result<CancelReason, UnknownReason> {
    [
        CancelReason::VoucherRejected,
        CancelReason::PointsRejected,
        CancelReason::PaymentFailed,
        CancelReason::StockFailed,
        CancelReason::Timeout,
    ]
    .into_iter()
    .find(|r| r.as_str() == s)
    .ok_or_else(|| UnknownReason(s.to_owned()))
}

/// What happened to an order's saga, as far as the order's status is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderInput {
    /// The last forward step (stock) succeeded. `discount_known` says whether the voucher step's
    /// discount has been recorded yet; it arrives on another consumer and may come later.
    StockReserved { discount_known: bool },
    /// The points step passed, with the voucher's discount and the points spent. `stock_reserved` says whether StockReserved,
    /// which may overtake it, has been recorded already.
    PointsReserved { stock_reserved: bool },
    /// A step failed or the deadline passed.
    Failed(CancelReason),
}

/// What to do with the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// PENDING → CONFIRMED, and say so.
    Confirm,
    /// PENDING → CANCELLED with this reason, and say so.
    Cancel(CancelReason),
    /// Still PENDING: remember the fact; the other one confirms the order when it arrives.
    Record,
    /// The order is already terminal: a stale or late event changes nothing and says nothing.
    Ignore,
}

/// The status machine. A status only ever moves forward from PENDING to one terminal state; any
/// input on a terminal order is ignored, so an older event can never overwrite a newer state.
pub fn transition(current: OrderStatus, input: OrderInput) -> Transition {
    match (current, input) {
        (OrderStatus::Confirmed | OrderStatus::Cancelled, _) => Transition::Ignore,
        (
            OrderStatus::Pending,
            OrderInput::StockReserved {
                discount_known: true,
            }
            | OrderInput::PointsReserved {
                stock_reserved: true,
            },
        ) => Transition::Confirm,
        (
            OrderStatus::Pending,
            OrderInput::StockReserved {
                discount_known: false,
            }
            | OrderInput::PointsReserved {
                stock_reserved: false,
            },
        ) => Transition::Record,
        (OrderStatus::Pending, OrderInput::Failed(reason)) => Transition::Cancel(reason),
    }
}

/// How an order's saga ended, as the order service recorded it in its own stream
/// (OrderConfirmed, OrderCancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedEnd {
    Confirmed,
    Cancelled(CancelReason),
}

/// A recorded end that contradicts how the order already ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the order is already {found}{}, the event says {recorded:?}",
    found_reason.map(|r| format!(" ({})", r.as_str())).unwrap_or_default())]
pub struct EndConflict {
    pub found: OrderStatus,
    pub found_reason: Option<CancelReason>,
    pub recorded: RecordedEnd,
}

/// Whether a recorded end still has to be applied to an order that stands at `status` (with
/// `reason` when it is cancelled): `Ok(true)` for a PENDING order, `Ok(false)` for an order that
/// already ended this way (the same fact again). No rule of the saga is asked again, the end
/// happened; but a terminal order never changes, so an order that ended another way is a
/// conflict: the facts contradict each other.
pub fn end_to_restore(
    status: OrderStatus,
    reason: Option<CancelReason>,
    recorded: RecordedEnd,
) -> Result<bool, EndConflict> {
    let found = match status {
        OrderStatus::Pending => return Ok(true),
        OrderStatus::Confirmed => RecordedEnd::Confirmed,
        OrderStatus::Cancelled => match reason {
            Some(reason) => RecordedEnd::Cancelled(reason),
            None => {
                return Err(EndConflict {
                    found: status,
                    found_reason: None,
                    recorded,
                })
            }
        },
    };
    if found == recorded {
        Ok(false)
    } else {
        Err(EndConflict {
            found: status,
            found_reason: reason,
            recorded,
        })
    }
}

/// Names the request hashes; changing it makes every stored key look reused with another request.
const REQUEST_HASH_NAMESPACE: Uuid = Uuid::from_u128(0x6a65_7473_6167_6100_8000_0000_0000_0002);

/// An order request in its canonical form: the form that is hashed.
#[derive(Serialize)]
struct CanonicalRequest<'a> {
    customer_id: CustomerId,
    /// Sorted by SKU (each SKU appears once), so the order of lines does not change the hash.
    items: &'a [(Sku, u32)],
    voucher_code: Option<&'a VoucherCode>,
    /// Left out when no points were asked, so the hashes of orders without points stay as they
    /// were before points existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    points: Option<Points>,
}

/// The hash of an order request that an Idempotency-Key is stored with: the same key with another
/// request is refused. A UUIDv5 of the canonical JSON of the customer, the `(sku, quantity)` items
/// sorted by SKU, the voucher code and the points asked. Everything it covers is in OrderCreated, so a replay
/// computes the same hash from the event.
pub fn request_hash(
    customer_id: CustomerId,
    items: &[(Sku, u32)],
    voucher_code: Option<&VoucherCode>,
    points: Option<Points>,
) -> String {
    let mut items = items.to_vec();
    items.sort();
    let canonical = serde_json::to_vec(&CanonicalRequest {
        customer_id,
        items: &items,
        voucher_code,
        points,
    })
    .expect("plain data always serializes");
    Uuid::new_v5(&REQUEST_HASH_NAMESPACE, &canonical)
        .simple()
        .to_string()
}

/// Whether an order with this deadline is overdue at `now`.
pub fn is_past_deadline(deadline: OffsetDateTime, now: OffsetDateTime) -> bool {
    now > deadline
}

/// Why a set of order lines cannot make an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinesError {
    #[error("an order needs at least one item")]
    Empty,
    #[error("an order has at most {MAX_LINES} items, this one has {0}")]
    TooMany(usize),
    #[error("quantity {quantity} of sku {sku} is not between 1 and {MAX_QUANTITY}")]
    Quantity { sku: String, quantity: i64 },
    #[error("sku {0} appears on more than one line; give each sku once with its total quantity")]
    DuplicateSku(String),
}

/// Checks the shape of the requested lines: count, quantities and duplicate SKUs. Returns the
/// quantities as `u32` (they fit, being at most [`MAX_QUANTITY`]).
pub fn check_lines(lines: &[(Sku, i64)]) -> Result<Vec<(Sku, u32)>, LinesError> {
    if lines.is_empty() {
        return Err(LinesError::Empty);
    }
    if lines.len() > MAX_LINES {
        return Err(LinesError::TooMany(lines.len()));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(lines.len());
    for (sku, quantity) in lines {
        let q = u32::try_from(*quantity)
            .ok()
            .filter(|q| (1..=MAX_QUANTITY).contains(&i64::from(*q)))
            .ok_or_else(|| LinesError::Quantity {
                sku: sku.to_string(),
                quantity: *quantity,
            })?;
        if !seen.insert(sku.clone()) {
            return Err(LinesError::DuplicateSku(sku.to_string()));
        }
        out.push((sku.clone(), q));
    }
    Ok(out)
}

/// The sum of `quantity × unit price` over the lines, with checked arithmetic.
pub fn order_total(lines: &[(u32, Money)]) -> Result<Money, MoneyError> {
    lines
        .iter()
        .try_fold(Money::ZERO, |sum, (quantity, price)| {
            sum.checked_add(price.checked_mul(*quantity)?)
        })
}

/// Why a product cannot be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error("the product name must not be empty")]
    EmptyName,
    #[error("the product name has {0} characters; at most {MAX_NAME_CHARS} are allowed")]
    LongName(usize),
    #[error("price_cents must be greater than 0, got {0}")]
    Price(i64),
}

/// Checks a product's name and price; returns the price as [`Money`].
pub fn check_product(name: &str, price_cents: i64) -> Result<Money, ProductError> {
    if name.trim().is_empty() {
        return Err(ProductError::EmptyName);
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(ProductError::LongName(chars));
    }
    if price_cents <= 0 {
        return Err(ProductError::Price(price_cents));
    }
    Money::from_cents(price_cents).map_err(|_| ProductError::Price(price_cents))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [OrderStatus; 3] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Cancelled,
    ];

    fn inputs() -> Vec<OrderInput> {
        let mut v = vec![
            OrderInput::StockReserved {
                discount_known: true,
            },
            OrderInput::StockReserved {
                discount_known: false,
            },
            OrderInput::PointsReserved {
                stock_reserved: true,
            },
            OrderInput::PointsReserved {
                stock_reserved: false,
            },
        ];
        v.extend(
            [
                CancelReason::VoucherRejected,
                CancelReason::PaymentFailed,
                CancelReason::StockFailed,
                CancelReason::Timeout,
            ]
            .map(OrderInput::Failed),
        );
        v
    }

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    fn money(c: i64) -> Money {
        Money::from_cents(c).unwrap()
    }

    #[test]
    fn pending_order_is_confirmed_when_stock_is_reserved_and_the_discount_is_known() {
        assert_eq!(
            transition(
                OrderStatus::Pending,
                OrderInput::StockReserved {
                    discount_known: true
                }
            ),
            Transition::Confirm
        );
    }

    #[test]
    fn pending_order_records_stock_reserved_until_the_discount_is_known() {
        assert_eq!(
            transition(
                OrderStatus::Pending,
                OrderInput::StockReserved {
                    discount_known: false
                }
            ),
            Transition::Record
        );
    }

    #[test]
    fn points_reserved_confirms_a_pending_order_whose_stock_is_reserved() {
        assert_eq!(
            transition(
                OrderStatus::Pending,
                OrderInput::PointsReserved {
                    stock_reserved: true
                }
            ),
            Transition::Confirm
        );
        assert_eq!(
            transition(
                OrderStatus::Pending,
                OrderInput::PointsReserved {
                    stock_reserved: false
                }
            ),
            Transition::Record
        );
    }

    #[test]
    fn pending_order_is_cancelled_with_the_reason_of_the_failure() {
        for reason in [
            CancelReason::VoucherRejected,
            CancelReason::PaymentFailed,
            CancelReason::StockFailed,
            CancelReason::Timeout,
        ] {
            assert_eq!(
                transition(OrderStatus::Pending, OrderInput::Failed(reason)),
                Transition::Cancel(reason)
            );
        }
    }

    #[test]
    fn terminal_orders_ignore_everything() {
        for status in [OrderStatus::Confirmed, OrderStatus::Cancelled] {
            for input in inputs() {
                assert_eq!(
                    transition(status, input),
                    Transition::Ignore,
                    "{status} {input:?}"
                );
            }
        }
    }

    #[test]
    fn statuses_and_reasons_round_trip_through_their_text() {
        for s in ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Ok(s));
        }
        assert!(OrderStatus::parse("pending").is_err());
        for r in [CancelReason::PaymentFailed, CancelReason::Timeout] {
            assert_eq!(parse_cancel_reason(r.as_str()), Ok(r));
        }
        assert!(parse_cancel_reason("bored").is_err());
    }

    #[test]
    fn deadline_passes_only_after_the_instant() {
        let t = OffsetDateTime::UNIX_EPOCH;
        assert!(!is_past_deadline(t, t));
        assert!(is_past_deadline(t, t + time::Duration::milliseconds(1)));
        assert!(!is_past_deadline(t, t - time::Duration::seconds(1)));
    }

    #[test]
    fn lines_refuse_bad_quantities_duplicates_and_bad_counts() {
        assert_eq!(check_lines(&[]), Err(LinesError::Empty));
        for q in [0, -1, MAX_QUANTITY + 1, i64::MAX, i64::MIN] {
            assert!(
                matches!(
                    check_lines(&[(sku("A"), q)]),
                    Err(LinesError::Quantity { .. })
                ),
                "{q}"
            );
        }
        assert_eq!(
            check_lines(&[(sku("A"), 1), (sku("B"), 1), (sku("A"), 2)]),
            Err(LinesError::DuplicateSku("A".into()))
        );
        let many: Vec<_> = (0..=MAX_LINES)
            .map(|i| (sku(&format!("S{i}")), 1))
            .collect();
        assert_eq!(check_lines(&many), Err(LinesError::TooMany(MAX_LINES + 1)));
        assert_eq!(
            check_lines(&[(sku("A"), 1), (sku("B"), MAX_QUANTITY)]),
            Ok(vec![(sku("A"), 1), (sku("B"), 1_000_000)])
        );
    }

    #[test]
    fn total_is_the_sum_of_the_lines_and_overflow_is_an_error() {
        assert_eq!(
            order_total(&[(2, money(250)), (1, money(99))]),
            Ok(money(599))
        );
        assert_eq!(
            order_total(&[(2, money(i64::MAX / 2 + 1))]),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            order_total(&[(1, money(i64::MAX)), (1, money(1))]),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn products_need_a_name_and_a_positive_price() {
        assert_eq!(check_product("Tea", 350), Ok(money(350)));
        assert_eq!(check_product("  ", 350), Err(ProductError::EmptyName));
        assert_eq!(
            check_product(&"x".repeat(201), 350),
            Err(ProductError::LongName(201))
        );
        assert_eq!(check_product(&"é".repeat(200), 1), Ok(money(1)));
        assert_eq!(check_product("Tea", 0), Err(ProductError::Price(0)));
        assert_eq!(check_product("Tea", -5), Err(ProductError::Price(-5)));
    }

    #[test]
    fn a_recorded_end_is_applied_to_a_pending_order_once() {
        use CancelReason::Timeout;
        let ends = [RecordedEnd::Confirmed, RecordedEnd::Cancelled(Timeout)];
        for end in ends {
            assert_eq!(end_to_restore(OrderStatus::Pending, None, end), Ok(true));
        }
        assert_eq!(
            end_to_restore(OrderStatus::Confirmed, None, RecordedEnd::Confirmed),
            Ok(false)
        );
        assert_eq!(
            end_to_restore(
                OrderStatus::Cancelled,
                Some(Timeout),
                RecordedEnd::Cancelled(Timeout)
            ),
            Ok(false)
        );
    }

    #[test]
    fn a_recorded_end_never_changes_an_order_that_ended_another_way() {
        use CancelReason::{PaymentFailed, Timeout};
        for (status, reason, end) in [
            (
                OrderStatus::Confirmed,
                None,
                RecordedEnd::Cancelled(Timeout),
            ),
            (
                OrderStatus::Cancelled,
                Some(Timeout),
                RecordedEnd::Confirmed,
            ),
            (
                OrderStatus::Cancelled,
                Some(Timeout),
                RecordedEnd::Cancelled(PaymentFailed),
            ),
        ] {
            let err = end_to_restore(status, reason, end).unwrap_err();
            assert_eq!((err.found, err.recorded), (status, end));
        }
        let err = end_to_restore(
            OrderStatus::Cancelled,
            Some(Timeout),
            RecordedEnd::Confirmed,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the order is already CANCELLED (timeout), the event says Confirmed"
        );
    }

    /// Pinned: a changed hash makes every stored Idempotency-Key look reused with another request.
    #[test]
    fn the_request_hash_is_stable_and_ignores_the_order_of_items() {
        let customer: CustomerId = "6a1c6f4e-2b8e-4d0e-9a43-5a4bb1f0c001".parse().unwrap();
        let voucher = VoucherCode::parse("WELCOME10").unwrap();
        assert_eq!(
            request_hash(customer, &[(sku("A"), 1), (sku("B"), 2)], None, None),
            "59b977e0ca935cdc92e3a98c3072ee8f"
        );
        assert_eq!(
            request_hash(
                customer,
                &[(sku("B"), 2), (sku("A"), 1)],
                Some(&voucher),
                None
            ),
            "8e271685e8d950988a1445e3c9752e31"
        );
        assert_ne!(
            request_hash(customer, &[(sku("A"), 1), (sku("B"), 3)], None, None),
            request_hash(customer, &[(sku("A"), 1), (sku("B"), 2)], None, None)
        );
        // Points asked are part of the request.
        assert_ne!(
            request_hash(customer, &[(sku("A"), 1)], None, Points::new(100).ok()),
            request_hash(customer, &[(sku("A"), 1)], None, None)
        );
    }
}

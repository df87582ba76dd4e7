//! The payment provider's settlement file, and its comparison with our payment ledger.
//!
//! # Format
//!
//! CSV, UTF-8, comma separated, one header line, then one row per captured payment:
//!
//! ```text
//! payment_id,amount_cents,time
//! 5f0c8e1e-8d0e-5a8f-9d43-7e3d3c1f9b10,2500,2026-03-01T10:15:00Z
//! ```
//!
//! - `payment_id`: our payment id (a UUID; `payments.payment_id`, also in PaymentSucceeded);
//! - `amount_cents`: the captured amount as a whole number of cents, `0` or more (no decimal point,
//!   no sign, no currency);
//! - `time`: when the provider captured it, RFC 3339 (`2026-03-01T10:15:00Z`).
//!
//! The header must be exactly these three names in this order; fields may be quoted and are
//! trimmed. Anything else is refused with the file name and the line number, and nothing is
//! compared. A payment id given twice is refused too.
//!
//! # Comparison
//!
//! Rows are matched by payment id, whatever their time. Ours are the payments charged on the
//! business date (by `payments.created_at`, UTC) with an amount above zero, whether they are still
//! CHARGED or were REFUNDED since (a refund does not undo the capture of that day):
//! - `missing_ours`: a row whose payment id is not in our ledger, or only as a FAILED payment;
//! - `missing_theirs`: one of ours that is not in the file;
//! - `amount_mismatch`: both have it, with different amounts.

use super::difference::{Difference, Entity, Kind};
use crate::output::cents;
use jetsaga_contracts::{OrderId, Producer};
use payment_service::domain::PaymentStatus;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

/// The header line, in order.
pub const HEADER: [&str; 3] = ["payment_id", "amount_cents", "time"];

/// One row of a settlement file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRow {
    /// The line it was on (the header is line 1).
    pub line: u64,
    pub payment_id: Uuid,
    pub amount_cents: i64,
    pub time: OffsetDateTime,
}

/// A settlement file that cannot be read as one.
#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    #[error("cannot read the settlement file {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("settlement file {file}: the header must be `{}`, found `{found}`", HEADER.join(","))]
    Header { file: String, found: String },
    #[error("settlement file {file}, line {line}: {reason}")]
    Row {
        file: String,
        line: u64,
        reason: String,
    },
}

/// Reads and checks a settlement file.
pub fn read(path: &Path) -> Result<Vec<SettlementRow>, SettlementError> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| SettlementError::Io {
        file: file.clone(),
        source,
    })?;
    parse(f, &file)
}

/// Parses settlement CSV from `input`; `file` names it in errors.
pub fn parse(input: impl Read, file: &str) -> Result<Vec<SettlementRow>, SettlementError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(input);
    let row_error = |line: u64, reason: String| SettlementError::Row {
        file: file.to_owned(),
        line,
        reason,
    };
    let csv_error = |e: csv::Error| {
        let line = e.position().map_or(0, csv::Position::line);
        match e.into_kind() {
            csv::ErrorKind::Io(source) => SettlementError::Io {
                file: file.to_owned(),
                source,
            },
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => row_error(
                line,
                format!(
                    "{len} fields, expected {expected_len} ({})",
                    HEADER.join(",")
                ),
            ),
            csv::ErrorKind::Utf8 { .. } => row_error(line, "not valid UTF-8".into()),
            other => row_error(line, format!("{other:?}")),
        }
    };
    let header = reader.headers().map_err(csv_error)?.clone();
    if header.iter().ne(HEADER) {
        return Err(SettlementError::Header {
            file: file.to_owned(),
            found: header.iter().collect::<Vec<_>>().join(","),
        });
    }
    let mut rows = Vec::new();
    let mut seen: HashMap<Uuid, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = |i: usize| record.get(i).unwrap_or_default();
        let payment_id = Uuid::parse_str(field(0))
            .map_err(|_| row_error(line, format!("payment_id {:?} is not a UUID", field(0))))?;
        let amount_cents = parse_cents(field(1)).map_err(|reason| row_error(line, reason))?;
        let time = OffsetDateTime::parse(field(2), &Rfc3339).map_err(|_| {
            row_error(
                line,
                format!(
                    "time {:?} is not an RFC 3339 timestamp such as 2026-03-01T10:15:00Z",
                    field(2)
                ),
            )
        })?;
        if let Some(first) = seen.insert(payment_id, line) {
            return Err(row_error(
                line,
                format!("payment {payment_id} is already on line {first}"),
            ));
        }
        rows.push(SettlementRow {
            line,
            payment_id,
            amount_cents,
            time,
        });
    }
    Ok(rows)
}

/// A whole, non-negative number of cents, digits only.
fn parse_cents(text: &str) -> Result<i64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "amount_cents {text:?} is not a whole number of cents (write 12.50 as 1250)"
        ));
    }
    text.parse::<i64>()
        .map_err(|_| format!("amount_cents {text} is too large"))
}

/// One payment of our ledger, as the settlement comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPayment {
    pub payment_id: Uuid,
    pub order_id: OrderId,
    pub amount_cents: i64,
    pub status: PaymentStatus,
    pub created_at: OffsetDateTime,
}

/// Compares the file with our ledger.
///
/// `ours` are the payments charged on the business date (CHARGED or REFUNDED since); `known` are
/// the ledger's payments whatever their date, at least those the file names (a row settled on a
/// day boundary may have been charged by us on the day before or after).
pub fn compare(
    file: &[SettlementRow],
    ours: &[LedgerPayment],
    known: &HashMap<Uuid, LedgerPayment>,
) -> Vec<Difference> {
    let in_file: BTreeMap<Uuid, &SettlementRow> = file.iter().map(|r| (r.payment_id, r)).collect();
    let mut out = Vec::new();
    for row in file {
        let entity = Entity::Payment(row.payment_id);
        let ledger = ours
            .iter()
            .find(|p| p.payment_id == row.payment_id)
            .or_else(|| known.get(&row.payment_id));
        match ledger {
            None => out.push(Difference::for_person(
                Kind::MissingOurs,
                Producer::PAYMENT,
                entity,
                format!(
                    "settled {} at {} (line {}), not in our ledger",
                    cents(row.amount_cents),
                    crate::output::timestamp(row.time),
                    row.line
                ),
            )),
            Some(p) if p.status == PaymentStatus::Failed => out.push(Difference::for_person(
                Kind::MissingOurs,
                Producer::PAYMENT,
                entity,
                format!(
                    "settled {} (line {}), but our payment for order {} FAILED: we took nothing",
                    cents(row.amount_cents),
                    row.line,
                    p.order_id
                ),
            )),
            Some(p) if p.amount_cents != row.amount_cents => out.push(Difference::for_person(
                Kind::AmountMismatch,
                Producer::PAYMENT,
                entity,
                format!(
                    "settled {} (line {}), our ledger charged {} for order {}",
                    cents(row.amount_cents),
                    row.line,
                    cents(p.amount_cents),
                    p.order_id
                ),
            )),
            Some(_) => {}
        }
    }
    for p in ours {
        if p.amount_cents > 0
            && p.status != PaymentStatus::Failed
            && !in_file.contains_key(&p.payment_id)
        {
            out.push(Difference::for_person(
                Kind::MissingTheirs,
                Producer::PAYMENT,
                Entity::Payment(p.payment_id),
                format!(
                    "we charged {} for order {} at {} ({}), not in the settlement file",
                    cents(p.amount_cents),
                    p.order_id,
                    crate::output::timestamp(p.created_at),
                    p.status.as_str()
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: OffsetDateTime = time::macros::datetime!(2026-03-01 10:15 UTC);

    fn parse_str(text: &str) -> Result<Vec<SettlementRow>, SettlementError> {
        parse(text.as_bytes(), "settle.csv")
    }

    fn ours(amount_cents: i64, status: PaymentStatus) -> LedgerPayment {
        LedgerPayment {
            payment_id: Uuid::new_v4(),
            order_id: OrderId::new_random(),
            amount_cents,
            status,
            created_at: T,
        }
    }

    fn row(p: &LedgerPayment, amount_cents: i64) -> SettlementRow {
        SettlementRow {
            line: 2,
            payment_id: p.payment_id,
            amount_cents,
            time: T,
        }
    }

    #[test]
    fn a_well_formed_file_parses_with_line_numbers() {
        let id = Uuid::new_v4();
        let rows = parse_str(&format!(
            "payment_id,amount_cents,time\n{id},2500,2026-03-01T10:15:00Z\n\" {id2} \",0,2026-03-01T10:15:00+01:00\n",
            id2 = Uuid::nil()
        ))
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            SettlementRow {
                line: 2,
                payment_id: id,
                amount_cents: 2500,
                time: T
            }
        );
        assert_eq!(rows[1].line, 3);
        assert_eq!(rows[1].time, T - time::Duration::hours(1));
        assert_eq!(parse_str("payment_id,amount_cents,time\n").unwrap(), vec![]);
    }

    #[test]
    fn bad_rows_are_refused_with_their_line_number() {
        let id = Uuid::new_v4();
        let good = format!("{id},100,2026-03-01T10:15:00Z");
        for (bad, expect) in [
            (
                "nope,100,2026-03-01T10:15:00Z".to_owned(),
                "line 3: payment_id \"nope\" is not a UUID",
            ),
            (
                format!("{},12.50,2026-03-01T10:15:00Z", Uuid::new_v4()),
                "line 3: amount_cents \"12.50\" is not a whole number of cents",
            ),
            (
                format!("{},-5,2026-03-01T10:15:00Z", Uuid::new_v4()),
                "line 3: amount_cents \"-5\"",
            ),
            (
                format!("{},5,yesterday", Uuid::new_v4()),
                "line 3: time \"yesterday\" is not an RFC 3339",
            ),
            (
                format!("{},5", Uuid::new_v4()),
                "line 3: 2 fields, expected 3",
            ),
            (
                good.clone(),
                &format!("line 3: payment {id} is already on line 2"),
            ),
        ] {
            let err =
                parse_str(&format!("payment_id,amount_cents,time\n{good}\n{bad}\n")).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("settlement file settle.csv, "), "{text}");
            assert!(text.contains(expect), "{text} should contain {expect}");
        }
    }

    #[test]
    fn a_wrong_header_is_refused() {
        for text in ["", "id,amount,time\n", "payment_id,time,amount_cents\n"] {
            let err = parse_str(text).unwrap_err();
            assert!(matches!(err, SettlementError::Header { .. }), "{err}");
            assert!(
                err.to_string()
                    .contains("the header must be `payment_id,amount_cents,time`"),
                "{err}"
            );
        }
    }

    #[test]
    fn each_kind_of_settlement_difference_is_found() {
        let matching = ours(1000, PaymentStatus::Charged);
        let other_amount = ours(2000, PaymentStatus::Refunded);
        let omitted = ours(3000, PaymentStatus::Charged);
        let free = ours(0, PaymentStatus::Charged);
        let failed = ours(500, PaymentStatus::Failed);
        let unknown = ours(700, PaymentStatus::Charged);
        let file = vec![
            row(&matching, 1000),
            row(&other_amount, 1900),
            row(&unknown, 700),
            row(&failed, 500),
        ];
        let known = HashMap::from([(failed.payment_id, failed.clone())]);
        let d = compare(
            &file,
            &[
                matching,
                other_amount.clone(),
                omitted.clone(),
                free,
                failed.clone(),
            ],
            &known,
        );
        let got: Vec<(Kind, Entity)> = d.iter().map(|d| (d.kind, d.entity.clone())).collect();
        assert_eq!(
            got,
            [
                (
                    Kind::AmountMismatch,
                    Entity::Payment(other_amount.payment_id)
                ),
                (Kind::MissingOurs, Entity::Payment(unknown.payment_id)),
                (Kind::MissingOurs, Entity::Payment(failed.payment_id)),
                (Kind::MissingTheirs, Entity::Payment(omitted.payment_id)),
            ]
        );
        assert!(d.iter().all(Difference::needs_person));
    }

    #[test]
    fn a_row_charged_by_us_on_another_day_is_matched_through_the_ledger() {
        let yesterday = ours(1000, PaymentStatus::Charged);
        let known = HashMap::from([(yesterday.payment_id, yesterday.clone())]);
        assert_eq!(compare(&[row(&yesterday, 1000)], &[], &known), vec![]);
    }
}

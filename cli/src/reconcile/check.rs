//! Reads the five databases, read-only, and finds the differences with [`super::rules`].
//!
//! 1. The orders (of the business date, when one is given), a page at a time in creation order;
//!    for each page, what payment, stock and voucher hold about those orders; each order judged.
//! 2. The other services' records of orders the order service does not know (with a date: those
//!    written on that date). The order database is asked after the record was read, so an order
//!    created meanwhile is never taken for a missing one.
//! 3. Conservation in the payment and the stock database, each in one statement (one snapshot).
//! 4. With a settlement file: the payments charged on the business date against it.
//!
//! The databases are read at slightly different moments while sagas go on. That is why running
//! and recently ended orders are not judged (see [`super::rules`]).

use super::difference::Difference;
use super::rules::{
    self, Clock, LineRow, OrderFacts, OrderRow, PaymentRow, PointsRow, ReservationRow, Verdict,
    VoucherRow,
};
use super::settlement::{self, LedgerPayment, SettlementRow};
use crate::targets::Targets;
use anyhow::Context as _;
use jetsaga_contracts::{CustomerId, OrderId, Producer};
use order_service::domain::OrderStatus;
use payment_service::domain::PaymentStatus;
use points_service::domain::HoldStatus;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use stock_service::domain::ReservationStatus;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;
use voucher_service::domain::VoucherStatus;

/// Orders (or other records) read per query.
const PAGE: i64 = 500;

/// A UTC business date: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusinessDay {
    pub date: Date,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

impl BusinessDay {
    pub fn new(date: Date) -> Self {
        let start = date.midnight().assume_utc();
        BusinessDay {
            date,
            start,
            end: start + Duration::days(1),
        }
    }
}

/// Read-only pools on the five databases.
#[derive(Debug, Clone)]
pub struct Sources {
    order: PgPool,
    payment: PgPool,
    stock: PgPool,
    voucher: PgPool,
    points: PgPool,
}

impl Sources {
    pub async fn connect(targets: &Targets) -> anyhow::Result<Self> {
        Ok(Sources {
            order: targets.read_only_pool(Producer::ORDER).await?,
            payment: targets.read_only_pool(Producer::PAYMENT).await?,
            stock: targets.read_only_pool(Producer::STOCK).await?,
            voucher: targets.read_only_pool(Producer::VOUCHER).await?,
            points: targets.read_only_pool(Producer::POINTS).await?,
        })
    }

    /// The read-only pool on a service's database (the console reads through these too).
    pub fn pool(&self, producer: Producer) -> &PgPool {
        match producer {
            Producer::ORDER => &self.order,
            Producer::PAYMENT => &self.payment,
            Producer::STOCK => &self.stock,
            Producer::VOUCHER => &self.voucher,
            _ => &self.points,
        }
    }
}

/// What to check.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub day: Option<BusinessDay>,
    pub slack: Duration,
    pub settle: Duration,
    /// Draw a progress bar (on stderr, when it is a terminal).
    pub progress: bool,
}

impl Options {
    /// The check of a system that has gone quiet (the end of a benchmark or a chaos run): every
    /// order is judged at once, with no settle time, and one PENDING 30 s past its deadline is
    /// stuck.
    pub fn quiet() -> Options {
        Options {
            day: None,
            slack: Duration::seconds(30),
            settle: Duration::ZERO,
            progress: false,
        }
    }
}

/// The orders still PENDING.
pub async fn pending_orders(src: &Sources) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar("SELECT order_id FROM orders WHERE status = 'PENDING'")
        .fetch_all(&src.order)
        .await
        .context("reading the pending orders from the order database")
}

/// What one check found.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub differences: Vec<Difference>,
    /// Orders read.
    pub orders: u64,
    /// Of those, PENDING within their deadline plus the slack.
    pub running: u64,
    /// Of those, ended less than the settle time ago (judged on a later run).
    pub settling: u64,
    /// Rows of the settlement file compared, when one was given.
    pub settlement_rows: Option<usize>,
}

/// The order database's time now, with the options' slack and settle.
async fn clock(src: &Sources, opts: &Options) -> anyhow::Result<Clock> {
    let now: OffsetDateTime = sqlx::query_scalar("SELECT now()")
        .fetch_one(&src.order)
        .await
        .context("reading the time of the order database")?;
    Ok(Clock {
        now,
        slack: opts.slack,
        settle: opts.settle,
    })
}

/// Runs every check once.
pub async fn run(
    src: &Sources,
    opts: &Options,
    settlement_file: Option<&[SettlementRow]>,
) -> anyhow::Result<Findings> {
    let clock = clock(src, opts).await?;
    let mut findings = Findings::default();
    orders(src, opts, &clock, &mut findings).await?;
    orphan_payments(src, opts.day, &mut findings.differences).await?;
    orphan_reservations(src, opts.day, &mut findings.differences).await?;
    orphan_vouchers(src, opts.day, &mut findings.differences).await?;
    accounts(src, &mut findings.differences).await?;
    skus(src, &mut findings.differences).await?;
    points_books(src, &mut findings.differences).await?;
    if let (Some(file), Some(day)) = (settlement_file, opts.day) {
        findings
            .differences
            .extend(settlement(src, day, file).await?);
        findings.settlement_rows = Some(file.len());
    }
    Ok(findings)
}

/// The verdict on one order, by the same rules as a full check (the console shows it beside the
/// saga); `None` for an order the order database does not hold.
pub async fn one_order(
    src: &Sources,
    order_id: OrderId,
    opts: &Options,
) -> anyhow::Result<Option<Verdict>> {
    let clock = clock(src, opts).await?;
    let row: Option<OrderTuple> = sqlx::query_as(
        "SELECT order_id, customer_id, status, total_cents, discount_cents, voucher_code,
                points_spent, deadline, updated_at, created_at
         FROM orders WHERE order_id = $1",
    )
    .bind(order_id.as_uuid())
    .fetch_optional(&src.order)
    .await
    .with_context(|| format!("reading order {order_id} from the order database"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let facts = facts_of(src, vec![order_row(row)?]).await?;
    Ok(facts.first().map(|f| rules::judge_order(f, &clock)))
}

fn bounds(day: Option<BusinessDay>) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
    (day.map(|d| d.start), day.map(|d| d.end))
}

type OrderTuple = (
    Uuid,
    Uuid,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    OffsetDateTime,
    OffsetDateTime,
    OffsetDateTime,
);

async fn orders(
    src: &Sources,
    opts: &Options,
    clock: &Clock,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let (from, to) = bounds(opts.day);
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders
         WHERE ($1::timestamptz IS NULL OR created_at >= $1)
           AND ($2::timestamptz IS NULL OR created_at < $2)",
    )
    .bind(from)
    .bind(to)
    .fetch_one(&src.order)
    .await
    .context("counting the orders in the order database")?;
    let bar = opts
        .progress
        .then(|| crate::progress::bar(u64::try_from(total).ok(), "orders"));

    let mut after: Option<(OffsetDateTime, Uuid)> = None;
    loop {
        let rows: Vec<OrderTuple> = sqlx::query_as(
            "SELECT order_id, customer_id, status, total_cents, discount_cents, voucher_code,
                    points_spent, deadline, updated_at, created_at
             FROM orders
             WHERE ($1::timestamptz IS NULL OR created_at >= $1)
               AND ($2::timestamptz IS NULL OR created_at < $2)
               AND ($3::timestamptz IS NULL OR (created_at, order_id) > ($3, $4::uuid))
             ORDER BY created_at, order_id
             LIMIT $5",
        )
        .bind(from)
        .bind(to)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(PAGE)
        .fetch_all(&src.order)
        .await
        .context("reading orders from the order database")?;
        let Some(last) = rows.last() else {
            break;
        };
        after = Some((last.9, last.0));
        let page = rows.len();
        let orders = rows
            .into_iter()
            .map(order_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        for facts in facts_of(src, orders).await? {
            findings.orders += 1;
            match rules::judge_order(&facts, clock) {
                Verdict::Running => findings.running += 1,
                Verdict::Settling => findings.settling += 1,
                Verdict::Judged(d) => findings.differences.extend(d),
            }
        }
        if let Some(bar) = &bar {
            bar.inc(page as u64);
        }
        if (page as i64) < PAGE {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

fn order_row(r: OrderTuple) -> anyhow::Result<OrderRow> {
    let (
        order_id,
        customer_id,
        status,
        total_cents,
        discount_cents,
        voucher_code,
        points_spent,
        deadline,
        updated_at,
        _,
    ) = r;
    Ok(OrderRow {
        order_id: OrderId::from_uuid(order_id),
        customer_id: CustomerId::from_uuid(customer_id),
        status: OrderStatus::parse(&status)
            .with_context(|| format!("order {order_id} in the order database"))?,
        total_cents,
        discount_cents,
        voucher_code,
        points_spent,
        deadline,
        updated_at,
    })
}

/// What the five services hold about these orders.
async fn facts_of(src: &Sources, orders: Vec<OrderRow>) -> anyhow::Result<Vec<OrderFacts>> {
    let ids: Vec<Uuid> = orders.iter().map(|o| *o.order_id.as_uuid()).collect();
    let codes: Vec<String> = orders
        .iter()
        .filter_map(|o| o.voucher_code.clone())
        .collect();

    let mut lines: HashMap<Uuid, Vec<LineRow>> = HashMap::new();
    let rows: Vec<(Uuid, String, i32, i64)> = sqlx::query_as(
        "SELECT order_id, sku, quantity, unit_price_cents FROM order_lines
         WHERE order_id = ANY($1) ORDER BY order_id, line_no",
    )
    .bind(&ids)
    .fetch_all(&src.order)
    .await
    .context("reading order lines from the order database")?;
    for (order_id, sku, quantity, unit_price_cents) in rows {
        lines.entry(order_id).or_default().push(LineRow {
            sku,
            quantity: i64::from(quantity),
            unit_price_cents,
        });
    }

    let mut payments: HashMap<Uuid, PaymentRow> = HashMap::new();
    for p in payments_where(&src.payment, "order_id = ANY($1)", &ids).await? {
        payments.insert(*p.order_id.as_uuid(), p);
    }

    let mut reservations: HashMap<Uuid, Vec<ReservationRow>> = HashMap::new();
    for r in reservations_of(&src.stock, &ids).await? {
        reservations
            .entry(*r.order_id.as_uuid())
            .or_default()
            .push(r);
    }

    let vouchers: Vec<VoucherRow> = voucher_rows(
        sqlx::query_as(
            "SELECT code, discount_cents, status, order_id FROM vouchers
             WHERE order_id = ANY($1) OR code = ANY($2)",
        )
        .bind(&ids)
        .bind(&codes)
        .fetch_all(&src.voucher)
        .await
        .context("reading vouchers from the voucher database")?,
    )?;

    let mut points: HashMap<Uuid, PointsRow> = HashMap::new();
    let rows: Vec<(Uuid, i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT order_id, points, status, earned FROM holds WHERE order_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&src.points)
    .await
    .context("reading the orders' points from the points database")?;
    for (order_id, held, status, earned) in rows {
        let status = HoldStatus::parse(&status)
            .with_context(|| format!("points of order {order_id} in the points database"))?;
        points.insert(
            order_id,
            PointsRow {
                points: held,
                status,
                earned,
            },
        );
    }

    Ok(orders
        .into_iter()
        .map(|order| {
            let id = *order.order_id.as_uuid();
            let relevant = vouchers
                .iter()
                .filter(|v| {
                    v.order_id == Some(order.order_id)
                        || order.voucher_code.as_deref() == Some(v.code.as_str())
                })
                .cloned()
                .collect();
            OrderFacts {
                lines: lines.remove(&id).unwrap_or_default(),
                payment: payments.remove(&id),
                reservations: reservations.remove(&id).unwrap_or_default(),
                vouchers: relevant,
                points: points.remove(&id),
                order,
            }
        })
        .collect())
}

type PaymentTuple = (Uuid, Uuid, Uuid, i64, String, OffsetDateTime);

fn payment_row(r: PaymentTuple) -> anyhow::Result<PaymentRow> {
    let (order_id, payment_id, customer_id, amount_cents, status, created_at) = r;
    Ok(PaymentRow {
        order_id: OrderId::from_uuid(order_id),
        payment_id,
        customer_id: CustomerId::from_uuid(customer_id),
        amount_cents,
        status: PaymentStatus::parse(&status)
            .with_context(|| format!("payment of order {order_id} in the payment database"))?,
        created_at,
    })
}

/// Payments matching `condition` over `$1` (a uuid array).
async fn payments_where(
    pool: &PgPool,
    condition: &str,
    ids: &[Uuid],
) -> anyhow::Result<Vec<PaymentRow>> {
    let rows: Vec<PaymentTuple> = sqlx::query_as(&format!(
        "SELECT order_id, payment_id, customer_id, amount_cents, status, created_at
         FROM payments WHERE {condition}"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await
    .context("reading payments from the payment database")?;
    rows.into_iter().map(payment_row).collect()
}

async fn reservations_of(pool: &PgPool, ids: &[Uuid]) -> anyhow::Result<Vec<ReservationRow>> {
    let rows: Vec<(Uuid, String, i64, String)> = sqlx::query_as(
        "SELECT order_id, sku, quantity, status FROM reservations
         WHERE order_id = ANY($1) ORDER BY order_id, sku",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
    .context("reading reservations from the stock database")?;
    rows.into_iter()
        .map(|(order_id, sku, quantity, status)| {
            let status = ReservationStatus::parse(&status).with_context(|| {
                format!(
                    "reservation of order {order_id}, sku {sku}, in the stock database has status {status:?}"
                )
            })?;
            Ok(ReservationRow {
                order_id: OrderId::from_uuid(order_id),
                sku,
                quantity,
                status,
            })
        })
        .collect()
}

fn voucher_rows(rows: Vec<(String, i64, String, Option<Uuid>)>) -> anyhow::Result<Vec<VoucherRow>> {
    rows.into_iter()
        .map(|(code, discount_cents, status, order_id)| {
            Ok(VoucherRow {
                status: VoucherStatus::parse(&status)
                    .with_context(|| format!("voucher {code} in the voucher database"))?,
                code,
                discount_cents,
                order_id: order_id.map(OrderId::from_uuid),
            })
        })
        .collect()
}

/// Which of `ids` the order service knows.
async fn known_orders(src: &Sources, ids: &[Uuid]) -> anyhow::Result<HashSet<Uuid>> {
    let known: Vec<Uuid> =
        sqlx::query_scalar("SELECT order_id FROM orders WHERE order_id = ANY($1)")
            .bind(ids)
            .fetch_all(&src.order)
            .await
            .context("looking orders up in the order database")?;
    Ok(known.into_iter().collect())
}

async fn orphan_payments(
    src: &Sources,
    day: Option<BusinessDay>,
    out: &mut Vec<Difference>,
) -> anyhow::Result<()> {
    let (from, to) = bounds(day);
    let mut after = Uuid::nil();
    loop {
        let rows: Vec<PaymentTuple> = sqlx::query_as(
            "SELECT order_id, payment_id, customer_id, amount_cents, status, created_at
             FROM payments
             WHERE order_id > $1
               AND ($2::timestamptz IS NULL OR created_at >= $2)
               AND ($3::timestamptz IS NULL OR created_at < $3)
             ORDER BY order_id LIMIT $4",
        )
        .bind(after)
        .bind(from)
        .bind(to)
        .bind(PAGE)
        .fetch_all(&src.payment)
        .await
        .context("reading payments from the payment database")?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.0;
        let full = rows.len() as i64 == PAGE;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        let known = known_orders(src, &ids).await?;
        for row in rows {
            if !known.contains(&row.0) {
                out.push(rules::orphan_payment(&payment_row(row)?));
            }
        }
        if !full {
            return Ok(());
        }
    }
}

async fn orphan_reservations(
    src: &Sources,
    day: Option<BusinessDay>,
    out: &mut Vec<Difference>,
) -> anyhow::Result<()> {
    let (from, to) = bounds(day);
    let mut after = Uuid::nil();
    loop {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT order_id FROM reservations
             WHERE order_id > $1
               AND ($2::timestamptz IS NULL OR created_at >= $2)
               AND ($3::timestamptz IS NULL OR created_at < $3)
             ORDER BY order_id LIMIT $4",
        )
        .bind(after)
        .bind(from)
        .bind(to)
        .bind(PAGE)
        .fetch_all(&src.stock)
        .await
        .context("reading reservations from the stock database")?;
        let Some(last) = ids.last() else {
            return Ok(());
        };
        after = *last;
        let known = known_orders(src, &ids).await?;
        let unknown: Vec<Uuid> = ids
            .iter()
            .filter(|id| !known.contains(id))
            .copied()
            .collect();
        if !unknown.is_empty() {
            let mut by_order: Vec<(OrderId, Vec<ReservationRow>)> = Vec::new();
            for r in reservations_of(&src.stock, &unknown).await? {
                match by_order.last_mut() {
                    Some((id, rows)) if *id == r.order_id => rows.push(r),
                    _ => by_order.push((r.order_id, vec![r])),
                }
            }
            for (order_id, rows) in by_order {
                out.push(rules::orphan_reservations(order_id, &rows));
            }
        }
        if (ids.len() as i64) < PAGE {
            return Ok(());
        }
    }
}

async fn orphan_vouchers(
    src: &Sources,
    day: Option<BusinessDay>,
    out: &mut Vec<Difference>,
) -> anyhow::Result<()> {
    let (from, to) = bounds(day);
    let mut after = Uuid::nil();
    loop {
        let rows = voucher_rows(
            sqlx::query_as(
                "SELECT code, discount_cents, status, order_id FROM vouchers
                 WHERE order_id IS NOT NULL AND order_id > $1
                   AND ($2::timestamptz IS NULL OR updated_at >= $2)
                   AND ($3::timestamptz IS NULL OR updated_at < $3)
                 ORDER BY order_id LIMIT $4",
            )
            .bind(after)
            .bind(from)
            .bind(to)
            .bind(PAGE)
            .fetch_all(&src.voucher)
            .await
            .context("reading vouchers from the voucher database")?,
        )?;
        let Some(last) = rows.last().and_then(|v| v.order_id) else {
            return Ok(());
        };
        after = *last.as_uuid();
        let ids: Vec<Uuid> = rows
            .iter()
            .filter_map(|v| v.order_id.map(|o| *o.as_uuid()))
            .collect();
        let known = known_orders(src, &ids).await?;
        for v in &rows {
            if v.order_id.is_some_and(|o| !known.contains(o.as_uuid())) {
                out.extend(rules::orphan_voucher(v));
            }
        }
        if (rows.len() as i64) < PAGE {
            return Ok(());
        }
    }
}

/// Money credited = balances + CHARGED payments, per customer, in one snapshot.
async fn accounts(src: &Sources, out: &mut Vec<Difference>) -> anyhow::Result<()> {
    let rows: Vec<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "WITH credited AS (
             SELECT customer_id, sum(amount_cents)::bigint AS credited FROM credits
             GROUP BY customer_id),
         charged AS (
             SELECT customer_id, sum(amount_cents)::bigint AS charged FROM payments
             WHERE status = 'CHARGED' GROUP BY customer_id),
         ids AS (
             SELECT customer_id FROM accounts
             UNION SELECT customer_id FROM credited
             UNION SELECT customer_id FROM charged)
         SELECT ids.customer_id, coalesce(c.credited, 0), coalesce(a.balance_cents, 0),
                coalesce(p.charged, 0)
         FROM ids
         LEFT JOIN accounts a USING (customer_id)
         LEFT JOIN credited c USING (customer_id)
         LEFT JOIN charged p USING (customer_id)
         WHERE coalesce(c.credited, 0) <> coalesce(a.balance_cents, 0) + coalesce(p.charged, 0)
         ORDER BY ids.customer_id",
    )
    .fetch_all(&src.payment)
    .await
    .context("checking the accounts' conservation in the payment database")?;
    out.extend(
        rows.into_iter()
            .filter_map(|(customer, credited, balance, charged)| {
                rules::account_difference(
                    CustomerId::from_uuid(customer),
                    credited,
                    balance,
                    charged,
                )
            }),
    );
    Ok(())
}

/// Points awarded + earned = available + held + spent, per customer, in one snapshot.
async fn points_books(src: &Sources, out: &mut Vec<Difference>) -> anyhow::Result<()> {
    let rows: Vec<(Uuid, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "WITH awarded AS (
             SELECT customer_id, sum(points)::bigint AS awarded FROM awards GROUP BY customer_id),
         spent AS (
             SELECT customer_id, sum(points)::bigint AS spent, sum(earned)::bigint AS earned
             FROM holds WHERE status = 'SPENT' GROUP BY customer_id),
         ids AS (
             SELECT customer_id FROM accounts
             UNION SELECT customer_id FROM awarded
             UNION SELECT customer_id FROM spent)
         SELECT ids.customer_id, coalesce(w.awarded, 0), coalesce(s.earned, 0),
                coalesce(a.available, 0), coalesce(a.held, 0), coalesce(s.spent, 0)
         FROM ids
         LEFT JOIN accounts a USING (customer_id)
         LEFT JOIN awarded w USING (customer_id)
         LEFT JOIN spent s USING (customer_id)
         WHERE coalesce(w.awarded, 0) + coalesce(s.earned, 0)
               <> coalesce(a.available, 0) + coalesce(a.held, 0) + coalesce(s.spent, 0)
         ORDER BY ids.customer_id",
    )
    .fetch_all(&src.points)
    .await
    .context("checking the points' conservation in the points database")?;
    out.extend(rows.into_iter().filter_map(
        |(customer, awarded, earned, available, held, spent)| {
            rules::points_difference(
                CustomerId::from_uuid(customer),
                awarded,
                earned,
                available,
                held,
                spent,
            )
        },
    ));
    Ok(())
}

/// Units added = available + reserved = available + held by reservations, per SKU, in one
/// snapshot.
async fn skus(src: &Sources, out: &mut Vec<Difference>) -> anyhow::Result<()> {
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "WITH added AS (
             SELECT sku, sum(delta)::bigint AS added FROM adjustments GROUP BY sku),
         held AS (
             SELECT sku, sum(quantity)::bigint AS held FROM reservations
             WHERE status = 'HELD' GROUP BY sku)
         SELECT s.sku, coalesce(a.added, 0), s.available, s.reserved, coalesce(h.held, 0)
         FROM stock s
         LEFT JOIN added a USING (sku)
         LEFT JOIN held h USING (sku)
         WHERE coalesce(a.added, 0) <> s.available + s.reserved
            OR s.reserved <> coalesce(h.held, 0)
         ORDER BY s.sku",
    )
    .fetch_all(&src.stock)
    .await
    .context("checking the stock's conservation in the stock database")?;
    out.extend(
        rows.into_iter()
            .filter_map(|(sku, added, available, reserved, held)| {
                rules::sku_difference(&sku, added, available, reserved, held)
            }),
    );
    Ok(())
}

/// The payments charged on `day` against the provider's file.
async fn settlement(
    src: &Sources,
    day: BusinessDay,
    file: &[SettlementRow],
) -> anyhow::Result<Vec<Difference>> {
    let ledger = |rows: Vec<PaymentTuple>| -> anyhow::Result<Vec<LedgerPayment>> {
        rows.into_iter()
            .map(|r| {
                let p = payment_row(r)?;
                Ok(LedgerPayment {
                    payment_id: p.payment_id,
                    order_id: p.order_id,
                    amount_cents: p.amount_cents,
                    status: p.status,
                    created_at: p.created_at,
                })
            })
            .collect()
    };
    const COLUMNS: &str = "order_id, payment_id, customer_id, amount_cents, status, created_at";
    let ours = ledger(
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM payments
             WHERE created_at >= $1 AND created_at < $2 AND status <> 'FAILED'
             ORDER BY created_at, payment_id"
        ))
        .bind(day.start)
        .bind(day.end)
        .fetch_all(&src.payment)
        .await
        .with_context(|| {
            format!(
                "reading the payments of {} from the payment database",
                day.date
            )
        })?,
    )?;
    let named: Vec<Uuid> = file.iter().map(|r| r.payment_id).collect();
    let known = ledger(
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM payments WHERE payment_id = ANY($1)"
        ))
        .bind(&named)
        .fetch_all(&src.payment)
        .await
        .context("looking the settlement file's payments up in the payment database")?,
    )?;
    let known: HashMap<Uuid, LedgerPayment> =
        known.into_iter().map(|p| (p.payment_id, p)).collect();
    Ok(settlement::compare(file, &ours, &known))
}

//! The order service's SQL: products, orders and their lines. Runtime queries with typed rows; the
//! integration tests run every one of them against a real PostgreSQL.

use crate::domain::{parse_cancel_reason, OrderStatus};
use jetsaga_contracts::{CancelReason, CustomerId, Money, OrderId, Points, Sku, VoucherCode};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgExecutor, Row};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// One order as stored, with typed fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    pub total: Money,
    /// `None` until PointsReserved (which carries the voucher's discount) has been handled.
    pub discount: Option<Money>,
    pub voucher_code: Option<VoucherCode>,
    /// The points the customer asked to spend, if any.
    pub points_requested: Option<Points>,
    /// `None` until PointsReserved has been handled, then the points held for the order.
    pub points_spent: Option<Points>,
    pub cancel_reason: Option<CancelReason>,
    pub deadline: OffsetDateTime,
    /// StockReserved has been handled; the order confirms once the discount is known too.
    pub stock_reserved: bool,
}

fn decode_err(column: &str, e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    }
}

fn money(row: &PgRow, column: &str) -> Result<Money, sqlx::Error> {
    Money::from_cents(row.try_get(column)?).map_err(|e| decode_err(column, e))
}

fn points(row: &PgRow, column: &str) -> Result<Option<Points>, sqlx::Error> {
    let value: Option<i64> = row.try_get(column)?;
    value
        .map(Points::new)
        .transpose()
        .map_err(|e| decode_err(column, e))
}

/// Decoding checks every column against its type, so a row that breaks a rule fails loudly here
/// instead of travelling on as a string.
impl<'r> FromRow<'r, PgRow> for Order {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let discount: Option<i64> = row.try_get("discount_cents")?;
        let voucher_code: Option<String> = row.try_get("voucher_code")?;
        let cancel_reason: Option<String> = row.try_get("cancel_reason")?;
        Ok(Order {
            order_id: OrderId::from_uuid(row.try_get("order_id")?),
            customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
            status: OrderStatus::parse(&status).map_err(|e| decode_err("status", e))?,
            total: money(row, "total_cents")?,
            discount: discount
                .map(Money::from_cents)
                .transpose()
                .map_err(|e| decode_err("discount_cents", e))?,
            voucher_code: voucher_code
                .map(VoucherCode::parse)
                .transpose()
                .map_err(|e| decode_err("voucher_code", e))?,
            cancel_reason: cancel_reason
                .as_deref()
                .map(parse_cancel_reason)
                .transpose()
                .map_err(|e| decode_err("cancel_reason", e))?,
            points_requested: points(row, "points_requested")?,
            points_spent: points(row, "points_spent")?,
            deadline: row.try_get("deadline")?,
            stock_reserved: row.try_get("stock_reserved")?,
        })
    }
}

const ORDER_COLUMNS: &str = "order_id, customer_id, status, total_cents, discount_cents, \
                             voucher_code, points_requested, points_spent, cancel_reason, \
                             deadline, stock_reserved";

/// One priced line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price: Money,
}

impl<'r> FromRow<'r, PgRow> for Line {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let sku: String = row.try_get("sku")?;
        let quantity: i32 = row.try_get("quantity")?;
        Ok(Line {
            sku: Sku::parse(sku).map_err(|e| decode_err("sku", e))?,
            quantity: u32::try_from(quantity).map_err(|e| decode_err("quantity", e))?,
            unit_price: money(row, "unit_price_cents")?,
        })
    }
}

/// Sets a product's name and price.
pub async fn upsert_product(
    conn: &mut PgConnection,
    sku: &Sku,
    name: &str,
    price: Money,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO products (sku, name, price_cents) VALUES ($1, $2, $3)
         ON CONFLICT (sku) DO UPDATE
         SET name = EXCLUDED.name, price_cents = EXCLUDED.price_cents, updated_at = now()",
    )
    .bind(sku.as_str())
    .bind(name)
    .bind(price.cents())
    .execute(conn)
    .await?;
    Ok(())
}

/// The current prices of those of `skus` that are known.
pub async fn prices<'e>(
    db: impl PgExecutor<'e>,
    skus: &[Sku],
) -> Result<HashMap<Sku, Money>, sqlx::Error> {
    let keys: Vec<&str> = skus.iter().map(Sku::as_str).collect();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT sku, price_cents FROM products WHERE sku = ANY($1)")
            .bind(&keys)
            .fetch_all(db)
            .await?;
    rows.into_iter()
        .map(|(sku, cents)| {
            let sku = Sku::parse(sku).map_err(|e| decode_err("sku", e))?;
            let price = Money::from_cents(cents).map_err(|e| decode_err("price_cents", e))?;
            Ok((sku, price))
        })
        .collect()
}

/// A new order, before it is stored.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub total: Money,
    pub voucher_code: Option<&'a VoucherCode>,
    pub points_requested: Option<Points>,
    pub deadline: OffsetDateTime,
    pub idempotency_key: Option<&'a str>,
    pub request_hash: &'a str,
    pub lines: &'a [Line],
}

/// Stores a PENDING order and its lines. Returns `false`, storing nothing, when another order
/// already holds the idempotency key (the caller then answers with that one).
pub async fn insert_order(
    conn: &mut PgConnection,
    order: &NewOrder<'_>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO orders (order_id, customer_id, status, total_cents, voucher_code, deadline,
                             idempotency_key, request_hash, points_requested)
         VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $7, $8)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(order.order_id.as_uuid())
    .bind(order.customer_id.as_uuid())
    .bind(order.total.cents())
    .bind(order.voucher_code.map(VoucherCode::as_str))
    .bind(order.deadline)
    .bind(order.idempotency_key)
    .bind(order.request_hash)
    .bind(order.points_requested.map(Points::get))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    // Every line in one statement.
    let skus: Vec<&str> = order.lines.iter().map(|l| l.sku.as_str()).collect();
    let quantities = order
        .lines
        .iter()
        .map(|l| i32::try_from(l.quantity).map_err(|e| decode_err("quantity", e)))
        .collect::<Result<Vec<i32>, _>>()?;
    let prices: Vec<i64> = order.lines.iter().map(|l| l.unit_price.cents()).collect();
    sqlx::query(
        "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price_cents)
         SELECT $1, l.line_no::integer, l.sku, l.quantity, l.price
         FROM unnest($2::text[], $3::integer[], $4::bigint[])
              WITH ORDINALITY AS l (sku, quantity, price, line_no)",
    )
    .bind(order.order_id.as_uuid())
    .bind(&skus)
    .bind(&quantities)
    .bind(&prices)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// The order that holds an idempotency key, with its request hash.
pub async fn order_by_idempotency_key<'e>(
    db: impl PgExecutor<'e>,
    key: &str,
) -> Result<Option<(OrderId, String)>, sqlx::Error> {
    let row: Option<(Uuid, Option<String>)> =
        sqlx::query_as("SELECT order_id, request_hash FROM orders WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(id, hash)| (OrderId::from_uuid(id), hash.unwrap_or_default())))
}

/// One order, unlocked (for reading).
pub async fn find_order<'e>(
    db: impl PgExecutor<'e>,
    order_id: OrderId,
) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = $1"
    ))
    .bind(order_id.as_uuid())
    .fetch_optional(db)
    .await
}

/// One order, locked until the end of the caller's transaction: every change of an order reads it
/// this way first, so two events of one order are applied one after the other.
pub async fn lock_order(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = $1 FOR UPDATE"
    ))
    .bind(order_id.as_uuid())
    .fetch_optional(conn)
    .await
}

/// The lines of an order, in their order.
pub async fn lines<'e>(
    db: impl PgExecutor<'e>,
    order_id: OrderId,
) -> Result<Vec<Line>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sku, quantity, unit_price_cents FROM order_lines
         WHERE order_id = $1 ORDER BY line_no",
    )
    .bind(order_id.as_uuid())
    .fetch_all(db)
    .await
}

/// Records the discount the voucher step granted and the points the points step held (both
/// arrive with PointsReserved), unless they are recorded already.
pub async fn record_deductions(
    conn: &mut PgConnection,
    order_id: OrderId,
    discount: Money,
    points: Points,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE orders SET discount_cents = $2, points_spent = $3, updated_at = now()
         WHERE order_id = $1 AND discount_cents IS NULL",
    )
    .bind(order_id.as_uuid())
    .bind(discount.cents())
    .bind(points.get())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records that StockReserved was handled for a pending order.
pub async fn record_stock_reserved(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders SET stock_reserved = true, updated_at = now()
         WHERE order_id = $1 AND status = 'PENDING'",
    )
    .bind(order_id.as_uuid())
    .execute(conn)
    .await?;
    Ok(())
}

/// PENDING → CONFIRMED.
pub async fn confirm(conn: &mut PgConnection, order_id: OrderId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders SET status = 'CONFIRMED', updated_at = now()
         WHERE order_id = $1 AND status = 'PENDING'",
    )
    .bind(order_id.as_uuid())
    .execute(conn)
    .await?;
    Ok(())
}

/// PENDING → CANCELLED with a reason.
pub async fn cancel(
    conn: &mut PgConnection,
    order_id: OrderId,
    reason: CancelReason,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders SET status = 'CANCELLED', cancel_reason = $2, updated_at = now()
         WHERE order_id = $1 AND status = 'PENDING'",
    )
    .bind(order_id.as_uuid())
    .bind(reason.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks up to `limit` pending orders whose deadline has passed, oldest deadline first. Orders
/// locked by a handler or another instance's sweep are skipped; the next sweep sees them again.
pub async fn lock_overdue(
    conn: &mut PgConnection,
    limit: usize,
) -> Result<Vec<OrderId>, sqlx::Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT order_id FROM orders
         WHERE status = 'PENDING' AND deadline < now()
         ORDER BY deadline
         LIMIT $1
         FOR UPDATE SKIP LOCKED",
    )
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    Ok(ids.into_iter().map(OrderId::from_uuid).collect())
}

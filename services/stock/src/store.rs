//! The stock service's SQL, one function per statement. Every function runs on the caller's
//! connection, so the caller decides the transaction.
//!
//! Rows that are changed are first locked with `SELECT ... FOR UPDATE`, always sorted by SKU, so
//! two transactions that lock overlapping SKUs take the locks in the same order and cannot
//! deadlock.

use crate::domain::ReservationStatus;
use jetsaga_contracts::{OrderId, Sku, StockLine};
use sqlx::PgConnection;
use uuid::Uuid;

/// One SKU's units.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StockRow {
    pub sku: String,
    pub available: i64,
    pub reserved: i64,
}

/// One order's hold on one SKU.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReservationRow {
    pub sku: String,
    pub quantity: i64,
    pub status: String,
}

/// The stock of one SKU, unlocked (for reads).
pub async fn find(conn: &mut PgConnection, sku: &Sku) -> Result<Option<StockRow>, sqlx::Error> {
    sqlx::query_as("SELECT sku, available, reserved FROM stock WHERE sku = $1")
        .bind(sku.as_str())
        .fetch_optional(conn)
        .await
}

/// Creates an empty row for `sku` unless there is one, so a positive adjustment of a new SKU can
/// lock it like any other.
pub async fn ensure_row(conn: &mut PgConnection, sku: &Sku) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO stock (sku, available, reserved) VALUES ($1, 0, 0) ON CONFLICT (sku) DO NOTHING",
    )
    .bind(sku.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the rows of `skus` that exist, in SKU order.
pub async fn lock(conn: &mut PgConnection, skus: &[&Sku]) -> Result<Vec<StockRow>, sqlx::Error> {
    let mut keys: Vec<&str> = skus.iter().map(|s| s.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query_as(
        "SELECT sku, available, reserved FROM stock WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
    )
    .bind(keys)
    .fetch_all(conn)
    .await
}

/// Sets the available units of a locked row.
pub async fn set_available(
    conn: &mut PgConnection,
    sku: &Sku,
    available: i64,
) -> Result<StockRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE stock SET available = $2, updated_at = now() WHERE sku = $1
         RETURNING sku, available, reserved",
    )
    .bind(sku.as_str())
    .bind(available)
    .fetch_one(conn)
    .await
}

/// Moves `quantity` units of a locked row from available to reserved (a negative quantity moves
/// them back). The CHECK constraints refuse anything that would go below zero.
pub async fn hold(conn: &mut PgConnection, sku: &Sku, quantity: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE stock SET available = available - $2, reserved = reserved + $2, updated_at = now()
         WHERE sku = $1",
    )
    .bind(sku.as_str())
    .bind(quantity)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records one adjustment in the ledger.
pub async fn insert_adjustment(
    conn: &mut PgConnection,
    adjustment_id: Uuid,
    sku: &Sku,
    delta: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO adjustments (adjustment_id, sku, delta) VALUES ($1, $2, $3)")
        .bind(adjustment_id)
        .bind(sku.as_str())
        .bind(delta)
        .execute(conn)
        .await?;
    Ok(())
}

/// Holds every line for `order_id` in one statement: each SKU's units move from available to
/// reserved, and a HELD reservation records it. The rows are locked already (by [`lock`]), so the
/// fewer round trips, the shorter a hot SKU stays locked.
pub async fn reserve(
    conn: &mut PgConnection,
    order_id: OrderId,
    lines: &[StockLine],
) -> Result<(), sqlx::Error> {
    let skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
    let quantities: Vec<i64> = lines.iter().map(|l| i64::from(l.quantity)).collect();
    sqlx::query(
        "WITH line AS (SELECT * FROM unnest($2::text[], $3::bigint[]) AS l (sku, quantity)),
              held AS (
                  UPDATE stock s
                  SET available = s.available - line.quantity,
                      reserved = s.reserved + line.quantity,
                      updated_at = now()
                  FROM line WHERE s.sku = line.sku
                  RETURNING s.sku
              )
         INSERT INTO reservations (order_id, sku, quantity, status)
         SELECT $1, line.sku, line.quantity, $4 FROM line",
    )
    .bind(order_id.as_uuid())
    .bind(&skus)
    .bind(&quantities)
    .bind(ReservationStatus::Held.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the reservations of `order_id` that still hold units, in SKU order.
pub async fn lock_held(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Vec<ReservationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sku, quantity, status FROM reservations
         WHERE order_id = $1 AND status = $2 ORDER BY sku FOR UPDATE",
    )
    .bind(order_id.as_uuid())
    .bind(ReservationStatus::Held.as_str())
    .fetch_all(conn)
    .await
}

/// Stores a reservation's new status.
pub async fn set_reservation_status(
    conn: &mut PgConnection,
    order_id: OrderId,
    sku: &Sku,
    status: ReservationStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reservations SET status = $3, updated_at = now() WHERE order_id = $1 AND sku = $2",
    )
    .bind(order_id.as_uuid())
    .bind(sku.as_str())
    .bind(status.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the ledger holds the adjustment `adjustment_id`.
pub async fn has_adjustment(
    conn: &mut PgConnection,
    adjustment_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM adjustments WHERE adjustment_id = $1)")
        .bind(adjustment_id)
        .fetch_one(conn)
        .await
}

/// Whether `order_id` has any reservation, held or released.
pub async fn has_reservations(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM reservations WHERE order_id = $1)")
        .bind(order_id.as_uuid())
        .fetch_one(conn)
        .await
}

/// Locks every reservation of `order_id`, held or released, in SKU order.
pub async fn lock_reservations(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Vec<ReservationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sku, quantity, status FROM reservations WHERE order_id = $1 ORDER BY sku FOR UPDATE",
    )
    .bind(order_id.as_uuid())
    .fetch_all(conn)
    .await
}

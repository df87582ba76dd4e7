//! The SQL of the voucher service: the `vouchers` table, read and written inside the caller's
//! connection or transaction.

use crate::domain::{Voucher, VoucherStatus};
use jetsaga_contracts::{CustomerId, Money, OrderId, VoucherCode};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

const COLUMNS: &str = "code, customer_id, discount_cents, expires_at, status, order_id";

/// A stored row that breaks the domain's rules (the CHECK constraints make this a corrupted
/// database, not bad input).
fn decode_error(column: &str, e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    }
}

impl<'r> FromRow<'r, PgRow> for Voucher {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let code: String = row.try_get("code")?;
        let customer_id: Uuid = row.try_get("customer_id")?;
        let discount_cents: i64 = row.try_get("discount_cents")?;
        let status: String = row.try_get("status")?;
        let order_id: Option<Uuid> = row.try_get("order_id")?;
        Ok(Voucher {
            code: VoucherCode::parse(code).map_err(|e| decode_error("code", e))?,
            customer_id: CustomerId::from_uuid(customer_id),
            discount: Money::from_cents(discount_cents)
                .map_err(|e| decode_error("discount_cents", e))?,
            expires_at: row.try_get("expires_at")?,
            status: VoucherStatus::parse(&status).map_err(|e| decode_error("status", e))?,
            order_id: order_id.map(OrderId::from_uuid),
        })
    }
}

/// A voucher to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVoucher {
    pub code: VoucherCode,
    pub customer_id: CustomerId,
    pub discount: Money,
    pub expires_at: Option<OffsetDateTime>,
}

/// Inserts an AVAILABLE voucher; `false` when the code already exists (nothing changed).
pub async fn insert(conn: &mut PgConnection, v: &NewVoucher) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO vouchers (code, customer_id, discount_cents, expires_at, status)
         VALUES ($1, $2, $3, $4, 'AVAILABLE')
         ON CONFLICT (code) DO NOTHING",
    )
    .bind(v.code.as_str())
    .bind(v.customer_id.as_uuid())
    .bind(v.discount.cents())
    .bind(v.expires_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// One voucher, unlocked (for reads).
pub async fn find(
    conn: &mut PgConnection,
    code: &VoucherCode,
) -> Result<Option<Voucher>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM vouchers WHERE code = $1"))
        .bind(code.as_str())
        .fetch_optional(conn)
        .await
}

/// One voucher, locked until the transaction ends.
pub async fn lock_by_code(
    conn: &mut PgConnection,
    code: &VoucherCode,
) -> Result<Option<Voucher>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vouchers WHERE code = $1 FOR UPDATE"
    ))
    .bind(code.as_str())
    .fetch_optional(conn)
    .await
}

/// The voucher an order holds or used (at most one, by a unique index), locked until the
/// transaction ends.
pub async fn lock_by_order(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<Voucher>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vouchers WHERE order_id = $1 FOR UPDATE"
    ))
    .bind(order_id.as_uuid())
    .fetch_optional(conn)
    .await
}

/// Stores a new status and holder of a voucher the caller has locked.
pub async fn set_state(
    conn: &mut PgConnection,
    code: &VoucherCode,
    status: VoucherStatus,
    order_id: Option<OrderId>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE vouchers SET status = $2, order_id = $3, updated_at = now() WHERE code = $1",
    )
    .bind(code.as_str())
    .bind(status.as_str())
    .bind(order_id.map(Uuid::from))
    .execute(conn)
    .await?;
    Ok(())
}

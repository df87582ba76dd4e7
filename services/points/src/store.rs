//! The SQL of the points service: `accounts`, `awards` and `holds`, read and written inside the
//! caller's connection or transaction.

use crate::domain::{Account, HoldStatus};
use jetsaga_contracts::{Actor, CustomerId, OrderId, Points};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgExecutor, Row};
use uuid::Uuid;

/// A stored row that breaks the domain's rules (the CHECK constraints make this a corrupted
/// database, not bad input).
fn decode_error(column: &str, e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    }
}

fn points(row: &PgRow, column: &str) -> Result<Points, sqlx::Error> {
    Points::new(row.try_get(column)?).map_err(|e| decode_error(column, e))
}

/// One order's hold as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub points: Points,
    pub status: HoldStatus,
    /// What the confirmation awarded; only for a SPENT hold.
    pub earned: Option<Points>,
}

impl<'r> FromRow<'r, PgRow> for Hold {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let earned: Option<i64> = row.try_get("earned")?;
        Ok(Hold {
            order_id: OrderId::from_uuid(row.try_get("order_id")?),
            customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
            points: points(row, "points")?,
            status: HoldStatus::parse(&status).map_err(|e| decode_error("status", e))?,
            earned: earned
                .map(Points::new)
                .transpose()
                .map_err(|e| decode_error("earned", e))?,
        })
    }
}

/// A customer's points, unlocked (for reads); `None` for a customer who never had any.
pub async fn account<'e>(
    db: impl PgExecutor<'e>,
    customer_id: CustomerId,
) -> Result<Option<Account>, sqlx::Error> {
    let row: Option<PgRow> =
        sqlx::query("SELECT available, held FROM accounts WHERE customer_id = $1")
            .bind(customer_id.as_uuid())
            .fetch_optional(db)
            .await?;
    row.map(|r| {
        Ok(Account {
            available: points(&r, "available")?,
            held: points(&r, "held")?,
        })
    })
    .transpose()
}

/// A customer's points, locked until the transaction ends; `None` for a customer who never had
/// any (nothing is written: a rejection leaves no trace in the tables, as its restore does).
pub async fn lock_existing_account(
    conn: &mut PgConnection,
    customer_id: CustomerId,
) -> Result<Option<Account>, sqlx::Error> {
    let row: Option<PgRow> =
        sqlx::query("SELECT available, held FROM accounts WHERE customer_id = $1 FOR UPDATE")
            .bind(customer_id.as_uuid())
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|r| {
        Ok(Account {
            available: points(&r, "available")?,
            held: points(&r, "held")?,
        })
    })
    .transpose()
}

/// A customer's points, locked until the transaction ends; an empty account is opened first.
/// An account that exists, as it does after a customer's first order, takes one statement.
pub async fn lock_account(
    conn: &mut PgConnection,
    customer_id: CustomerId,
) -> Result<Account, sqlx::Error> {
    if let Some(account) = lock_existing_account(conn, customer_id).await? {
        return Ok(account);
    }
    sqlx::query("INSERT INTO accounts (customer_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(customer_id.as_uuid())
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query("SELECT available, held FROM accounts WHERE customer_id = $1 FOR UPDATE")
        .bind(customer_id.as_uuid())
        .fetch_one(&mut *conn)
        .await?;
    Ok(Account {
        available: points(&row, "available")?,
        held: points(&row, "held")?,
    })
}

/// Stores a customer's points; the caller has locked the account.
pub async fn set_account(
    conn: &mut PgConnection,
    customer_id: CustomerId,
    account: Account,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accounts SET available = $2, held = $3, updated_at = now() WHERE customer_id = $1",
    )
    .bind(customer_id.as_uuid())
    .bind(account.available.get())
    .bind(account.held.get())
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an operator's award; `false` when that award is stored already (nothing changed).
pub async fn insert_award(
    conn: &mut PgConnection,
    award_id: Uuid,
    customer_id: CustomerId,
    points: Points,
    actor: &Actor,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO awards (award_id, customer_id, points, actor) VALUES ($1, $2, $3, $4)
         ON CONFLICT (award_id) DO NOTHING",
    )
    .bind(award_id)
    .bind(customer_id.as_uuid())
    .bind(points.get())
    .bind(actor.as_str())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// One order's hold, locked until the transaction ends.
pub async fn lock_hold(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, customer_id, points, status, earned FROM holds
         WHERE order_id = $1 FOR UPDATE",
    )
    .bind(order_id.as_uuid())
    .fetch_optional(conn)
    .await
}

/// Stores a new hold; `false` when the order has one already (nothing changed).
pub async fn insert_hold(conn: &mut PgConnection, hold: &Hold) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO holds (order_id, customer_id, points, status, earned)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(hold.order_id.as_uuid())
    .bind(hold.customer_id.as_uuid())
    .bind(hold.points.get())
    .bind(hold.status.as_str())
    .bind(hold.earned.map(Points::get))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Stores a new status (and what was earned) of a hold the caller has locked.
pub async fn set_hold(
    conn: &mut PgConnection,
    order_id: OrderId,
    status: HoldStatus,
    earned: Option<Points>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE holds SET status = $2, earned = $3, updated_at = now() WHERE order_id = $1",
    )
    .bind(order_id.as_uuid())
    .bind(status.as_str())
    .bind(earned.map(Points::get))
    .execute(conn)
    .await?;
    Ok(())
}

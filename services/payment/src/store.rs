//! The payment service's SQL: accounts, the credit ledger and the payment ledger.
//!
//! Every function runs on the caller's connection, so the caller's transaction decides what commits
//! together. Rows that are changed are locked first with `SELECT … FOR UPDATE`; a transaction locks
//! at most one payment row and then at most one account row, always in that order.

use crate::domain::PaymentStatus;
use jetsaga_contracts::{CustomerId, Money, OrderId};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A stored amount that is not valid money: the CHECK constraints make this impossible, so it is
/// reported as a decode error of the row rather than silently clamped.
fn money(cents: i64) -> Result<Money, sqlx::Error> {
    Money::from_cents(cents).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The balance of a customer without locking it; `None` when the account was never credited.
pub async fn balance(
    db: impl PgExecutor<'_>,
    customer_id: CustomerId,
) -> Result<Option<Money>, sqlx::Error> {
    let cents: Option<i64> =
        sqlx::query_scalar("SELECT balance_cents FROM accounts WHERE customer_id = $1")
            .bind(customer_id.as_uuid())
            .fetch_optional(db)
            .await?;
    cents.map(money).transpose()
}

/// Locks the account of a customer and returns its balance; `None` when it has no account.
pub async fn lock_balance(
    conn: &mut PgConnection,
    customer_id: CustomerId,
) -> Result<Option<Money>, sqlx::Error> {
    let cents: Option<i64> =
        sqlx::query_scalar("SELECT balance_cents FROM accounts WHERE customer_id = $1 FOR UPDATE")
            .bind(customer_id.as_uuid())
            .fetch_optional(conn)
            .await?;
    cents.map(money).transpose()
}

/// Opens the account of a customer with a zero balance if it has none, then locks it and returns
/// its balance. Opening first means two first credits for one customer serialize on the row.
pub async fn lock_or_open_account(
    conn: &mut PgConnection,
    customer_id: CustomerId,
) -> Result<Money, sqlx::Error> {
    sqlx::query(
        "INSERT INTO accounts (customer_id, balance_cents) VALUES ($1, 0)
         ON CONFLICT (customer_id) DO NOTHING",
    )
    .bind(customer_id.as_uuid())
    .execute(&mut *conn)
    .await?;
    let cents: i64 =
        sqlx::query_scalar("SELECT balance_cents FROM accounts WHERE customer_id = $1 FOR UPDATE")
            .bind(customer_id.as_uuid())
            .fetch_one(conn)
            .await?;
    money(cents)
}

/// Sets the balance of an existing (locked) account.
pub async fn set_balance(
    conn: &mut PgConnection,
    customer_id: CustomerId,
    balance: Money,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accounts SET balance_cents = $2, updated_at = now() WHERE customer_id = $1",
    )
    .bind(customer_id.as_uuid())
    .bind(balance.cents())
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds a credit to the ledger.
pub async fn insert_credit(
    conn: &mut PgConnection,
    credit_id: Uuid,
    customer_id: CustomerId,
    amount: Money,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO credits (credit_id, customer_id, amount_cents) VALUES ($1, $2, $3)")
        .bind(credit_id)
        .bind(customer_id.as_uuid())
        .bind(amount.cents())
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the ledger holds the credit `credit_id`.
pub async fn has_credit(conn: &mut PgConnection, credit_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM credits WHERE credit_id = $1)")
        .bind(credit_id)
        .fetch_one(conn)
        .await
}

/// One row of the payment ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub order_id: OrderId,
    pub payment_id: Uuid,
    pub customer_id: CustomerId,
    pub amount: Money,
    pub status: PaymentStatus,
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    order_id: Uuid,
    payment_id: Uuid,
    customer_id: Uuid,
    amount_cents: i64,
    status: String,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = sqlx::Error;
    fn try_from(r: PaymentRow) -> Result<Self, sqlx::Error> {
        Ok(Payment {
            order_id: OrderId::from_uuid(r.order_id),
            payment_id: r.payment_id,
            customer_id: CustomerId::from_uuid(r.customer_id),
            amount: money(r.amount_cents)?,
            status: PaymentStatus::parse(&r.status)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        })
    }
}

/// Records the outcome of an order's payment step.
pub async fn insert_payment(conn: &mut PgConnection, p: &Payment) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payments (order_id, payment_id, customer_id, amount_cents, status)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(p.order_id.as_uuid())
    .bind(p.payment_id)
    .bind(p.customer_id.as_uuid())
    .bind(p.amount.cents())
    .bind(p.status.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the payment of an order; `None` when the order never reached the payment step.
pub async fn lock_payment(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<Payment>, sqlx::Error> {
    let row: Option<PaymentRow> = sqlx::query_as(
        "SELECT order_id, payment_id, customer_id, amount_cents, status
         FROM payments WHERE order_id = $1 FOR UPDATE",
    )
    .bind(order_id.as_uuid())
    .fetch_optional(conn)
    .await?;
    row.map(Payment::try_from).transpose()
}

/// Moves a (locked) payment to `status`; the caller has checked the transition.
pub async fn set_payment_status(
    conn: &mut PgConnection,
    order_id: OrderId,
    status: PaymentStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET status = $2, updated_at = now() WHERE order_id = $1")
        .bind(order_id.as_uuid())
        .bind(status.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

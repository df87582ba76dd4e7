//! `POST /accounts/{customer_id}/credit` `{"amount_cents"}` → 200 `{"customer_id","balance_cents"}`.
//!
//! An admin change, so an event too: the balance, the credit's ledger row and AccountCredited commit
//! in one transaction.

use super::account::Account;
use crate::domain::{self, CreditError};
use crate::store;
use axum::extract::{Path, State};
use jetsaga_contracts::events::payment::AccountCredited;
use jetsaga_contracts::{CustomerId, EventId, PaymentEvent};
use jetsaga_runtime::api_error::parse_id;
use jetsaga_runtime::openapi::{AdminErrors, ErrorBody, JsonBodyErrors};
use jetsaga_runtime::operators::Operator;
use jetsaga_runtime::{ApiError, Json, Runtime};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A credit to an account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    /// Cents to add; must be greater than 0.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "jetsaga_runtime::json::whole_number")]
    amount_cents: i64,
}

/// 400 for an amount that is never acceptable; 409 for one the balance cannot take now.
fn refused(customer_id: CustomerId, e: CreditError) -> ApiError {
    let message = format!("credit to customer {customer_id} refused: {e}");
    match e {
        CreditError::Overflow { .. } => ApiError::conflict("balance_overflow", message),
        CreditError::NotPositive(_) => ApiError::invalid("validation_failed", message),
    }
}

/// Credits an account; announced as AccountCredited.
#[utoipa::path(
    post,
    path = "/accounts/{customer_id}/credit",
    operation_id = "creditAccount",
    tag = "payment",
    params(("customer_id" = String, Path, format = Uuid, description = "The customer")),
    request_body = CreditRequest,
    responses(
        (status = 200, description = "The new balance", body = Account),
        (status = 409, description = "The balance cannot take this credit (it would overflow); nothing was stored", body = ErrorBody),
        AdminErrors,
        JsonBodyErrors,
    ),
    security(("operator_token" = []))
)]
pub async fn credit(
    State(rt): State<Runtime>,
    Operator(actor): Operator,
    Path(raw_id): Path<String>,
    Json(body): Json<CreditRequest>,
) -> Result<axum::Json<Account>, ApiError> {
    let customer_id: CustomerId = parse_id("customer id", &raw_id)?;
    let amount = domain::credit_amount(body.amount_cents).map_err(|e| refused(customer_id, e))?;

    let mut tx = rt.pool.begin().await?;
    let balance = store::lock_or_open_account(&mut tx, customer_id).await?;
    // On an overflow the transaction is dropped, so the account it may have opened is rolled back.
    let new_balance = domain::credit(balance, amount).map_err(|e| refused(customer_id, e))?;
    let credit_id = Uuid::new_v4();
    store::set_balance(&mut tx, customer_id, new_balance).await?;
    store::insert_credit(&mut tx, credit_id, customer_id, amount).await?;
    saga_kit::outbox::emit_root(
        &mut tx,
        EventId::new_random(),
        &PaymentEvent::AccountCredited(AccountCredited {
            credit_id,
            customer_id,
            amount,
            actor: actor.clone(),
        }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%customer_id, %credit_id, amount = amount.cents(), %actor, "account credited");

    Ok(axum::Json(Account {
        customer_id,
        balance_cents: new_balance.cents(),
    }))
}

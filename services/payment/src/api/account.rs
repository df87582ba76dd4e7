//! `GET /accounts/{customer_id}` → 200 `{"customer_id","balance_cents"}`.
//!
//! A customer never credited is a valid customer with no money: 200 with a balance of 0, not 404.

use crate::store;
use axum::extract::{Path, State};
use jetsaga_contracts::{CustomerId, Money};
use jetsaga_runtime::api_error::parse_id;
use jetsaga_runtime::openapi::ReadErrors;
use jetsaga_runtime::{ApiError, Runtime};
use serde::Serialize;
use utoipa::ToSchema;

/// A customer's balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: CustomerId,
    #[schema(minimum = 0)]
    pub balance_cents: i64,
}

/// A customer's balance; 0 for a customer never credited.
#[utoipa::path(
    get,
    path = "/accounts/{customer_id}",
    operation_id = "getAccount",
    tag = "payment",
    params(("customer_id" = String, Path, format = Uuid, description = "The customer")),
    responses(
        (status = 200, description = "The balance", body = Account),
        ReadErrors,
    )
)]
pub async fn account(
    State(rt): State<Runtime>,
    Path(raw_id): Path<String>,
) -> Result<axum::Json<Account>, ApiError> {
    let customer_id: CustomerId = parse_id("customer id", &raw_id)?;
    let balance = store::balance(&rt.pool, customer_id)
        .await?
        .unwrap_or(Money::ZERO);
    Ok(axum::Json(Account {
        customer_id,
        balance_cents: balance.cents(),
    }))
}

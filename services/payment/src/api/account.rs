//! `GET /accounts/{customer_id}` → 200 `{"customer_id","balance_cents"}`.
//!
//! A customer never credited is a valid customer with no money: 200 with a balance of 0, not 404.

use crate::store;
use axum::extract::{Path, State};
use jetsaga_contracts::{CustomerId, Money};
use jetsaga_runtime::api_error::parse_id;
use jetsaga_runtime::{ApiError, Runtime};

pub async fn account(
    State(rt): State<Runtime>,
    Path(raw_id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let customer_id: CustomerId = parse_id("customer id", &raw_id)?;
    let balance = store::balance(&rt.pool, customer_id)
        .await?
        .unwrap_or(Money::ZERO);
    Ok(axum::Json(serde_json::json!({
        "customer_id": customer_id,
        "balance_cents": balance.cents(),
    })))
}

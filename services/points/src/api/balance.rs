//! `GET /points/{customer_id}`: `{"available", "held"}` (0 and 0 for a customer without points).

use crate::store;
use axum::extract::{Path, State};
use jetsaga_contracts::CustomerId;
use jetsaga_runtime::api_error::parse_id;
use jetsaga_runtime::openapi::ReadErrors;
use jetsaga_runtime::{ApiError, Runtime};
use serde::Serialize;
use utoipa::ToSchema;

/// A customer's points.
#[derive(Debug, Serialize, ToSchema)]
pub struct Balance {
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: CustomerId,
    /// Points the customer may spend.
    #[schema(minimum = 0)]
    pub available: i64,
    /// Points held by orders whose saga runs.
    #[schema(minimum = 0)]
    pub held: i64,
}

/// A customer's points.
#[utoipa::path(
    get,
    path = "/points/{customer_id}",
    operation_id = "getPoints",
    tag = "points",
    params(("customer_id" = String, Path, format = Uuid, description = "The customer")),
    responses(
        (status = 200, description = "The customer's points", body = Balance),
        ReadErrors,
    )
)]
pub async fn balance(
    State(rt): State<Runtime>,
    Path(raw_id): Path<String>,
) -> Result<axum::Json<Balance>, ApiError> {
    let customer_id: CustomerId = parse_id("customer id", &raw_id)?;
    let account = store::account(&rt.pool, customer_id)
        .await?
        .unwrap_or_default();
    Ok(axum::Json(Balance {
        customer_id,
        available: account.available.get(),
        held: account.held.get(),
    }))
}

//! The stock service's HTTP routes (the design's external contract):
//! - `POST /stock/{sku}/adjust` `{"delta"}`: [`adjust`];
//! - `GET /stock/{sku}` → `{"sku", "available", "reserved"}`: [`get_stock`].
//!
//! `/health` and `/metrics` are added by the runtime.

pub mod adjust;
pub mod get_stock;

use axum::routing::{get, post};
use axum::Router;
use jetsaga_contracts::Sku;
use jetsaga_runtime::openapi::{ErrorBody, OperatorSecurity};
use jetsaga_runtime::{ApiError, Runtime};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// The service's OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "jetsaga stock service",
        description = "Stock: adjust a SKU, read one. Errors are {\"error\",\"message\"}."
    ),
    paths(adjust::adjust, get_stock::get_stock),
    components(schemas(ErrorBody)),
    modifiers(&OperatorSecurity)
)]
pub struct ApiDoc;

/// The service's own routes, and its `GET /openapi.json`.
pub fn router(rt: Runtime) -> Router {
    Router::new()
        .route("/stock/{sku}", get(get_stock::get_stock))
        .route("/stock/{sku}/adjust", post(adjust::adjust))
        .with_state(rt)
        .merge(jetsaga_runtime::openapi::route(ApiDoc::openapi))
}

/// A SKU's units.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockView {
    pub sku: String,
    /// Units that can be reserved.
    #[schema(minimum = 0)]
    pub available: i64,
    /// Units held by orders.
    #[schema(minimum = 0)]
    pub reserved: i64,
}

/// A SKU from the path, or 400 `invalid_sku`.
pub(crate) fn parse_sku(raw: String) -> Result<Sku, ApiError> {
    Sku::parse(raw).map_err(|e| ApiError::invalid("invalid_sku", e.to_string()))
}

/// The body of every stock answer.
pub(crate) fn stock_body(sku: &str, available: i64, reserved: i64) -> axum::Json<StockView> {
    axum::Json(StockView {
        sku: sku.to_owned(),
        available,
        reserved,
    })
}

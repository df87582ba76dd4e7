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
use jetsaga_runtime::{ApiError, Runtime};

/// The service's own routes.
pub fn router(rt: Runtime) -> Router {
    Router::new()
        .route("/stock/{sku}", get(get_stock::get_stock))
        .route("/stock/{sku}/adjust", post(adjust::adjust))
        .with_state(rt)
}

/// A SKU from the path, or 400 `invalid_sku`.
pub(crate) fn parse_sku(raw: String) -> Result<Sku, ApiError> {
    Sku::parse(raw).map_err(|e| ApiError::invalid("invalid_sku", e.to_string()))
}

/// The body of every stock answer.
pub(crate) fn stock_body(
    sku: &str,
    available: i64,
    reserved: i64,
) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "sku": sku,
        "available": available,
        "reserved": reserved,
    }))
}

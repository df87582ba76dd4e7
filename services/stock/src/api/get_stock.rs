//! `GET /stock/{sku}` → 200 `{"sku", "available", "reserved"}`, 404 `sku_not_found`.

use super::{parse_sku, stock_body, StockView};
use crate::store;
use axum::extract::{Path, State};
use jetsaga_runtime::openapi::{ErrorBody, ReadErrors};
use jetsaga_runtime::{ApiError, Runtime};

/// A SKU's available and reserved units.
#[utoipa::path(
    get,
    path = "/stock/{sku}",
    operation_id = "getStock",
    tag = "stock",
    params(("sku" = String, Path, description = "The SKU", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "Its units", body = StockView),
        (status = 404, description = "No stock of this SKU", body = ErrorBody),
        ReadErrors,
    )
)]
pub async fn get_stock(
    State(rt): State<Runtime>,
    Path(sku): Path<String>,
) -> Result<axum::Json<StockView>, ApiError> {
    let sku = parse_sku(sku)?;
    let mut conn = rt.pool.acquire().await?;
    let row = store::find(&mut conn, &sku)
        .await?
        .ok_or_else(|| ApiError::not_found("sku_not_found", format!("no stock of sku {sku}")))?;
    Ok(stock_body(&row.sku, row.available, row.reserved))
}

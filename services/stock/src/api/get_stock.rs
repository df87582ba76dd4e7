//! `GET /stock/{sku}` → 200 `{"sku", "available", "reserved"}`, 404 `sku_not_found`.

use super::{parse_sku, stock_body};
use crate::store;
use axum::extract::{Path, State};
use jetsaga_runtime::{ApiError, Runtime};

pub async fn get_stock(
    State(rt): State<Runtime>,
    Path(sku): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let sku = parse_sku(sku)?;
    let mut conn = rt.pool.acquire().await?;
    let row = store::find(&mut conn, &sku)
        .await?
        .ok_or_else(|| ApiError::not_found("sku_not_found", format!("no stock of sku {sku}")))?;
    Ok(stock_body(&row.sku, row.available, row.reserved))
}

//! `GET /vouchers/{code}`: `{"code", "status", "customer_id", "discount_cents", "expires_at"}`,
//! where status is AVAILABLE, RESERVED, REDEEMED or EXPIRED (derived at read time).

use crate::domain;
use crate::store;
use axum::extract::{Path, State};
use jetsaga_contracts::VoucherCode;
use jetsaga_runtime::{ApiError, Runtime};
use time::OffsetDateTime;

pub async fn get(
    State(rt): State<Runtime>,
    Path(raw): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let code =
        VoucherCode::parse(raw).map_err(|e| ApiError::invalid("invalid_code", e.to_string()))?;
    let mut conn = rt.pool.acquire().await?;
    let voucher = store::find(&mut conn, &code).await?.ok_or_else(|| {
        ApiError::not_found(
            "voucher_not_found",
            format!("voucher {code} does not exist"),
        )
    })?;
    let status = domain::visible_status(
        voucher.status,
        voucher.expires_at,
        OffsetDateTime::now_utc(),
    );
    Ok(axum::Json(serde_json::json!({
        "code": voucher.code.as_str(),
        "status": status.as_str(),
        "customer_id": voucher.customer_id,
        "discount_cents": voucher.discount.cents(),
        "expires_at": voucher.expires_at.map(saga_kit::envelope::format_time),
    })))
}

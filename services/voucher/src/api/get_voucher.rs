//! `GET /vouchers/{code}`: `{"code", "status", "customer_id", "discount_cents", "expires_at"}`,
//! where status is AVAILABLE, RESERVED, REDEEMED or EXPIRED (derived at read time).

use crate::domain;
use crate::store;
use axum::extract::{Path, State};
use jetsaga_contracts::{CustomerId, VoucherCode};
use jetsaga_runtime::openapi::{ErrorBody, ReadErrors};
use jetsaga_runtime::{ApiError, Runtime};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A voucher as its holder sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoucherView {
    pub code: String,
    /// AVAILABLE, RESERVED, REDEEMED or EXPIRED (derived when read).
    #[schema(pattern = "^(AVAILABLE|RESERVED|REDEEMED|EXPIRED)$")]
    pub status: &'static str,
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: CustomerId,
    #[schema(minimum = 0)]
    pub discount_cents: i64,
    /// RFC 3339, or null for a voucher that never expires.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// One voucher.
#[utoipa::path(
    get,
    path = "/vouchers/{code}",
    operation_id = "getVoucher",
    tag = "voucher",
    params(("code" = String, Path, description = "The voucher code", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The voucher", body = VoucherView),
        (status = 404, description = "No such voucher", body = ErrorBody),
        ReadErrors,
    )
)]
pub async fn get(
    State(rt): State<Runtime>,
    Path(raw): Path<String>,
) -> Result<axum::Json<VoucherView>, ApiError> {
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
    Ok(axum::Json(VoucherView {
        code: voucher.code.to_string(),
        status: status.as_str(),
        customer_id: voucher.customer_id,
        discount_cents: voucher.discount.cents(),
        expires_at: voucher.expires_at.map(saga_kit::envelope::format_time),
    }))
}

//! `POST /vouchers` `{"code", "customer_id", "discount_cents", "expires_at"?}`: issues a voucher
//! and announces it (VoucherIssued) in the same transaction.

use crate::store::{self, NewVoucher};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jetsaga_contracts::events::voucher::VoucherIssued;
use jetsaga_contracts::{CustomerId, EventId, Money, VoucherCode, VoucherEvent};
use jetsaga_runtime::openapi::{AdminErrors, ErrorBody, JsonBodyErrors};
use jetsaga_runtime::operators::Operator;
use jetsaga_runtime::{ApiError, Json, Runtime};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A voucher to issue (checked completely before anything is stored).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueVoucher {
    /// 1 to 64 characters of A-Z, a-z, 0-9, '-' or '_'.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    code: String,
    /// The only customer who may use it.
    #[schema(format = Uuid)]
    customer_id: String,
    /// The discount, in cents.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "jetsaga_runtime::json::whole_number")]
    discount_cents: i64,
    /// RFC 3339; absent or null means the voucher never expires.
    #[serde(default)]
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// The answer to an issued voucher.
#[derive(Debug, Serialize, ToSchema)]
pub struct Issued {
    pub code: String,
    /// Always `AVAILABLE` for a new voucher.
    #[schema(pattern = "^AVAILABLE$")]
    pub status: &'static str,
}

/// Checks every field before anything is stored.
fn validate(req: IssueVoucher) -> Result<NewVoucher, ApiError> {
    let bad = |m: String| ApiError::invalid("validation_failed", m);
    let code = VoucherCode::parse(req.code).map_err(|e| bad(e.to_string()))?;
    let customer_id: CustomerId = req.customer_id.parse().map_err(|_| {
        bad(format!(
            "customer_id {:?} is not a valid UUID",
            req.customer_id
        ))
    })?;
    if req.discount_cents <= 0 {
        return Err(bad(format!(
            "discount_cents must be more than 0, got {}",
            req.discount_cents
        )));
    }
    let discount =
        Money::from_cents(req.discount_cents).map_err(|e| bad(format!("discount_cents: {e}")))?;
    let expires_at = req
        .expires_at
        .map(|s| {
            OffsetDateTime::parse(&s, &Rfc3339).map_err(|e| {
                bad(format!(
                    "expires_at {s:?} is not an RFC 3339 time (e.g. 2026-12-31T23:59:59Z): {e}"
                ))
            })
        })
        .transpose()?;
    Ok(NewVoucher {
        code,
        customer_id,
        discount,
        expires_at,
    })
}

/// Issues a voucher to one customer; it is announced as VoucherIssued.
#[utoipa::path(
    post,
    path = "/vouchers",
    operation_id = "issueVoucher",
    tag = "voucher",
    request_body = IssueVoucher,
    responses(
        (status = 201, description = "Issued", body = Issued),
        (status = 409, description = "A voucher with this code exists", body = ErrorBody),
        AdminErrors,
        JsonBodyErrors,
    ),
    security(("operator_token" = []))
)]
pub async fn issue(
    State(rt): State<Runtime>,
    Operator(actor): Operator,
    Json(req): Json<IssueVoucher>,
) -> Result<impl IntoResponse, ApiError> {
    let voucher = validate(req)?;
    let mut tx = rt.pool.begin().await?;
    if !store::insert(&mut tx, &voucher).await? {
        return Err(ApiError::conflict(
            "voucher_exists",
            format!("voucher {} already exists", voucher.code),
        ));
    }
    let issued = VoucherEvent::VoucherIssued(VoucherIssued {
        code: voucher.code.clone(),
        customer_id: voucher.customer_id,
        discount: voucher.discount,
        expires_at: voucher.expires_at,
        actor,
    });
    saga_kit::outbox::emit_root(&mut tx, EventId::new_random(), &issued).await?;
    tx.commit().await?;
    tracing::info!(code = %voucher.code, customer_id = %voucher.customer_id, "voucher issued");
    Ok((
        StatusCode::CREATED,
        axum::Json(Issued {
            code: voucher.code.to_string(),
            status: "AVAILABLE",
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(code: &str, customer: &str, cents: i64, expires: Option<&str>) -> IssueVoucher {
        IssueVoucher {
            code: code.to_owned(),
            customer_id: customer.to_owned(),
            discount_cents: cents,
            expires_at: expires.map(str::to_owned),
        }
    }

    const CUSTOMER: &str = "6f1c1b1e-7d6a-4b43-9d51-2a4c3c1f0a11";

    #[test]
    fn a_valid_request_becomes_a_new_voucher() {
        let v = validate(req(
            "WELCOME10",
            CUSTOMER,
            500,
            Some("2026-12-31T23:59:59Z"),
        ))
        .unwrap();
        assert_eq!(v.code.as_str(), "WELCOME10");
        assert_eq!(v.discount.cents(), 500);
        assert!(v.expires_at.is_some());
        assert!(validate(req("A", CUSTOMER, 1, None))
            .unwrap()
            .expires_at
            .is_none());
    }

    #[test]
    fn every_bad_field_is_refused_with_validation_failed() {
        for bad in [
            req("a.b", CUSTOMER, 500, None),
            req("", CUSTOMER, 500, None),
            req("OK", "nope", 500, None),
            req("OK", CUSTOMER, 0, None),
            req("OK", CUSTOMER, -5, None),
            req("OK", CUSTOMER, 500, Some("tomorrow")),
            req("OK", CUSTOMER, 500, Some("2026-12-31")),
        ] {
            let e = validate(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert_eq!(e.code, "validation_failed");
        }
    }
}

//! `POST /stock/{sku}/adjust` `{"delta"}`: an operator adds (or removes) units.
//!
//! The change, its ledger row and its StockAdjusted event commit in one transaction. Answers 200
//! `{"sku", "available", "reserved"}`; 400 for bad input, 409 `insufficient_stock` when more units
//! would be removed than are available (also for a SKU that has no stock yet).

use super::{parse_sku, stock_body, StockView};
use crate::domain::{self, AdjustmentRefused};
use crate::store;
use axum::extract::{Path, State};
use jetsaga_contracts::events::stock::StockAdjusted;
use jetsaga_contracts::{EventId, StockEvent};
use jetsaga_runtime::openapi::{AdminErrors, ErrorBody, JsonBodyErrors};
use jetsaga_runtime::operators::Operator;
use jetsaga_runtime::{ApiError, Json, Runtime};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// An adjustment of a SKU's units.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustRequest {
    /// Units to add (positive) or remove (negative); never 0, at most 1,000,000,000 either way.
    #[schema(schema_with = delta_schema)]
    #[serde(deserialize_with = "jetsaga_runtime::json::whole_number")]
    pub delta: i64,
}

/// `delta`: 1 ..= 1,000,000,000 or -1,000,000,000 ..= -1 (a schema cannot say "not 0" otherwise).
fn delta_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    let range = |min: i64, max: i64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min))
            .maximum(Some(max))
    };
    OneOfBuilder::new()
        .item(range(1, domain::MAX_ADJUSTMENT))
        .item(range(-domain::MAX_ADJUSTMENT, -1))
        .description(Some(
            "Units to add (positive) or remove (negative); never 0, at most 1,000,000,000 either way.",
        ))
        .build()
        .into()
}

/// Adds or removes units of a SKU; announced as StockAdjusted.
#[utoipa::path(
    post,
    path = "/stock/{sku}/adjust",
    operation_id = "adjustStock",
    tag = "stock",
    params(("sku" = String, Path, description = "The SKU", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body = AdjustRequest,
    responses(
        (status = 200, description = "Its units after the adjustment", body = StockView),
        (status = 409, description = "More units removed than available, or too many units", body = ErrorBody),
        AdminErrors,
        JsonBodyErrors,
    ),
    security(("operator_token" = []))
)]
pub async fn adjust(
    State(rt): State<Runtime>,
    Operator(actor): Operator,
    Path(sku): Path<String>,
    Json(body): Json<AdjustRequest>,
) -> Result<axum::Json<StockView>, ApiError> {
    let sku = parse_sku(sku)?;
    let delta = domain::validate_delta(body.delta)
        .map_err(|e| ApiError::invalid("validation_failed", e.to_string()))?;

    let mut tx = rt.pool.begin().await?;
    if delta > 0 {
        store::ensure_row(&mut tx, &sku).await?;
    }
    let Some(row) = store::lock(&mut tx, &[&sku]).await?.pop() else {
        return Err(ApiError::conflict(
            "insufficient_stock",
            format!(
                "cannot remove {} units of sku {sku}: it has no stock",
                delta.unsigned_abs()
            ),
        ));
    };
    let available = domain::adjust(row.available, delta).map_err(|e| match e {
        AdjustmentRefused::Insufficient { .. } => {
            ApiError::conflict("insufficient_stock", format!("sku {sku}: {e}"))
        }
        AdjustmentRefused::Overflow { .. } => {
            ApiError::conflict("stock_overflow", format!("sku {sku}: {e}"))
        }
    })?;
    let row = store::set_available(&mut tx, &sku, available).await?;
    let adjustment_id = Uuid::new_v4();
    store::insert_adjustment(&mut tx, adjustment_id, &sku, delta).await?;
    let event = StockEvent::StockAdjusted(StockAdjusted {
        adjustment_id,
        sku: sku.clone(),
        delta,
        actor,
    });
    saga_kit::outbox::emit_root(&mut tx, EventId::new_random(), &event).await?;
    tx.commit().await?;
    tracing::info!(%sku, delta, available = row.available, "stock adjusted");
    Ok(stock_body(&row.sku, row.available, row.reserved))
}

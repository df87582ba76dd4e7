//! `PUT /products/{sku}` `{"name", "price_cents"}`: sets a product's name and price. The change
//! and its ProductPriced event commit in one transaction.

use super::AppState;
use crate::domain::check_product;
use crate::store;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use jetsaga_contracts::events::order::ProductPriced;
use jetsaga_contracts::{EventId, OrderEvent, Sku};
use jetsaga_runtime::openapi::{AdminErrors, JsonBodyErrors};
use jetsaga_runtime::operators::Operator;
use jetsaga_runtime::{ApiError, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A product's name and price.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutProduct {
    /// Not blank; at most 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// i64 so that a negative price gets a clear validation message rather than a type error.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "jetsaga_runtime::json::whole_number")]
    pub price_cents: i64,
}

/// A product as set.
#[derive(Debug, Serialize, ToSchema)]
pub struct Product {
    pub sku: String,
    pub name: String,
    #[schema(minimum = 0)]
    pub price_cents: i64,
}

/// Sets a product's name and price; announced as ProductPriced.
#[utoipa::path(
    put,
    path = "/products/{sku}",
    operation_id = "putProduct",
    tag = "order",
    params(("sku" = String, Path, description = "The SKU", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body = PutProduct,
    responses(
        (status = 200, description = "The product as set", body = Product),
        AdminErrors,
        JsonBodyErrors,
    ),
    security(("operator_token" = []))
)]
pub async fn put_product(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(raw_sku): Path<String>,
    Json(body): Json<PutProduct>,
) -> Result<impl IntoResponse, ApiError> {
    let sku =
        Sku::parse(raw_sku).map_err(|e| ApiError::invalid("validation_failed", e.to_string()))?;
    let price = check_product(&body.name, body.price_cents)
        .map_err(|e| ApiError::invalid("validation_failed", format!("product {sku}: {e}")))?;

    let mut tx = state.rt.pool.begin().await?;
    store::upsert_product(&mut tx, &sku, &body.name, price).await?;
    let event = OrderEvent::ProductPriced(ProductPriced {
        sku: sku.clone(),
        name: body.name.clone(),
        price,
        actor,
    });
    saga_kit::outbox::emit_root(&mut tx, EventId::new_random(), &event).await?;
    tx.commit().await?;

    Ok(axum::Json(Product {
        sku: sku.to_string(),
        name: body.name,
        price_cents: price.cents(),
    }))
}

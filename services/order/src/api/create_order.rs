//! `POST /orders` `{"customer_id", "items": [{"sku", "quantity"}], "voucher_code"?, "points"?}` with an
//! optional `Idempotency-Key` header: accepts an order and starts its saga. The order, its lines and
//! its OrderCreated event commit in one transaction; the answer is 202 `{"order_id", "status"}`.
//!
//! Idempotency: the key is stored with a hash of the canonical request. The same key with the same
//! request answers the same order again and stores nothing; with another request it is refused
//! (422 `idempotency_key_reused`). Two requests racing with one key meet at the unique constraint:
//! the loser stores nothing and answers the winner's order. OrderCreated carries the key, so a
//! replay rebuilds the record from the stream (the hash is computed from the event's fields).

use super::AppState;
use crate::domain::{check_lines, order_total, request_hash};
use crate::store::{self, Line, NewOrder};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jetsaga_contracts::events::order::OrderCreated;
use jetsaga_contracts::{CustomerId, OrderEvent, OrderId, OrderLine, Points, Sku, VoucherCode};
use jetsaga_runtime::openapi::{ErrorBody, JsonBodyErrors};
use jetsaga_runtime::{ApiError, Json};
use saga_kit::envelope::keyed_event_id;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// The request header that makes a POST safe to repeat.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// An order: what a customer buys, and the voucher it uses.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    #[schema(format = Uuid)]
    pub customer_id: String,
    /// 1 to 100 lines; each SKU once.
    #[schema(schema_with = items_schema)]
    pub items: Vec<Item>,
    /// A voucher of this customer.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    pub voucher_code: Option<String>,
    /// Loyalty points to spend (one point is one cent); at most what is left to pay after the
    /// voucher is used. Absent or 0: none.
    #[serde(default, deserialize_with = "whole_points")]
    #[schema(minimum = 0)]
    pub points: Option<i64>,
}

fn whole_points<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    jetsaga_runtime::json::whole_number(d).map(Some)
}

/// `items`: 1 to 100 lines, no two alike (that each SKU appears once is checked by the handler: a
/// schema cannot say it of one field).
fn items_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::ArrayBuilder;
    use utoipa::openapi::Ref;
    ArrayBuilder::new()
        .items(Ref::from_schema_name("Item"))
        .min_items(Some(1))
        .max_items(Some(crate::domain::MAX_LINES))
        .unique_items(true)
        .description(Some("1 to 100 lines; each SKU once."))
        .build()
        .into()
}

/// One line of an order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    pub sku: String,
    /// i64 so that zero and negative quantities get a clear validation message.
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[serde(deserialize_with = "jetsaga_runtime::json::whole_number")]
    pub quantity: i64,
}

/// The answer to an accepted order: its saga has started.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
    /// Always `PENDING`: read the order to see how its saga ended.
    #[schema(pattern = "^PENDING$")]
    pub status: &'static str,
}

/// A request after validation.
#[derive(Debug)]
struct Valid {
    customer_id: CustomerId,
    /// Sorted by SKU (each SKU appears once), so the order of lines does not change the hash.
    items: Vec<(Sku, u32)>,
    voucher_code: Option<VoucherCode>,
    /// `None` when no points (or 0) were asked.
    points: Option<Points>,
}

impl Valid {
    fn hash(&self) -> String {
        request_hash(
            self.customer_id,
            &self.items,
            self.voucher_code.as_ref(),
            self.points,
        )
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid("validation_failed", message)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| invalid("the Idempotency-Key header must be visible ASCII"))?;
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(invalid(format!(
            "the Idempotency-Key header must have 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

fn validate(body: CreateOrder) -> Result<Valid, ApiError> {
    let customer_id: CustomerId = body.customer_id.parse().map_err(|_| {
        invalid(format!(
            "customer_id {:?} is not a valid UUID",
            body.customer_id
        ))
    })?;
    let requested = body
        .items
        .into_iter()
        .map(|item| {
            Sku::parse(item.sku)
                .map(|sku| (sku, item.quantity))
                .map_err(|e| invalid(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut items = check_lines(&requested).map_err(|e| invalid(e.to_string()))?;
    items.sort();
    let voucher_code = body
        .voucher_code
        .map(VoucherCode::parse)
        .transpose()
        .map_err(|e| invalid(e.to_string()))?;
    let points = match body.points {
        None | Some(0) => None,
        Some(p) => Some(
            Points::new(p).map_err(|_| invalid(format!("points must be 0 or more, got {p}")))?,
        ),
    };
    Ok(Valid {
        customer_id,
        items,
        voucher_code,
        points,
    })
}

fn accepted(order_id: OrderId) -> impl IntoResponse {
    (
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            order_id,
            status: "PENDING",
        }),
    )
}

/// The answer to a key that is already stored: the same order for the same request, else 422.
fn replay(key: &str, stored: (OrderId, String), hash: &str) -> Result<OrderId, ApiError> {
    let (order_id, stored_hash) = stored;
    if stored_hash == hash {
        Ok(order_id)
    } else {
        Err(ApiError::unprocessable(
            "idempotency_key_reused",
            format!(
                "Idempotency-Key {key:?} was used for order {order_id} with a different request"
            ),
        ))
    }
}

/// Now, to the microsecond PostgreSQL keeps, so the stored deadline and the event's agree.
fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// Accepts an order and starts its saga; the same Idempotency-Key answers the same order.
#[utoipa::path(
    post,
    path = "/orders",
    operation_id = "createOrder",
    tag = "order",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to repeat: 1 to 200 visible ASCII characters", min_length = 1, max_length = 200, pattern = "^[!-~]([ -~]*[!-~])?$")),
    request_body = CreateOrder,
    responses(
        (status = 202, description = "Accepted; its saga has started", body = Accepted),
        (status = 409, description = "Another request with this Idempotency-Key is in flight; retry", body = ErrorBody),
        (status = 422, description = "An unknown SKU, or an Idempotency-Key used for another request", body = ErrorBody),
        JsonBodyErrors,
    )
)]
pub async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<CreateOrder>,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency_key(&headers)?;
    let valid = validate(body)?;
    let hash = valid.hash();
    let pool = &state.rt.pool;

    if let Some(key) = &key {
        if let Some(stored) = store::order_by_idempotency_key(pool, key).await? {
            return Ok(accepted(replay(key, stored, &hash)?));
        }
    }

    let mut tx = pool.begin().await?;
    let skus: Vec<Sku> = valid.items.iter().map(|(sku, _)| sku.clone()).collect();
    let prices = store::prices(&mut *tx, &skus).await?;
    let lines = valid
        .items
        .iter()
        .map(|(sku, quantity)| {
            let unit_price = *prices.get(sku).ok_or_else(|| {
                ApiError::unprocessable("unknown_sku", format!("sku {sku} is not a known product"))
            })?;
            Ok(Line {
                sku: sku.clone(),
                quantity: *quantity,
                unit_price,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let priced: Vec<_> = lines.iter().map(|l| (l.quantity, l.unit_price)).collect();
    let total = order_total(&priced)
        .map_err(|_| invalid("the order total does not fit in 64 bits of cents"))?;

    let order_id = OrderId::new_random();
    let deadline = now_micros() + state.order_deadline;
    let new = NewOrder {
        order_id,
        customer_id: valid.customer_id,
        total,
        voucher_code: valid.voucher_code.as_ref(),
        points_requested: valid.points,
        deadline,
        idempotency_key: key.as_deref(),
        request_hash: &hash,
        lines: &lines,
    };
    if !store::insert_order(&mut tx, &new).await? {
        // Another request with this key committed first; answer with its order.
        tx.rollback().await?;
        let key = key.as_deref().unwrap_or_default();
        let stored = store::order_by_idempotency_key(pool, key)
            .await?
            .ok_or_else(|| {
                ApiError::conflict(
                    "idempotency_conflict",
                    format!("Idempotency-Key {key:?} is being used by another request; retry"),
                )
            })?;
        return Ok(accepted(replay(key, stored, &hash)?));
    }
    let event = OrderEvent::OrderCreated(OrderCreated {
        order_id,
        customer_id: valid.customer_id,
        lines: lines
            .iter()
            .map(|l| OrderLine {
                sku: l.sku.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price,
            })
            .collect(),
        total,
        voucher_code: valid.voucher_code.clone(),
        points: valid.points,
        deadline,
        idempotency_key: key.clone(),
    });
    saga_kit::outbox::emit_root(
        &mut tx,
        keyed_event_id("order-created", &order_id.to_string()),
        &event,
    )
    .await?;
    tx.commit().await?;
    state
        .rt
        .metrics
        .extension::<crate::metrics::OrderMetrics>()
        .orders_accepted
        .inc();
    tracing::info!(%order_id, customer_id = %valid.customer_id, total = total.cents(), "order accepted");
    Ok(accepted(order_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(items: &[(&str, i64)]) -> CreateOrder {
        CreateOrder {
            customer_id: "6a1c6f4e-2b8e-4d0e-9a43-5a4bb1f0c001".into(),
            items: items
                .iter()
                .map(|(s, q)| Item {
                    sku: (*s).into(),
                    quantity: *q,
                })
                .collect(),
            voucher_code: None,
            points: None,
        }
    }

    #[test]
    fn the_order_of_lines_does_not_change_the_request_hash() {
        let a = validate(body(&[("A", 1), ("B", 2)])).unwrap();
        let b = validate(body(&[("B", 2), ("A", 1)])).unwrap();
        let c = validate(body(&[("A", 1), ("B", 3)])).unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn invalid_skus_customers_and_vouchers_are_refused() {
        assert!(validate(body(&[("a.b", 1)])).is_err());
        let mut b = body(&[("A", 1)]);
        b.customer_id = "nope".into();
        assert!(validate(b).is_err());
        let mut b = body(&[("A", 1)]);
        b.voucher_code = Some("X>".into());
        assert!(validate(b).is_err());
        let mut b = body(&[("A", 1)]);
        b.points = Some(-1);
        assert!(validate(b).is_err());
    }
}

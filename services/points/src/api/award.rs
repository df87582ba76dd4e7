//! `POST /points/{customer_id}/award` `{"points"}` (admin): adds points to a customer's available
//! points and announces it as PointsAwarded, with the operator as its actor.

use super::balance::Balance;
use crate::store;
use axum::extract::{Path, State};
use jetsaga_contracts::events::points::PointsAwarded;
use jetsaga_contracts::{CustomerId, EventId, Points, PointsEvent};
use jetsaga_runtime::api_error::parse_id;
use jetsaga_runtime::openapi::{AdminErrors, ErrorBody, JsonBodyErrors};
use jetsaga_runtime::operators::Operator;
use jetsaga_runtime::{ApiError, Json, Runtime};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Points to award.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AwardRequest {
    /// A positive whole number of points.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "jetsaga_runtime::json::whole_number")]
    points: i64,
}

/// The points of an award, checked before anything is stored.
fn award_points(points: i64) -> Result<Points, ApiError> {
    if points <= 0 {
        return Err(ApiError::invalid(
            "validation_failed",
            format!("points must be more than 0, got {points}"),
        ));
    }
    Points::new(points).map_err(|e| ApiError::invalid("validation_failed", e.to_string()))
}

/// Awards points to a customer; announced as PointsAwarded.
#[utoipa::path(
    post,
    path = "/points/{customer_id}/award",
    operation_id = "awardPoints",
    tag = "points",
    params(("customer_id" = String, Path, format = Uuid, description = "The customer")),
    request_body = AwardRequest,
    responses(
        (status = 200, description = "The customer's points after the award", body = Balance),
        (status = 409, description = "The points would overflow; nothing was stored", body = ErrorBody),
        AdminErrors,
        JsonBodyErrors,
    ),
    security(("operator_token" = []))
)]
pub async fn award(
    State(rt): State<Runtime>,
    Operator(actor): Operator,
    Path(raw_id): Path<String>,
    Json(body): Json<AwardRequest>,
) -> Result<axum::Json<Balance>, ApiError> {
    let customer_id: CustomerId = parse_id("customer id", &raw_id)?;
    let points = award_points(body.points)?;
    let mut tx = rt.pool.begin().await?;
    let account = store::lock_account(&mut tx, customer_id).await?;
    let account = account.award(points).map_err(|e| {
        ApiError::conflict(
            "points_overflow",
            format!("award to customer {customer_id} refused: {e}"),
        )
    })?;
    let award_id = Uuid::new_v4();
    store::set_account(&mut tx, customer_id, account).await?;
    store::insert_award(&mut tx, award_id, customer_id, points, &actor).await?;
    saga_kit::outbox::emit_root(
        &mut tx,
        EventId::new_random(),
        &PointsEvent::PointsAwarded(PointsAwarded {
            award_id,
            customer_id,
            points,
            actor: actor.clone(),
        }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%customer_id, %award_id, %points, %actor, "points awarded");
    Ok(axum::Json(Balance {
        customer_id,
        available: account.available.get(),
        held: account.held.get(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_positive_award_is_accepted() {
        assert_eq!(award_points(5).unwrap().get(), 5);
        for bad in [0, -1] {
            assert_eq!(award_points(bad).unwrap_err().code, "validation_failed");
        }
    }
}

//! The points HTTP API: `POST /points/{customer_id}/award` and `GET /points/{customer_id}`.
//! `/health` and `/metrics` come from the runtime.

mod award;
mod balance;

use axum::routing::{get, post};
use axum::Router;
use jetsaga_runtime::openapi::{ErrorBody, OperatorSecurity};
use jetsaga_runtime::Runtime;
use utoipa::OpenApi;

/// The service's OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "jetsaga points service",
        description = "Loyalty points: award some, read a customer's. Errors are {\"error\",\"message\"}."
    ),
    paths(award::award, balance::balance),
    components(schemas(ErrorBody)),
    modifiers(&OperatorSecurity)
)]
pub struct ApiDoc;

/// The service's routes, and its `GET /openapi.json`.
pub fn router(rt: Runtime) -> Router {
    Router::new()
        .route("/points/{customer_id}/award", post(award::award))
        .route("/points/{customer_id}", get(balance::balance))
        .with_state(rt)
        .merge(jetsaga_runtime::openapi::route(ApiDoc::openapi))
}

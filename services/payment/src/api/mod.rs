//! The payment service's HTTP API: credit an account, read a balance. Every input is validated
//! before anything is stored; errors are `{"error","message"}` with a 4xx status.

mod account;
mod credit;

use axum::routing::{get, post};
use axum::Router;
use jetsaga_runtime::openapi::{ErrorBody, OperatorSecurity};
use jetsaga_runtime::Runtime;
use utoipa::OpenApi;

/// The service's OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "jetsaga payment service",
        description = "Balances: credit an account, read one. Errors are {\"error\",\"message\"}."
    ),
    paths(credit::credit, account::account),
    components(schemas(ErrorBody)),
    modifiers(&OperatorSecurity)
)]
pub struct ApiDoc;

/// `POST /accounts/{customer_id}/credit`, `GET /accounts/{customer_id}` and `GET /openapi.json`.
pub fn router(rt: Runtime) -> Router {
    Router::new()
        .route("/accounts/{customer_id}/credit", post(credit::credit))
        .route("/accounts/{customer_id}", get(account::account))
        .with_state(rt)
        .merge(jetsaga_runtime::openapi::route(ApiDoc::openapi))
}

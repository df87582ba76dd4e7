//! The voucher HTTP API: `POST /vouchers` and `GET /vouchers/{code}`. `/health` and `/metrics`
//! come from the runtime.

mod get_voucher;
mod issue_voucher;

use axum::routing::{get, post};
use axum::Router;
use jetsaga_runtime::openapi::{ErrorBody, OperatorSecurity};
use jetsaga_runtime::Runtime;
use utoipa::OpenApi;

/// The service's OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "jetsaga voucher service",
        description = "Vouchers: issue one, read one. Errors are {\"error\",\"message\"}."
    ),
    paths(issue_voucher::issue, get_voucher::get),
    components(schemas(ErrorBody)),
    modifiers(&OperatorSecurity)
)]
pub struct ApiDoc;

/// The service's routes, and its `GET /openapi.json`.
pub fn router(rt: Runtime) -> Router {
    Router::new()
        .route("/vouchers", post(issue_voucher::issue))
        .route("/vouchers/{code}", get(get_voucher::get))
        .with_state(rt)
        .merge(jetsaga_runtime::openapi::route(ApiDoc::openapi))
}

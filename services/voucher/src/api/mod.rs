//! The voucher HTTP API: `POST /vouchers` and `GET /vouchers/{code}`. `/health` and `/metrics`
//! come from the runtime.

mod get_voucher;
mod issue_voucher;

use axum::routing::{get, post};
use axum::Router;
use jetsaga_runtime::Runtime;

/// The service's routes.
pub fn router(rt: Runtime) -> Router {
    Router::new()
        .route("/vouchers", post(issue_voucher::issue))
        .route("/vouchers/{code}", get(get_voucher::get))
        .with_state(rt)
}

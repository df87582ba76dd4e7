//! The payment service's HTTP API: credit an account, read a balance. Every input is validated
//! before anything is stored; errors are `{"error","message"}` with a 4xx status.

mod account;
mod credit;

use axum::routing::{get, post};
use axum::Router;
use jetsaga_runtime::Runtime;

/// `POST /accounts/{customer_id}/credit` and `GET /accounts/{customer_id}`.
pub fn router(rt: Runtime) -> Router {
    Router::new()
        .route("/accounts/{customer_id}/credit", post(credit::credit))
        .route("/accounts/{customer_id}", get(account::account))
        .with_state(rt)
}

//! The order service's HTTP API, one file per route. Every route validates its input completely
//! before it stores anything, and answers errors as `{"error","message"}`.
//!
//! - `PUT /products/{sku}`: [`products`]
//! - `POST /orders`: [`create_order`]
//! - `GET /orders/{id}`: [`get_order`]
//! - `GET /orders/{id}/timeline`: [`timeline`]

pub mod create_order;
pub mod get_order;
pub mod products;
pub mod timeline;

use axum::routing::{get, post, put};
use axum::Router;
use jetsaga_runtime::openapi::{ErrorBody, OperatorSecurity};
use jetsaga_runtime::Runtime;
use std::time::Duration;
use utoipa::OpenApi;

/// What the routes share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub rt: Runtime,
    /// How long an accepted order's saga may take before it is cancelled with reason `timeout`.
    pub order_deadline: Duration,
}

/// The admin routes' [`jetsaga_runtime::operators::Operator`] reads the runtime's operators.
impl axum::extract::FromRef<AppState> for Runtime {
    fn from_ref(state: &AppState) -> Runtime {
        state.rt.clone()
    }
}

/// The service's OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "jetsaga order service",
        description = "Orders and products: place an order, read it and its saga's timeline, set a product. Errors are {\"error\",\"message\"}."
    ),
    paths(
        products::put_product,
        create_order::create_order,
        get_order::get_order,
        timeline::timeline
    ),
    components(schemas(ErrorBody, create_order::Item)),
    modifiers(&OperatorSecurity)
)]
pub struct ApiDoc;

/// The API routes and `GET /openapi.json` (the runtime adds `/health` and `/metrics`).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/products/{sku}", put(products::put_product))
        .route("/orders", post(create_order::create_order))
        .route("/orders/{id}", get(get_order::get_order))
        .route("/orders/{id}/timeline", get(timeline::timeline))
        .with_state(state)
        .merge(jetsaga_runtime::openapi::route(ApiDoc::openapi))
}

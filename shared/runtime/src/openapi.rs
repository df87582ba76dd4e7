//! Each service's OpenAPI 3.1 document: the error body every route answers with, the answers
//! every JSON route can give, and `GET /openapi.json`. A service describes its own routes with
//! `utoipa` (`#[utoipa::path]` on each handler, `#[derive(ToSchema)]` on each body) and
//! `jetsaga-lab docs` writes the documents to `docs/api/`.

use axum::routing::get;
use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa::ToSchema;

/// The body of every error answer: `{"error": "<code>", "message": "<human text>"}`.
#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// A stable, machine-readable code, e.g. `validation_failed`, `order_not_found`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
}

/// `GET /openapi.json`: the service's own document.
pub fn route(document: fn() -> OpenApi) -> Router {
    Router::new().route(
        "/openapi.json",
        get(move || async move { axum::Json(document()) }),
    )
}

/// The document's text as `jetsaga-lab docs` writes it.
pub fn to_pretty_json(document: &OpenApi) -> String {
    let text = document
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    format!("{text}\n")
}

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

/// The answers every route with a JSON body can give besides its own: use as
/// `responses((status = 200, body = T), JsonBodyErrors)`.
#[derive(Debug, utoipa::IntoResponses)]
pub enum JsonBodyErrors {
    /// The body or a path parameter is invalid; nothing was stored.
    #[response(status = 400, description = "Invalid input; nothing was stored")]
    Invalid(ErrorBody),
    #[response(status = 413, description = "The body is larger than 64 KiB")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "The body is not application/json")]
    NotJson(ErrorBody),
    #[response(status = 503, description = "The database is unavailable; try again")]
    Unavailable(ErrorBody),
}

/// The answers every read route can give besides its own.
#[derive(Debug, utoipa::IntoResponses)]
pub enum ReadErrors {
    #[response(status = 400, description = "The path names nothing valid")]
    Invalid(ErrorBody),
    #[response(status = 503, description = "The database is unavailable; try again")]
    Unavailable(ErrorBody),
}

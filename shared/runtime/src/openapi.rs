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

/// The answer an admin route gives without an operator's token: use as
/// `responses(..., AdminErrors, JsonBodyErrors)` with `security(("operator_token" = []))`.
#[derive(Debug, utoipa::IntoResponses)]
pub enum AdminErrors {
    #[response(
        status = 401,
        description = "No operator's token (`Authorization: Bearer <token>`, one of ADMIN_TOKENS); nothing was stored"
    )]
    Unauthorized(ErrorBody),
}

/// The `operator_token` security scheme the admin routes name: a bearer token of `ADMIN_TOKENS`.
/// Add it to a service's document with `#[openapi(modifiers(&OperatorSecurity))]`.
#[derive(Debug)]
pub struct OperatorSecurity;

impl utoipa::Modify for OperatorSecurity {
    fn modify(&self, openapi: &mut OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An operator's token from the service's ADMIN_TOKENS (name=token pairs); \
                         the name is recorded as the actor of the change's event.",
                    ))
                    .build(),
            ),
        );
    }
}

//! The error body of every service: `{"error": "<code>", "message": "<human text>"}` with a 4xx
//! (or, for our own failures, a 5xx) status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An HTTP error answer. The code is stable and machine-readable; the message is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the input is not acceptable; nothing was stored.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: well-formed, but refers to something that does not allow it (an unknown SKU).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 503: our own dependency failed; the client may retry. The cause is logged, not shown.
    pub fn unavailable(what: &str, cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, "{what}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{what}; try again"),
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::unavailable("the database is unavailable", &e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// Parses a path id, answering 400 `invalid_id` for anything that is not one.
pub fn parse_id<T: std::str::FromStr>(what: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::invalid("invalid_id", format!("{what} {raw:?} is not a valid UUID")))
}

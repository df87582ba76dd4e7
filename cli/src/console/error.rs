//! The console's errors: each kind is one status and one `error` code, answered as jetsaga's
//! error body `{"error": "<code>", "message": "<human text>"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why a console request was not answered with what it asked for.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session and no operator token, or an unknown token: 401.
    #[error("sign in with an operator's or a viewer's token first")]
    Unauthorized,
    /// A viewer asked for a write action: 403, and nothing is done.
    #[error("{name} is a viewer; this action needs an operator")]
    Forbidden { name: String },
    /// The request is malformed or incomplete: 400, before anything is done.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// What was asked for does not exist: 404.
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// A database or NATS did not answer, or answered with an error: 503, the request may be
    /// tried again. The cause chain is logged and returned as the message.
    #[error("{what}: {source:#}")]
    Unavailable {
        what: String,
        #[source]
        source: anyhow::Error,
    },
}

impl ConsoleError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ConsoleError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ConsoleError::NotFound {
            code,
            message: message.into(),
        }
    }

    /// A backend failure while doing `what`.
    pub fn unavailable(what: impl Into<String>, source: impl Into<anyhow::Error>) -> Self {
        ConsoleError::Unavailable {
            what: what.into(),
            source: source.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::Unauthorized => StatusCode::UNAUTHORIZED,
            ConsoleError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ConsoleError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound { .. } => StatusCode::NOT_FOUND,
            ConsoleError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ConsoleError::Unauthorized => "unauthorized",
            ConsoleError::Forbidden { .. } => "forbidden",
            ConsoleError::BadRequest { code, .. } | ConsoleError::NotFound { code, .. } => code,
            ConsoleError::Unavailable { .. } => "unavailable",
        }
    }
}

/// The error body every jetsaga HTTP answer uses.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: &'static str,
    pub message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let ConsoleError::Unavailable { .. } = &self {
            tracing::warn!(error = %self, "console: a backend failed");
        }
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
        };
        (self.status(), axum::Json(body)).into_response()
    }
}

/// Turns axum's own refusals of a body or a query (bad JSON, a missing field, a wrong type) into
/// the console's 400.
impl From<axum::extract::rejection::JsonRejection> for ConsoleError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        ConsoleError::bad_request("bad_request", r.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ConsoleError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        ConsoleError::bad_request("bad_request", r.body_text())
    }
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;

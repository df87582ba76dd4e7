//! A JSON body extractor whose every rejection is an [`ApiError`] in our error format.

use crate::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// The largest request body any service accepts.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Like `axum::Json`, but malformed JSON, unknown fields, wrong types, a missing content type and
/// an oversized body are answered with `{"error","message"}` and a 4xx.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonSyntaxError(e) => ApiError::invalid(
                    "invalid_json",
                    format!("body is not valid JSON: {}", e.body_text()),
                ),
                JsonRejection::JsonDataError(e) => ApiError::invalid("invalid_body", e.body_text()),
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as JSON with Content-Type: application/json",
                ),
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!("the body is larger than {BODY_LIMIT} bytes"),
                    )
                }
                other => ApiError::invalid("invalid_body", other.body_text()),
            }),
        }
    }
}

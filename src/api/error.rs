//! The one place errors become HTTP answers (spec §1.5).

use crate::domain::FieldErrors;
use crate::store::StoreError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Errors of the API boundary.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed JSON body")]
    Malformed,
    #[error("body too large")]
    TooLarge,
    #[error("unauthenticated")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    /// `{"status": 0, "message": "<what> not found"}`.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The promotion-code DELETE keeps its nested shape even when not found (B31).
    #[error("{0} not found")]
    NotFoundNested(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with how the program is run (e.g. writes to a mirrored program).
    #[error("{0}")]
    Conflict(String),
    #[error("validation failed: {0}")]
    Validation(FieldErrors),
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64, limit: u32 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        ApiError::Validation(e)
    }
}

impl ApiError {
    /// Maps store errors; `NotFound` becomes the given object's not-found.
    pub fn from_store(e: StoreError, what: &'static str) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound(what),
            StoreError::Invalid(f) => ApiError::Validation(f),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::from_store(e, "Object")
    }
}

fn status_message(code: StatusCode, message: &str) -> Response {
    (code, Json(json!({"status": 0, "message": message}))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Malformed => status_message(StatusCode::BAD_REQUEST, "Malformed JSON body."),
            ApiError::TooLarge => status_message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is too large.",
            ),
            ApiError::Unauthenticated => {
                status_message(StatusCode::UNAUTHORIZED, "Unauthenticated.")
            }
            ApiError::Forbidden => status_message(StatusCode::FORBIDDEN, "Forbidden."),
            ApiError::NotFound(what) => {
                status_message(StatusCode::NOT_FOUND, &format!("{what} not found"))
            }
            ApiError::NotFoundNested(what) => (
                StatusCode::NOT_FOUND,
                Json(json!({"data": {"status": 0, "message": format!("{what} not found")}})),
            )
                .into_response(),
            ApiError::MethodNotAllowed => {
                status_message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
            }
            ApiError::Conflict(m) => status_message(StatusCode::CONFLICT, &m),
            ApiError::Validation(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"message": e.message(), "errors": e.to_json()})),
            )
                .into_response(),
            ApiError::RateLimited {
                retry_after_secs,
                limit,
            } => {
                let mut r = status_message(StatusCode::TOO_MANY_REQUESTS, "Too Many Attempts.");
                let h = r.headers_mut();
                h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                h.insert("x-ratelimit-limit", HeaderValue::from(limit));
                h.insert("x-ratelimit-remaining", HeaderValue::from(0));
                r
            }
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                status_message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error")
            }
        }
    }
}

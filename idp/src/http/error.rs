//! Errors of the HTTP layer, mapped to responses in one place.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::store::StoreError;

/// An error a handler returns. The cause is logged; the client sees only a safe message.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("not found")]
    NotFound,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (error, description) = match self {
            Self::NotFound => ("not_found", "no such resource"),
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "dependency unavailable");
                (
                    "temporarily_unavailable",
                    "the service is temporarily unavailable; retry later",
                )
            }
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                ("server_error", "an internal error occurred")
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unavailable(_)) {
            response.insert_header(("Retry-After", "5"));
        }
        response.insert_header(("Cache-Control", "no-store")).json(json!({
            "error": error,
            "error_description": description,
        }))
    }
}

/// The answer for any path no route matches.
pub async fn not_found() -> Result<HttpResponse, HttpError> {
    Err(HttpError::NotFound)
}

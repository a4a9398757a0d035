//! The admin API's errors, mapped to RFC 9457 problem details in one place.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use api_types::Problem;

use crate::manage::ManageError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bearer token at all (RFC 6750 §3.1: no error code in the challenge).
    #[error("a bearer access token is required")]
    NoToken,
    /// A token that is not (or no longer) valid.
    #[error("the access token is invalid, expired or revoked")]
    InvalidToken,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("too many requests")]
    RateLimited { retry_after_s: u64 },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Invalid(invalid) => Self::Invalid(invalid.to_string()),
            ManageError::Conflict(what) => Self::Conflict(what),
            ManageError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            ManageError::Store(store) => store.into(),
            ManageError::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<crate::domain::Invalid> for ApiError {
    fn from(invalid: crate::domain::Invalid) -> Self {
        Self::Invalid(invalid.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl ApiError {
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::NoToken | Self::InvalidToken => ("unauthorized", "Authentication required"),
            Self::Forbidden(_) => ("forbidden", "Not allowed"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::Invalid(_) => ("invalid-request", "Invalid request"),
            Self::Conflict(_) => ("conflict", "Already exists"),
            Self::RateLimited { .. } => ("rate-limited", "Too many requests"),
            Self::Unavailable(_) => ("unavailable", "Temporarily unavailable"),
            Self::Internal(_) => ("internal", "Internal error"),
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "admin API: dependency unavailable");
                Some("a dependency is unavailable; retry later".into())
            }
            Self::Internal(cause) => {
                tracing::error!(%cause, "admin API: internal error");
                None
            }
            Self::RateLimited { retry_after_s } => Some(format!("retry after {retry_after_s} seconds")),
            other => Some(other.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NoToken | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (kind, title) = self.kind();
        let problem = Problem {
            kind: format!("https://aimpact.dev/problems/{kind}"),
            title: title.into(),
            status: status.as_u16(),
            detail: self.detail(),
        };
        let mut response = HttpResponse::build(status);
        response.insert_header(("Cache-Control", "no-store"));
        match self {
            // RFC 6750 §3: the challenge, with `invalid_token` when one was presented.
            Self::NoToken => {
                response.insert_header(("WWW-Authenticate", "Bearer realm=\"admin\""));
            }
            Self::InvalidToken => {
                response.insert_header((
                    "WWW-Authenticate",
                    "Bearer realm=\"admin\", error=\"invalid_token\"",
                ));
            }
            Self::Forbidden(_) => {
                response.insert_header((
                    "WWW-Authenticate",
                    "Bearer realm=\"admin\", error=\"insufficient_scope\"",
                ));
            }
            Self::RateLimited { retry_after_s } => {
                response.insert_header(("Retry-After", retry_after_s.to_string()));
            }
            Self::Unavailable(_) => {
                response.insert_header(("Retry-After", "5"));
            }
            _ => {}
        }
        response
            .content_type("application/problem+json")
            .body(serde_json::to_string(&problem).unwrap_or_default())
    }
}

/// Turns actix's parse failures (bad JSON, bad query, bad path) into problems.
pub fn bad_input(err: impl std::fmt::Display) -> actix_web::Error {
    ApiError::Invalid(err.to_string()).into()
}

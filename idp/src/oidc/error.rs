//! The single OAuth error type (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; OIDC Core §3.1.2.6).
//! Each error knows its code, a description that is safe to show, and its HTTP status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    pub status: StatusCode,
    /// For `invalid_client` after HTTP Basic, and bearer-token errors.
    pub www_authenticate: Option<String>,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
    /// A fresh nonce for `DPoP-Nonce` (RFC 9449 §8), with `use_dpop_nonce`.
    pub dpop_nonce: Option<String>,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}

macro_rules! constructors {
    ($($name:ident => $code:literal, $status:ident;)+) => {
        impl OAuthError {
            $(pub fn $name(description: impl Into<String>) -> Self {
                Self { code: $code, description: description.into(), status: StatusCode::$status, www_authenticate: None, retry_after: None, dpop_nonce: None }
            })+
        }
    };
}

constructors! {
    invalid_request => "invalid_request", BAD_REQUEST;
    invalid_client => "invalid_client", UNAUTHORIZED;
    invalid_grant => "invalid_grant", BAD_REQUEST;
    unauthorized_client => "unauthorized_client", BAD_REQUEST;
    unsupported_grant_type => "unsupported_grant_type", BAD_REQUEST;
    unsupported_response_type => "unsupported_response_type", BAD_REQUEST;
    invalid_scope => "invalid_scope", BAD_REQUEST;
    access_denied => "access_denied", BAD_REQUEST;
    login_required => "login_required", BAD_REQUEST;
    consent_required => "consent_required", BAD_REQUEST;
    interaction_required => "interaction_required", BAD_REQUEST;
    // OpenID Connect Core Unmet Authentication Requirements 1.0 §3.
    unmet_authentication_requirements => "unmet_authentication_requirements", BAD_REQUEST;
    request_not_supported => "request_not_supported", BAD_REQUEST;
    request_uri_not_supported => "request_uri_not_supported", BAD_REQUEST;
    // OIDC Core §6.2, RFC 9101 §7: a request_uri that is unknown, used or expired.
    invalid_request_uri => "invalid_request_uri", BAD_REQUEST;
    invalid_request_object => "invalid_request_object", BAD_REQUEST;
    // RFC 9449 §5.2, §8.
    invalid_dpop_proof => "invalid_dpop_proof", BAD_REQUEST;
    use_dpop_nonce => "use_dpop_nonce", BAD_REQUEST;
    // RFC 8707 §2: a resource that is invalid, unknown or not allowed.
    invalid_target => "invalid_target", BAD_REQUEST;
    invalid_token => "invalid_token", UNAUTHORIZED;
    insufficient_scope => "insufficient_scope", FORBIDDEN;
    server_error => "server_error", INTERNAL_SERVER_ERROR;
    temporarily_unavailable => "temporarily_unavailable", SERVICE_UNAVAILABLE;
}

impl OAuthError {
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// 429 Too Many Requests with `Retry-After` (RFC 6585 §4).
    pub fn too_many_requests(retry_after_s: u64) -> Self {
        let mut error =
            Self::temporarily_unavailable(format!("too many requests; retry after {retry_after_s} s"))
                .with_status(StatusCode::TOO_MANY_REQUESTS);
        error.retry_after = Some(retry_after_s);
        error
    }

    pub fn with_dpop_nonce(mut self, nonce: String) -> Self {
        self.dpop_nonce = Some(nonce);
        self
    }

    pub fn with_www_authenticate(mut self, value: impl Into<String>) -> Self {
        self.www_authenticate = Some(value.into());
        self
    }

    /// A dependency (deny-list, database) cannot be reached: the cause is logged, the client
    /// is told only that the service is temporarily unavailable (and the request id).
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "dependency unavailable in an OAuth endpoint");
        Self::temporarily_unavailable(UNAVAILABLE)
    }

    /// Logs the internal cause and returns a generic server error.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error in an OAuth endpoint");
        Self::server_error("an internal error occurred")
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                Self::temporarily_unavailable(UNAVAILABLE)
            }
            other => Self::internal(other),
        }
    }
}

const UNAVAILABLE: &str = "the service is temporarily unavailable; retry later";

/// Token-endpoint style JSON errors (RFC 6749 §5.2), never cached.
impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Pragma", "no-cache"));
        if let Some(challenge) = &self.www_authenticate {
            response.insert_header(("WWW-Authenticate", challenge.as_str()));
        }
        if let Some(nonce) = &self.dpop_nonce {
            response.insert_header(("DPoP-Nonce", nonce.as_str()));
        }
        match self.retry_after {
            Some(seconds) => {
                response.insert_header(("Retry-After", seconds.to_string()));
            }
            None if self.status == StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header(("Retry-After", "5"));
            }
            None => {}
        }
        let description = match crate::http::request_id::current() {
            // A 503 names the request, so its log lines (with the cause) can be found.
            Some(id) if self.status == StatusCode::SERVICE_UNAVAILABLE => {
                format!("{} (request id {id})", self.description)
            }
            _ => self.description.clone(),
        };
        response.json(serde_json::json!({ "error": self.code, "error_description": description }))
    }
}

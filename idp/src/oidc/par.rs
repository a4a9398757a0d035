//! Pushed authorization requests (RFC 9126). The client sends the authorization request's
//! parameters to `/par`, authenticated like a token request, and gets a `request_uri`
//! back; the browser then carries only `client_id` and that reference to `/authorize`.
//! The parameters never pass through the browser (so they cannot be read or changed there)
//! and are validated before the user is involved. A reference is used once and lives 60 s.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::client_auth;
use super::error::OAuthError;
use super::params::{Params, form_params};
use super::request::{self, AuthorizeError};
use super::throttle::Endpoint;
use crate::domain::client::Client;
use crate::http::meta::RequestMeta;
use crate::security::random;
use crate::services::Services;
use crate::startup::AppState;

/// RFC 9126 §2.2: the `request_uri` is a URN of this form.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// RFC 9126 §2.2: short, "5 to 600 seconds"; a browser redirect takes far less.
pub const LIFETIME_S: i64 = 60;

/// POST /par (RFC 9126 §2).
pub async fn push(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, OAuthError> {
    let services = &state.services;
    let params = form_params(&req, &body)?;
    let client =
        client_auth::authenticate_limited(services, req.headers(), &params, &meta, Endpoint::Token).await?;
    // §2.1: a pushed request cannot itself refer to another.
    if params.contains("request_uri") {
        return Err(OAuthError::invalid_request(
            "request_uri cannot be pushed (RFC 9126 §2.1)",
        ));
    }
    // §3: a signed request object inside the push is verified now and replaced by its
    // parameters (RFC 9101 §6.3).
    let params = super::request_object::resolve(services, &client, &params).await?;
    // §2.1: validated as the authorization endpoint would, but answered here, in JSON.
    request::validate(&params, &client).map_err(|e| match e {
        AuthorizeError::Page(error) | AuthorizeError::Redirect { error, .. } => error,
    })?;
    let reference = random::token::<32>().map_err(OAuthError::internal)?;
    let now = services.clock.now();
    let stored = serde_json::to_string(&params).map_err(OAuthError::internal)?;
    services
        .store
        .insert_pushed_request(
            &services.tokens.hash(&reference),
            &client.id,
            &stored,
            now + crate::domain::clock::seconds(LIFETIME_S),
        )
        .await?;
    metrics::counter!("idp_pushed_authorization_requests_total").increment(1);
    // §2.2: 201 Created with the reference and its lifetime.
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({
            "request_uri": format!("{REQUEST_URI_PREFIX}{reference}"),
            "expires_in": LIFETIME_S,
        })))
}

/// Any method but POST (RFC 9126 §2: the endpoint takes POST).
pub async fn method_not_allowed() -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(
        &OAuthError::invalid_request("the pushed authorization request endpoint accepts only POST")
            .with_status(StatusCode::METHOD_NOT_ALLOWED),
    );
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static("POST"),
    );
    response
}

/// The parameters pushed under `request_uri` for `client`, taken once (RFC 9126 §4).
pub async fn take(services: &Services, client: &Client, request_uri: &str) -> Result<Params, OAuthError> {
    let reference = request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .ok_or_else(|| OAuthError::invalid_request_uri("not a pushed request's request_uri"))?;
    let now = services.clock.now();
    let taken = services
        .store
        .take_pushed_request(&services.tokens.hash(reference), now)
        .await?;
    let invalid = || OAuthError::invalid_request_uri("the request_uri is unknown, expired or already used");
    let (client_id, stored) = taken.ok_or_else(invalid)?;
    // §4: the client of the authorization request must be the one that pushed it.
    if client_id != client.id {
        return Err(invalid());
    }
    serde_json::from_str(&stored).map_err(OAuthError::internal)
}

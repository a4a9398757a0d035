//! The token endpoint (RFC 6749 §3.2, §5): authenticate the client, then hand the request
//! to the handler of its grant type (one file each in `grants/`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::client_auth;
use super::dpop;
use super::error::OAuthError;
use super::grants;
use super::throttle::Endpoint;
use crate::domain::client::{GrantType, Profile};
use crate::http::meta::RequestMeta;
use crate::startup::AppState;

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

pub async fn token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, OAuthError> {
    // RFC 6749 §3.2: POST with application/x-www-form-urlencoded.
    let params = super::params::form_params(&req, &body)?;
    let services = &state.services;
    let client =
        client_auth::authenticate_limited(services, req.headers(), &params, &meta, Endpoint::Token).await?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("the grant_type parameter is missing"))?;
    let grant_type = GrantType::parse(grant_type)
        .map_err(|_| OAuthError::unsupported_grant_type("unsupported grant_type"))?;
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use this grant type",
        ));
    }
    // RFC 9449 §5: a proof binds the access token (and a public client's refresh token).
    let token_url = format!("{}/token", services.settings.issuer_str());
    let proof = dpop::verify(services, req.headers(), "POST", &token_url, None)
        .await
        .map_err(|e| e.at_token_endpoint(services))?;
    if proof
        .as_ref()
        .is_some_and(|p| !Profile::allows_alg(client.profile, p.alg))
    {
        return Err(OAuthError::invalid_dpop_proof(
            "the proof's algorithm is not allowed by the client's profile",
        ));
    }
    if proof.is_none() && client.dpop_bound_access_tokens {
        return Err(OAuthError::invalid_request(
            "this client's access tokens are DPoP-bound: send a DPoP proof",
        ));
    }
    let proof = proof.as_ref();
    let response = match grant_type {
        GrantType::AuthorizationCode => {
            grants::authorization_code::exchange(services, &client, &params, &meta, proof).await?
        }
        GrantType::RefreshToken => {
            grants::refresh_token::refresh(services, &client, &params, &meta, proof).await?
        }
        GrantType::ClientCredentials => {
            grants::client_credentials::grant(services, &client, &params, proof).await?
        }
    };
    let grant = grant_type.as_str();
    metrics::counter!("idp_tokens_issued_total", "grant_type" => grant, "token_type" => "access_token")
        .increment(1);
    if response.id_token.is_some() {
        metrics::counter!("idp_tokens_issued_total", "grant_type" => grant, "token_type" => "id_token")
            .increment(1);
    }
    if response.refresh_token.is_some() {
        metrics::counter!("idp_tokens_issued_total", "grant_type" => grant, "token_type" => "refresh_token")
            .increment(1);
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(response))
}

/// Any method but POST (RFC 6749 §3.2).
pub async fn method_not_allowed() -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(
        &OAuthError::invalid_request("the token endpoint accepts only POST")
            .with_status(actix_web::http::StatusCode::METHOD_NOT_ALLOWED),
    );
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static("POST"),
    );
    response
}

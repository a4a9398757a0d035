//! The UserInfo endpoint (OIDC Core §5.3), GET and POST. The access token comes in the
//! `Authorization: Bearer` header or, for POST, the form body (RFC 6750 §2.1–2.2), never both;
//! a DPoP-bound token comes as `Authorization: DPoP` with a proof of its key (RFC 9449 §7).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::access_check::{AccessCheck, check};
use super::error::OAuthError;
use super::params::Params;
use crate::domain::scope::Scopes;
use crate::domain::user::UserStatus;
use crate::http::request_id::record_client_id;
use crate::startup::AppState;

/// RFC 6750 §3: a request without any token gets a bare challenge, without an error code.
fn no_token() -> OAuthError {
    OAuthError::invalid_request("no access token was presented")
        .with_status(StatusCode::UNAUTHORIZED)
        .with_www_authenticate("Bearer realm=\"idp\"")
}

fn invalid_token(description: &str) -> OAuthError {
    OAuthError::invalid_token(description.to_string()).with_www_authenticate(format!(
        "Bearer realm=\"idp\", error=\"invalid_token\", error_description=\"{description}\""
    ))
}

/// How the token was presented.
#[derive(Debug, PartialEq, Eq)]
enum Scheme {
    Bearer,
    /// RFC 9449 §7.1: `Authorization: DPoP`, with a proof in the `DPoP` header.
    Dpop,
}

fn bearer(req: &HttpRequest, body: &[u8]) -> Result<(Scheme, String), OAuthError> {
    let header = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let form = if req.method() == actix_web::http::Method::POST
        && req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        Params::parse(body)
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?
            .get("access_token")
            .map(str::to_string)
    } else {
        None
    };
    match (header, form) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "present the access token in one place only",
        )),
        (Some(h), None) => match h.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
                Ok((Scheme::Bearer, token.trim().to_string()))
            }
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("dpop") && !token.trim().is_empty() => {
                Ok((Scheme::Dpop, token.trim().to_string()))
            }
            _ => Err(invalid_token("malformed Authorization header")),
        },
        (None, Some(token)) => Ok((Scheme::Bearer, token)),
        (None, None) => Err(no_token()),
    }
}

/// RFC 9449 §7: a DPoP-bound token is accepted only as `DPoP` with a valid proof by its key
/// (never as a bearer token), and a `DPoP` presentation only of a token bound to the proof's key.
async fn check_key_binding(
    services: &crate::services::Services,
    req: &HttpRequest,
    scheme: Scheme,
    token: &str,
    claims: &super::access_check::Claims,
) -> Result<(), OAuthError> {
    let bound = claims
        .get("cnf")
        .and_then(|cnf| cnf.get("jkt"))
        .and_then(Value::as_str);
    let dpop_challenge = |description: &str| {
        OAuthError::invalid_token(description.to_string()).with_www_authenticate(format!(
            "DPoP error=\"invalid_token\", error_description=\"{description}\", algs=\"{}\"",
            super::dpop::ALGS.join(" ")
        ))
    };
    match (scheme, bound) {
        (Scheme::Bearer, None) => Ok(()),
        (Scheme::Bearer, Some(_)) => Err(dpop_challenge(
            "the access token is DPoP-bound: present it with the DPoP scheme and a proof",
        )),
        (Scheme::Dpop, None) => Err(invalid_token("the access token is not DPoP-bound")),
        (Scheme::Dpop, Some(jkt)) => {
            let url = format!("{}/userinfo", services.settings.issuer_str());
            let proof =
                super::dpop::verify(services, req.headers(), req.method().as_str(), &url, Some(token))
                    .await
                    .map_err(|e| e.at_resource(services))?
                    .ok_or_else(|| {
                        super::dpop::ProofError::Invalid("a DPoP proof is required").at_resource(services)
                    })?;
            if proof.jkt != jkt {
                return Err(dpop_challenge(
                    "the DPoP proof is not by the key the token is bound to",
                ));
            }
            Ok(())
        }
    }
}

pub async fn userinfo(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let services = &state.services;
    let (scheme, token) = bearer(&req, &body)?;
    let claims = match check(services, &token).await {
        AccessCheck::Active(claims) => {
            // The client the (signature-verified) token was issued to.
            if let Some(client_id) = claims.get("client_id").and_then(Value::as_str) {
                record_client_id(client_id);
            }
            claims
        }
        AccessCheck::Inactive => {
            return Err(invalid_token("the access token is invalid, expired or revoked"));
        }
        AccessCheck::Unknown(cause) if services.settings.deny_list_unavailable == "inactive" => {
            tracing::warn!(%cause, "deny-list unavailable: refusing the token");
            return Err(invalid_token("the access token could not be checked"));
        }
        AccessCheck::Unknown(cause) => {
            return Err(OAuthError::unavailable(format!("deny-list unavailable: {cause}")));
        }
    };
    check_key_binding(services, &req, scheme, &token, &claims).await?;
    // RFC 8707: a token whose audience is other resource servers is not for this endpoint
    // (only a token whose `aud` is its own client is).
    if !claims.contains_key("aud") || claims.get("aud") != claims.get("client_id") {
        return Err(invalid_token(
            "the access token is meant for another resource server",
        ));
    }
    let scope =
        Scopes::parse(claims.get("scope").and_then(Value::as_str).unwrap_or_default()).unwrap_or_default();
    if !scope.contains("openid") {
        return Err(
            OAuthError::insufficient_scope("the access token lacks the openid scope").with_www_authenticate(
                "Bearer realm=\"idp\", error=\"insufficient_scope\", scope=\"openid\"",
            ),
        );
    }
    let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
    let user = match uuid::Uuid::parse_str(subject) {
        Ok(id) => services.store.find_user(id).await?,
        Err(_) => None,
    };
    let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
        return Err(invalid_token("the user is no longer active"));
    };
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id.to_string()));
    if scope.contains("profile") {
        out.insert("preferred_username".into(), json!(user.username.as_str()));
        if let Some(name) = &user.name {
            out.insert("name".into(), json!(name));
        }
        out.insert("updated_at".into(), json!(user.updated_at.timestamp()));
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        out.insert("email".into(), json!(email.as_str()));
        out.insert("email_verified".into(), json!(user.email_verified));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(Value::Object(out)))
}

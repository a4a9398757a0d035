//! Token introspection (RFC 7662), with the JWT response of RFC 9701 on request. Only a
//! confidential client that authenticates (typically a resource server) may introspect
//! (§2.1: the endpoint is protected, or it becomes a token-scanning oracle); a refresh token
//! is described only to the client it was issued to. An inactive token gets
//! `{"active": false}` and nothing else (§2.2). A client that a resource server introspects
//! with (RFC 8707) is told only about access tokens meant for that resource server: others
//! are inactive to it (§2.2: "not allowed to know about this token").

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::access_check::{AccessCheck, check};
use super::client_auth;
use super::error::OAuthError;
use super::params::form_params;
use crate::domain::client::{Client, ClientType};
use crate::domain::grant::RefreshState;
use crate::http::meta::RequestMeta;
use crate::security::keys::Alg;
use crate::services::Services;
use crate::startup::AppState;

const JWT_MEDIA_TYPE: &str = "application/token-introspection+jwt";

pub async fn introspect(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, OAuthError> {
    let services = &state.services;
    let params = form_params(&req, &body)?;
    let client = client_auth::authenticate_limited(
        services,
        req.headers(),
        &params,
        &meta,
        super::throttle::Endpoint::Introspection,
    )
    .await?;
    if client.client_type != ClientType::Confidential {
        return Err(OAuthError::invalid_client(
            "introspection requires a confidential client's authentication",
        ));
    }
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("the token parameter is missing"))?;
    let audience = services
        .clients
        .introspection_audience(services.store.as_ref(), &client.id)
        .await?;
    let audience = Audience {
        client_id: &client.id,
        resources: &audience,
    };
    let answer = if params.get("token_type_hint") == Some("refresh_token") {
        match refresh_token(services, &client, token).await? {
            Some(answer) => Some(answer),
            None => access_token(services, token, &audience).await?,
        }
    } else {
        match access_token(services, token, &audience).await? {
            Some(answer) => Some(answer),
            None => refresh_token(services, &client, token).await?,
        }
    };
    let answer = answer.unwrap_or_else(|| json!({ "active": false }));
    let result = if answer["active"] == true {
        "active"
    } else {
        "inactive"
    };
    metrics::counter!("idp_introspections_total", "result" => result).increment(1);
    let wants_jwt = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|t| t.trim().starts_with(JWT_MEDIA_TYPE)));
    let mut response = HttpResponse::Ok();
    response
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"));
    if wants_jwt {
        return Ok(response
            .content_type(JWT_MEDIA_TYPE)
            .body(jwt_response(services, &client, answer)?));
    }
    Ok(response.json(answer))
}

/// RFC 9701 §5: the introspection answer as a signed JWT addressed to the caller.
fn jwt_response(services: &Services, client: &Client, answer: Value) -> Result<String, OAuthError> {
    let now = services.clock.now();
    let claims = json!({
        "iss": services.settings.issuer_str(),
        "aud": client.id,
        "iat": now.timestamp(),
        "token_introspection": answer,
    });
    services
        .keys
        .current()
        .sign(Alg::RS256, "token-introspection+jwt", &claims, now)
        .map_err(OAuthError::internal)
}

/// Who asks: a client, and the resource servers it introspects for (if any).
struct Audience<'a> {
    client_id: &'a str,
    resources: &'a [String],
}

impl Audience<'_> {
    /// Whether the token's `aud` allows this caller to learn about it: always for a caller
    /// that is no resource server; else the token must name one of its resources (or it).
    fn may_know(&self, aud: Option<&Value>) -> bool {
        if self.resources.is_empty() {
            return true;
        }
        let names = |name: &str| name == self.client_id || self.resources.iter().any(|r| r == name);
        match aud {
            Some(Value::String(one)) => names(one),
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).any(names),
            _ => false,
        }
    }
}

async fn access_token(
    services: &Services,
    token: &str,
    audience: &Audience<'_>,
) -> Result<Option<Value>, OAuthError> {
    let claims = match check(services, token).await {
        AccessCheck::Active(claims) if audience.may_know(claims.get("aud")) => claims,
        AccessCheck::Active(_) => return Ok(None),
        AccessCheck::Inactive => return Ok(None),
        AccessCheck::Unknown(cause) if services.settings.deny_list_unavailable == "inactive" => {
            tracing::warn!(%cause, "deny-list unavailable: answering inactive");
            return Ok(Some(json!({ "active": false })));
        }
        AccessCheck::Unknown(cause) => {
            return Err(OAuthError::unavailable(format!("deny-list unavailable: {cause}")));
        }
    };
    let mut out = Map::new();
    out.insert("active".into(), json!(true));
    // RFC 9449 §6.2: a DPoP-bound token says so, with the key's thumbprint in `cnf`, so the
    // resource server can check the proof that comes with it.
    let bound = claims.get("cnf").is_some_and(|cnf| cnf.get("jkt").is_some());
    out.insert("token_type".into(), json!(if bound { "DPoP" } else { "Bearer" }));
    for name in [
        "scope",
        "client_id",
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "jti",
        "cnf",
    ] {
        if let Some(value) = claims.get(name) {
            out.insert(name.into(), value.clone());
        }
    }
    if let Some(iat) = claims.get("iat") {
        out.insert("nbf".into(), iat.clone());
    }
    if let Some(username) = username(services, claims.get("sub").and_then(Value::as_str)).await? {
        out.insert("username".into(), json!(username));
    }
    Ok(Some(Value::Object(out)))
}

/// A refresh token is a credential of its client alone: to anyone else it is inactive.
async fn refresh_token(
    services: &Services,
    client: &Client,
    token: &str,
) -> Result<Option<Value>, OAuthError> {
    let now = services.clock.now();
    let Some(family) = services
        .store
        .find_refresh_family(&services.tokens.hash(token))
        .await?
    else {
        return Ok(None);
    };
    let found = family.token;
    // A token that can no longer be used is not active: retired, revoked, expired, of a
    // revoked grant or of a user who is disabled or gone.
    if found.client_id != client.id
        || found.state != RefreshState::Active
        || found.expires_at <= now
        || family.grant.revoked_at.is_some()
        || !family.user_active && found.user_id.is_some()
    {
        return Ok(None);
    }
    let mut out = json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": found.scope,
        "client_id": found.client_id,
        "aud": found.client_id,
        "iss": services.settings.issuer_str(),
        "exp": found.expires_at.timestamp(),
        "iat": found.created_at.timestamp(),
        "nbf": found.created_at.timestamp(),
    });
    if let Some(user_id) = &found.user_id {
        out["sub"] = json!(user_id);
        if let Some(username) = username(services, Some(user_id)).await? {
            out["username"] = json!(username);
        }
    }
    Ok(Some(out))
}

async fn username(services: &Services, sub: Option<&str>) -> Result<Option<String>, OAuthError> {
    let Some(id) = sub.and_then(|s| uuid::Uuid::parse_str(s).ok()) else {
        return Ok(None);
    };
    Ok(services
        .store
        .find_user(id)
        .await?
        .map(|u| u.username.as_str().to_string()))
}

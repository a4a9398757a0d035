//! Token revocation (RFC 7009) and the one place that revokes a grant everywhere: in the
//! store (its refresh tokens) and in the deny-list (the access tokens issued under it).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::client_auth;
use super::error::OAuthError;
use super::params::form_params;
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::client::Client;
use crate::domain::grant::RefreshState;
use crate::http::meta::RequestMeta;
use crate::manage::record;
use crate::security::denylist::Denied;
use crate::services::Services;
use crate::startup::AppState;

/// How long an access token issued to `client` can live: its grant stays denied that long.
pub fn access_token_lifetime(services: &Services, client: Option<&Client>) -> Duration {
    let default = crate::domain::clock::secs(services.settings.access_token_ttl_s);
    crate::domain::clock::seconds(
        client
            .and_then(|c| c.access_token_ttl_s)
            .unwrap_or(default)
            .max(default),
    )
}

/// Revokes a grant: its refresh tokens in the store, its access tokens in the deny-list.
/// Returns whether the grant was still live.
pub async fn revoke_grant(
    services: &Services,
    grant_id: &str,
    client: Option<&Client>,
    now: DateTime<Utc>,
) -> Result<bool, OAuthError> {
    let revoked = services.store.revoke_grant(grant_id, now).await?;
    let until = now
        .checked_add_signed(access_token_lifetime(services, client))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    services
        .deny_list
        .deny(Denied::Grant(grant_id), until, now)
        .await
        .map_err(|e| OAuthError::unavailable(format!("revocation could not be recorded: {e}")))?;
    Ok(revoked)
}

/// `POST /revoke` (RFC 7009 §2.1). The answer is 200 whether or not the token was known,
/// valid or the caller's: a client cannot learn anything about other clients' tokens.
pub async fn revoke(
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
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("the token parameter is missing"))?;
    let now = services.clock.now();
    // The hint only decides which lookup comes first (RFC 7009 §2.1).
    let access_first = params.get("token_type_hint") == Some("access_token");
    let mut revoked = false;
    for access in [access_first, !access_first] {
        revoked = if access {
            revoke_access_token(services, &client, token, now).await?
        } else {
            revoke_refresh_token(services, &client, token, now).await?
        };
        if revoked {
            break;
        }
    }
    if revoked {
        metrics::counter!("idp_token_revocations_total").increment(1);
        let mut event = SecurityEvent::new(EventType::TokenRevoked, Outcome::Success, now);
        event.client_id = Some(client.id.clone());
        record(services, meta.stamp(event)).await;
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .finish())
}

/// A refresh token revokes its whole family and the access tokens issued from it.
async fn revoke_refresh_token(
    services: &Services,
    client: &Client,
    token: &str,
    now: DateTime<Utc>,
) -> Result<bool, OAuthError> {
    let Some(found) = services
        .store
        .find_refresh_token(&services.tokens.hash(token))
        .await?
    else {
        return Ok(false);
    };
    if found.client_id != client.id || found.state == RefreshState::Revoked {
        return Ok(false);
    }
    revoke_grant(services, &found.grant_id, Some(client), now).await
}

/// An access token of this client is denied until it expires, on every replica.
async fn revoke_access_token(
    services: &Services,
    client: &Client,
    token: &str,
    now: DateTime<Utc>,
) -> Result<bool, OAuthError> {
    let Ok((typ, claims)) = services
        .keys
        .current()
        .verify(token, services.settings.issuer_str(), false, now)
    else {
        return Ok(false);
    };
    let owned = claims.get("client_id").and_then(Value::as_str) == Some(client.id.as_str());
    let is_access = typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt"));
    let (Some(jti), Some(exp)) = (
        claims.get("jti").and_then(Value::as_str),
        claims.get("exp").and_then(Value::as_i64),
    ) else {
        return Ok(false);
    };
    if !(owned && is_access) {
        return Ok(false);
    }
    let until = DateTime::from_timestamp(exp, 0).unwrap_or(now);
    services
        .deny_list
        .deny(Denied::Token(jti), until, now)
        .await
        .map_err(|e| OAuthError::unavailable(format!("revocation could not be recorded: {e}")))?;
    Ok(true)
}

//! The refresh token grant (RFC 6749 §6) with rotation: every use returns a new refresh
//! token and retires the presented one atomically (RFC 9700 §4.14.2). A retired token
//! presented again is a reuse: the whole family is revoked.

use super::{Authentication, active_user, new_refresh_token, user_tokens};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::client::Client;
use crate::domain::grant::RefreshState;
use crate::domain::scope::Scopes;
use crate::http::meta::RequestMeta;
use crate::manage::record;
use crate::oidc::error::OAuthError;
use crate::oidc::params::Params;
use crate::oidc::token::TokenResponse;
use crate::services::Services;

pub async fn refresh(
    services: &Services,
    client: &Client,
    params: &Params,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("the refresh_token parameter is missing"))?;
    let now = services.clock.now();
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    let token = services
        .store
        .find_refresh_token(&services.tokens.hash(presented))
        .await?
        .ok_or_else(invalid)?;
    if token.client_id != client.id {
        return Err(invalid());
    }
    match token.state {
        RefreshState::Active => {}
        RefreshState::Revoked => return Err(invalid()),
        RefreshState::Rotated => {
            let revoked = services.store.revoke_grant(&token.grant_id, now).await?;
            let mut event = SecurityEvent::new(EventType::RefreshTokenReused, Outcome::Failure, now);
            event.client_id = Some(client.id.clone());
            event.user_id = token.user_id.clone();
            event.details = serde_json::json!({ "grant_id": token.grant_id, "generation": token.generation, "family_revoked": revoked });
            record(services, meta.stamp(event)).await;
            return Err(invalid());
        }
    }
    if token.expires_at <= now {
        return Err(invalid());
    }
    let grant = services
        .store
        .find_grant(&token.grant_id)
        .await?
        .filter(|g| g.revoked_at.is_none())
        .ok_or_else(invalid)?;
    let user_id = grant.user_id.clone().ok_or_else(invalid)?;
    active_user(services, &user_id).await?;
    // RFC 6749 §6: a narrower scope may be asked for, never a wider one.
    let granted = Scopes::parse(&token.scope).unwrap_or_default();
    let scope = match params.get("scope") {
        Some(raw) => {
            let asked = Scopes::parse(raw)
                .ok_or_else(|| OAuthError::invalid_scope("the scope parameter is malformed"))?;
            if !asked.is_subset(&granted) {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds the granted scope",
                ));
            }
            asked
        }
        None => granted,
    };
    let (new_token, successor) = new_refresh_token(
        services,
        &grant,
        &scope,
        token.generation + 1,
        Some(token.token_hash.clone()),
        now,
    )?;
    if !services
        .store
        .rotate_refresh_token(&token.token_hash, &successor, now)
        .await?
    {
        // Another request rotated this token a moment ago.
        return Err(invalid());
    }
    let auth = Authentication {
        user_id: &user_id,
        sid: grant.session_id.as_deref(),
        auth_time: grant.created_at,
        amr: &[],
        nonce: None,
    };
    user_tokens(services, client, &grant, &scope, &auth, Some(new_token), now)
}

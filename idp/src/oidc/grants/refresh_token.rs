//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700
//! §4.14.2): every use returns a new refresh token and retires the presented one in one
//! compare-and-set, so of N concurrent uses exactly one rotates. A retired token presented
//! again is a reuse and revokes the whole family, except within the client's reuse window,
//! where the same client gets back exactly the answer already given (a lost response or
//! two tabs refreshing at once are not attacks).

use chrono::{DateTime, Utc};
use secrecy::SecretBox;

use super::{Authentication, new_refresh_token, user_tokens};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::client::Client;
use crate::domain::grant::{RefreshState, RefreshToken};
use crate::domain::scope::Scopes;
use crate::http::meta::RequestMeta;
use crate::manage::record;
use crate::oidc::error::OAuthError;
use crate::oidc::params::Params;
use crate::oidc::revocation::revoke_grant;
use crate::oidc::token::TokenResponse;
use crate::services::Services;

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

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
    let hash = services.tokens.hash(presented);
    // One read: the token, its grant and the grant's user.
    let family = services
        .store
        .find_refresh_family(&hash)
        .await?
        .ok_or_else(invalid)?;
    let token = &family.token;
    // A token presented by another client is refused without revealing anything.
    if token.client_id != client.id {
        return Err(invalid());
    }
    match token.state {
        RefreshState::Active => {}
        RefreshState::Revoked => return Err(invalid()),
        RefreshState::Rotated => return retired_token(services, client, token, meta, now).await,
    }
    // The idle timeout counts from the token's issue: each rotation issues a new one.
    let idle_expired = client
        .refresh_idle_ttl_s
        .is_some_and(|idle| (now - token.created_at).num_seconds() > idle);
    if token.expires_at <= now || idle_expired {
        return Err(invalid());
    }
    let grant = &family.grant;
    if grant.revoked_at.is_some() {
        return Err(invalid());
    }
    let user_id = grant.user_id.clone().ok_or_else(invalid)?;
    if !family.user_active {
        return Err(OAuthError::invalid_grant("the user is not active"));
    }
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
        grant,
        &scope,
        token.generation + 1,
        Some(hash.clone()),
        now,
    )?;
    let auth = Authentication {
        user_id: &user_id,
        sid: grant.session_id.as_deref(),
        auth_time: grant.auth_time.unwrap_or(grant.created_at),
        amr: &grant.amr,
        nonce: None,
    };
    let response = user_tokens(services, client, grant, &scope, &auth, Some(new_token), now)?;
    let saved = if client.refresh_reuse_window_s > 0 {
        Some(seal(services, &hash, &response)?)
    } else {
        None
    };
    if services
        .store
        .rotate_refresh_token(&hash, &successor, saved.as_deref(), now)
        .await?
    {
        metrics::counter!("idp_refresh_rotations_total").increment(1);
        return Ok(response);
    }
    // Another request rotated this token a moment ago: this one is a retry, or a replay.
    let token = services
        .store
        .find_refresh_token(&hash)
        .await?
        .ok_or_else(invalid)?;
    retired_token(services, client, &token, meta, now).await
}

/// A retired token presented again: within the reuse window, the answer already given;
/// otherwise a reuse, which revokes the family and is recorded.
async fn retired_token(
    services: &Services,
    client: &Client,
    token: &RefreshToken,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
    let window = chrono::Duration::seconds(client.refresh_reuse_window_s);
    let within_window =
        token.state == RefreshState::Rotated && token.rotated_at.is_some_and(|at| now - at <= window);
    if within_window && let Some(saved) = &token.successor_response {
        return open(services, &token.token_hash, saved);
    }
    metrics::counter!("idp_refresh_token_reuse_total").increment(1);
    let revoked = revoke_grant(services, &token.grant_id, Some(client), now).await?;
    let mut event = SecurityEvent::new(EventType::RefreshTokenReused, Outcome::Failure, now);
    event.client_id = Some(client.id.clone());
    event.user_id = token.user_id.clone();
    event.details = serde_json::json!({ "grant_id": token.grant_id, "generation": token.generation, "family_revoked": revoked });
    record(services, meta.stamp(event)).await;
    Err(invalid())
}

/// The answer, encrypted under a key derived from the master key and bound to the token.
fn seal(services: &Services, token_hash: &str, response: &TokenResponse) -> Result<Vec<u8>, OAuthError> {
    let json = serde_json::to_vec(response).map_err(OAuthError::internal)?;
    services
        .response_key
        .encrypt(token_hash, &SecretBox::new(Box::new(json)))
        .map_err(OAuthError::internal)
}

fn open(services: &Services, token_hash: &str, sealed: &[u8]) -> Result<TokenResponse, OAuthError> {
    let json = services
        .response_key
        .decrypt(token_hash, sealed)
        .map_err(OAuthError::internal)?;
    serde_json::from_slice(secrecy::ExposeSecret::expose_secret(&json)).map_err(OAuthError::internal)
}

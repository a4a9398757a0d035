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
use crate::domain::client::{Client, ClientType};
use crate::domain::grant::{RefreshState, RefreshToken};
use crate::domain::scope::Scopes;
use crate::http::meta::RequestMeta;
use crate::manage::record;
use crate::oidc::dpop::Proof;
use crate::oidc::error::OAuthError;
use crate::oidc::params::Params;
use crate::oidc::resources::{self, TokenTarget};
use crate::oidc::revocation::revoke_grant;
use crate::oidc::token::TokenResponse;
use crate::oidc::tokens::opaque_token;
use crate::services::Services;
use crate::store::{RefreshFamily, RefreshRotation};

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

pub async fn refresh(
    services: &Services,
    client: &Client,
    params: &Params,
    meta: &RequestMeta,
    dpop: Option<&Proof>,
) -> Result<TokenResponse, OAuthError> {
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("the refresh_token parameter is missing"))?;
    let now = services.clock.now();
    let hash = services.tokens.hash(presented);
    // A strict client keeping its scope needs nothing signed or saved before the rotation:
    // the database checks and rotates in one step, and the tokens are signed after it.
    // Within a reuse window the answer must be saved with the rotation, and a narrowed scope
    // must be checked first, so those sign first and then compare-and-set.
    // A public client's token may be bound to a DPoP key, checked before it rotates; a
    // narrowed `resource` is checked before too (RFC 8707 §2.2).
    if client.refresh_reuse_window_s == 0
        && params.get("scope").is_none()
        && params.resources().is_empty()
        && client.client_type != ClientType::Public
    {
        return rotate_then_sign(services, client, &hash, meta, now, dpop).await;
    }
    // One read: the token, its grant and the grant's user.
    let family = services
        .store
        .find_refresh_family(&hash)
        .await?
        .ok_or_else(invalid)?;
    if check(&family, client, now)? == Presented::Retired {
        return retired_token(services, client, &family.token, meta, now).await;
    }
    check_dpop_binding(client, &family, dpop)?;
    let token = &family.token;
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
    let resources = resources::narrowed(params, client, &family.grant.resources)?;
    let target = resources::target(services, client, resources, &scope).await?;
    let (new_token, successor) = new_refresh_token(
        services,
        &family.grant,
        &scope,
        token.generation + 1,
        Some(hash.clone()),
        now,
    )?;
    let response = family_tokens(services, client, &family, &scope, &target, new_token, now, dpop)?;
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
    lost_race(services, client, &hash, meta, now).await
}

/// The strict path: one store call checks the rules and rotates (one round trip on
/// PostgreSQL); only then are the new tokens signed.
async fn rotate_then_sign(
    services: &Services,
    client: &Client,
    hash: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
    dpop: Option<&Proof>,
) -> Result<TokenResponse, OAuthError> {
    let (new_token, successor_hash) = opaque_token(services)?;
    let attempt = services
        .store
        .rotate_refresh_token_if_valid(&RefreshRotation {
            token_hash: hash,
            successor_hash: &successor_hash,
            client_id: &client.id,
            now,
            idle_cutoff: idle_cutoff(client, now),
        })
        .await?
        .ok_or_else(invalid)?;
    let family = &attempt.family;
    if !attempt.rotated {
        // Say why, from the family as it was read; if every rule held then, another request
        // rotated the token in the meantime.
        if check(family, client, now)? == Presented::Retired {
            return retired_token(services, client, &family.token, meta, now).await;
        }
        return lost_race(services, client, hash, meta, now).await;
    }
    metrics::counter!("idp_refresh_rotations_total").increment(1);
    let scope = Scopes::parse(&family.token.scope).unwrap_or_default();
    // The grant's resources, as at its authorization: rotated already, so only a resource
    // removed by an administrator since can fail here.
    let target = resources::target(services, client, family.grant.resources.clone(), &scope).await?;
    family_tokens(services, client, family, &scope, &target, new_token, now, dpop)
}

/// RFC 9449 §5: a public client's refresh token bound to a DPoP key is used only with a
/// proof by that key (a confidential client's tokens are not bound: it authenticates).
fn check_dpop_binding(
    client: &Client,
    family: &RefreshFamily,
    dpop: Option<&Proof>,
) -> Result<(), OAuthError> {
    let bound = family.grant.dpop_jkt.as_deref();
    if client.client_type == ClientType::Public
        && bound.is_some_and(|jkt| dpop.map(|p| p.jkt.as_str()) != Some(jkt))
    {
        return Err(OAuthError::invalid_grant(
            "the refresh token is bound to a DPoP key this request does not prove",
        ));
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Presented {
    Usable,
    /// Rotated already: a retry or a replay.
    Retired,
}

/// The rules a presented refresh token must pass, each failure with its answer. The strict
/// path's store call enforces the same rules in SQL (`rotation_conditions!`).
fn check(family: &RefreshFamily, client: &Client, now: DateTime<Utc>) -> Result<Presented, OAuthError> {
    let token = &family.token;
    // A token presented by another client is refused without revealing anything.
    if token.client_id != client.id {
        return Err(invalid());
    }
    match token.state {
        RefreshState::Active => {}
        RefreshState::Revoked => return Err(invalid()),
        RefreshState::Rotated => return Ok(Presented::Retired),
    }
    let idle_expired = idle_cutoff(client, now).is_some_and(|cutoff| token.created_at < cutoff);
    if token.expires_at <= now || idle_expired || family.grant.revoked_at.is_some() {
        return Err(invalid());
    }
    if family.grant.user_id.is_none() {
        return Err(invalid());
    }
    if !family.user_active {
        return Err(OAuthError::invalid_grant("the user is not active"));
    }
    Ok(Presented::Usable)
}

/// The idle timeout counts from the token's issue (each rotation issues a new one): tokens
/// issued before the cutoff have been idle too long.
fn idle_cutoff(client: &Client, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    client
        .refresh_idle_ttl_s
        .map(|idle| crate::domain::clock::before(now, idle))
}

/// The access token, ID token and new refresh token of a rotation.
#[allow(clippy::too_many_arguments)]
fn family_tokens(
    services: &Services,
    client: &Client,
    family: &RefreshFamily,
    scope: &Scopes,
    target: &TokenTarget,
    refresh_token: String,
    now: DateTime<Utc>,
    dpop: Option<&Proof>,
) -> Result<TokenResponse, OAuthError> {
    let grant = &family.grant;
    let user_id = grant.user_id.as_deref().ok_or_else(invalid)?;
    let auth = Authentication {
        user_id,
        sid: grant.session_id.as_deref(),
        auth_time: grant.auth_time.unwrap_or(grant.created_at),
        amr: &grant.amr,
        nonce: None,
        dpop_jkt: dpop.map(|p| p.jkt.as_str()),
    };
    user_tokens(
        services,
        client,
        grant,
        scope,
        target,
        &auth,
        Some(refresh_token),
        now,
    )
}

/// The compare-and-set failed though the rules held when read: another request changed the
/// token in the meantime. Read it again: rotated means this request is a retry or a replay;
/// revoked (or anything else) is a plain refusal, never a reuse.
async fn lost_race(
    services: &Services,
    client: &Client,
    hash: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
    let family = services
        .store
        .find_refresh_family(hash)
        .await?
        .ok_or_else(invalid)?;
    match check(&family, client, now)? {
        Presented::Retired => retired_token(services, client, &family.token, meta, now).await,
        Presented::Usable => Err(invalid()),
    }
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
    let window = crate::domain::clock::seconds(client.refresh_reuse_window_s);
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

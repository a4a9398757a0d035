//! One module per grant type (RFC 6749 §4.1.3, §4.4, §6).

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use chrono::{DateTime, Utc};

use super::error::OAuthError;
use super::resources::TokenTarget;
use super::token::TokenResponse;
use super::tokens::{AccessTokenFacts, IdTokenFacts, issue_access_token, issue_id_token, opaque_token};
use crate::domain::client::{Client, GrantType};
use crate::domain::grant::{Grant, RefreshState, RefreshToken};
use crate::domain::scope::Scopes;
use crate::services::Services;

/// Who the tokens of a user grant describe.
pub struct Authentication<'a> {
    pub user_id: &'a str,
    pub sid: Option<&'a str>,
    pub auth_time: DateTime<Utc>,
    pub amr: &'a [String],
    pub nonce: Option<&'a str>,
    /// The DPoP key of this token request (RFC 9449), to bind the access token to.
    pub dpop_jkt: Option<&'a str>,
}

/// Access token (for `target`), ID token (when the grant's `scope` has `openid`) and, when
/// the grant allows it, a refresh token.
#[allow(clippy::too_many_arguments)]
pub fn user_tokens(
    services: &Services,
    client: &Client,
    grant: &Grant,
    scope: &Scopes,
    target: &TokenTarget,
    auth: &Authentication<'_>,
    refresh: Option<String>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
    // RFC 6749 §5.1: the response's scope is the access token's.
    let scope_text = target.scope.to_string();
    let access = issue_access_token(
        services,
        client,
        &AccessTokenFacts {
            subject: auth.user_id,
            scope: &scope_text,
            grant_id: Some(&grant.id),
            sid: auth.sid,
            authentication: Some((auth.auth_time, auth.amr)),
            dpop_jkt: auth.dpop_jkt,
            audience: &target.audience,
        },
        now,
    )?;
    let id_token = if scope.contains("openid") {
        Some(issue_id_token(
            services,
            &IdTokenFacts {
                client,
                subject: auth.user_id,
                nonce: auth.nonce,
                auth_time: auth.auth_time,
                amr: auth.amr,
                sid: auth.sid,
                access_token: Some(&access.token),
            },
            now,
        )?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access.token,
        token_type: access.token_type.into(),
        expires_in: access.expires_in,
        scope: scope_text,
        refresh_token: refresh,
        id_token,
    })
}

/// Whether a refresh token goes with this grant: only with `offline_access`, and only to
/// clients allowed the refresh_token grant.
pub fn issues_refresh_token(client: &Client, scope: &Scopes) -> bool {
    scope.contains("offline_access") && client.allows_grant(GrantType::RefreshToken)
}

/// A new refresh token in `grant`'s family; returns the token and its record.
pub fn new_refresh_token(
    services: &Services,
    grant: &Grant,
    scope: &Scopes,
    generation: i64,
    parent_hash: Option<String>,
    now: DateTime<Utc>,
) -> Result<(String, RefreshToken), OAuthError> {
    let (token, token_hash) = opaque_token(services)?;
    let record = RefreshToken {
        token_hash,
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        user_id: grant.user_id.clone(),
        generation,
        parent_hash,
        state: RefreshState::Active,
        scope: scope.to_string(),
        created_at: now,
        expires_at: grant.expires_at,
        last_used_at: None,
        rotated_at: None,
        successor_response: None,
    };
    Ok((token, record))
}

/// The user of a grant, if still allowed to receive tokens (exists and is active).
pub async fn active_user(services: &Services, user_id: &str) -> Result<(), OAuthError> {
    let id = uuid::Uuid::parse_str(user_id)
        .map_err(|_| OAuthError::invalid_grant("the grant's user no longer exists"))?;
    match services.store.find_user(id).await? {
        Some(user) if user.status == crate::domain::user::UserStatus::Active => Ok(()),
        _ => Err(OAuthError::invalid_grant("the user is not active")),
    }
}

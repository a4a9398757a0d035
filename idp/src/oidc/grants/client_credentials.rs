//! The client credentials grant (RFC 6749 §4.4): a confidential client acting for itself.
//! No user, so no ID token and no refresh token (§4.4.3).

use crate::domain::client::{Client, ClientType};
use crate::domain::scope::Scopes;
use crate::oidc::dpop::Proof;
use crate::oidc::error::OAuthError;
use crate::oidc::params::Params;
use crate::oidc::resources;
use crate::oidc::token::TokenResponse;
use crate::oidc::tokens::{AccessTokenFacts, issue_access_token};
use crate::services::Services;

/// Scopes that only make sense with a user.
const USER_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

pub async fn grant(
    services: &Services,
    client: &Client,
    params: &Params,
    dpop: Option<&Proof>,
) -> Result<TokenResponse, OAuthError> {
    if client.client_type != ClientType::Confidential {
        return Err(OAuthError::unauthorized_client(
            "client_credentials requires a confidential client",
        ));
    }
    let allowed: Vec<String> = client
        .scopes
        .iter()
        .filter(|s| !USER_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect();
    let scope = match params.get("scope") {
        Some(raw) => {
            let asked = Scopes::parse(raw)
                .ok_or_else(|| OAuthError::invalid_scope("the scope parameter is malformed"))?;
            if asked.iter().any(|s| !allowed.iter().any(|a| a == s)) {
                return Err(OAuthError::invalid_scope(
                    "a requested scope is not allowed for this client",
                ));
            }
            asked
        }
        None => Scopes::from_values(allowed),
    };
    // RFC 8707 §2: a token for the resources asked for, among the client's own.
    let resources = resources::requested(params, client)?;
    let target = resources::target(services, client, resources, &scope).await?;
    let now = services.clock.now();
    let scope_text = target.scope.to_string();
    let facts = AccessTokenFacts {
        subject: &client.id,
        scope: &scope_text,
        grant_id: None,
        sid: None,
        authentication: None,
        dpop_jkt: dpop.map(|p| p.jkt.as_str()),
        audience: &target.audience,
    };
    let access = issue_access_token(services, client, &facts, now)?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: access.token_type.into(),
        expires_in: access.expires_in,
        scope: scope_text,
        refresh_token: None,
        id_token: None,
    })
}

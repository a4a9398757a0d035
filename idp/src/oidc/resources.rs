//! Resource indicators (RFC 8707): the `resource` parameter names the APIs a token is for,
//! and the access token's `aud` then names those alone (RFC 9068 §3), with only the scopes
//! they accept. Without it, the token's audience stays the client itself.

use super::error::OAuthError;
use super::params::Params;
use crate::domain::client::Client;
use crate::domain::resource::parse_identifier;
use crate::domain::scope::Scopes;
use crate::services::Services;

/// §2: every `resource` an absolute URI without fragment, and one of those this client may
/// ask for; each kept once.
pub fn requested(params: &Params, client: &Client) -> Result<Vec<String>, OAuthError> {
    let mut resources: Vec<String> = Vec::new();
    for resource in params.resources() {
        parse_identifier(resource).map_err(|e| OAuthError::invalid_target(e.0))?;
        if !client.resources.contains(resource) {
            return Err(OAuthError::invalid_target(format!(
                "resource {resource:?} is not one this client may ask for"
            )));
        }
        if !resources.contains(resource) {
            resources.push(resource.clone());
        }
    }
    Ok(resources)
}

/// §2.2: at the token endpoint, the resources of this token: those asked for, each among
/// the granted ones; without `resource`, all the granted ones.
pub fn narrowed(params: &Params, client: &Client, granted: &[String]) -> Result<Vec<String>, OAuthError> {
    let asked = requested(params, client)?;
    if asked.is_empty() {
        return Ok(granted.to_vec());
    }
    if let Some(extra) = asked.iter().find(|r| !granted.contains(r)) {
        return Err(OAuthError::invalid_target(format!(
            "resource {extra:?} was not granted by the authorization"
        )));
    }
    Ok(asked)
}

/// Whom an access token is for and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTarget {
    /// The resources of its `aud`; empty: the client itself.
    pub audience: Vec<String>,
    pub scope: Scopes,
}

/// The target of a token for `resources` from `granted` scopes: each resource still
/// registered and allowed to the client, and of the scopes only those one of them accepts.
pub async fn target(
    services: &Services,
    client: &Client,
    resources: Vec<String>,
    granted: &Scopes,
) -> Result<TokenTarget, OAuthError> {
    if resources.is_empty() {
        return Ok(TokenTarget {
            audience: resources,
            scope: granted.clone(),
        });
    }
    let mut accepted: Vec<String> = Vec::new();
    for identifier in &resources {
        let server = services
            .store
            .find_resource_server(identifier)
            .await?
            .filter(|_| client.resources.contains(identifier))
            .ok_or_else(|| {
                OAuthError::invalid_target(format!("resource {identifier:?} is no longer available"))
            })?;
        accepted.extend(server.accepted(granted).to_vec());
    }
    let scope = granted.intersect(&accepted);
    if scope.is_empty() && !granted.is_empty() {
        return Err(OAuthError::invalid_scope(
            "none of the granted scopes is accepted by the requested resource",
        ));
    }
    Ok(TokenTarget {
        audience: resources,
        scope,
    })
}

//! Registering, changing and removing clients.

use secrecy::{ExposeSecret, SecretString};

use super::{Actor, ManageError, record};
use crate::audit::EventType;
use crate::domain::Invalid;
use crate::domain::client::{Client, ClientType, NewClient, TokenEndpointAuthMethod};
use crate::security::random;
use crate::services::Services;

/// A registered client and, for a confidential one, its secret: shown once, never stored.
pub struct Registered {
    pub client: Client,
    pub secret: Option<SecretString>,
}

pub async fn register(services: &Services, new: NewClient, actor: Actor) -> Result<Registered, ManageError> {
    // base64url may begin with `-`, which command lines take for a flag: redraw (1 in 64).
    let mut id = random::token::<18>().map_err(internal)?;
    while id.starts_with('-') {
        id = random::token::<18>().map_err(internal)?;
    }
    register_as(services, id, new, actor).await
}

/// Registers `new` under the given client id.
pub async fn register_as(
    services: &Services,
    id: String,
    mut new: NewClient,
    actor: Actor,
) -> Result<Registered, ManageError> {
    new.apply_profile();
    new.validate()?;
    super::resources::check_registered(services, &mut new.resources).await?;
    let method = new.auth_method();
    let (secret, secret_hash, secret_sealed) = if method.uses_secret() {
        let (secret, hash) = services.secrets.generate().map_err(internal)?;
        let sealed = seal_secret(services, &id, method, &secret)?;
        (Some(secret), Some(hash), sealed)
    } else {
        (None, None, None)
    };
    let now = services.clock.now();
    let client = Client {
        id,
        secret_hash,
        secret_sealed,
        theme: None,
        created_at: now,
        ..apply(None, new, now)
    };
    services.store.create_client(&client).await?;
    let mut event = actor.event(EventType::ClientCreated, now);
    event.client_id = Some(client.id.clone());
    event.details = serde_json::json!({ "name": client.name, "type": client.client_type.as_str() });
    record(services, event).await;
    Ok(Registered { client, secret })
}

/// Replaces a client's settings. Its id, type and secret stay.
pub async fn update(
    services: &Services,
    client_id: &str,
    mut new: NewClient,
    actor: Actor,
) -> Result<Client, ManageError> {
    new.apply_profile();
    new.validate()?;
    super::resources::check_registered(services, &mut new.resources).await?;
    let current = get(services, client_id).await?;
    if new.client_type != current.client_type {
        return Err(Invalid::new(format!(
            "the client type cannot change (it is {}); register a new client instead",
            current.client_type.as_str()
        ))
        .into());
    }
    let now = services.clock.now();
    let client = apply(Some(&current), new, now);
    if !services.store.update_client(&client).await? {
        return Err(ManageError::NotFound(format!("client {client_id:?}")));
    }
    services.clients.invalidate(client_id);
    let mut event = actor.event(EventType::ClientChanged, now);
    event.client_id = Some(client.id.clone());
    event.details = serde_json::json!({ "name": client.name });
    record(services, event).await;
    Ok(client)
}

/// Gives a client that authenticates with a secret a new one; the old one stops working at
/// once. A client switched to `client_secret_jwt` needs this: only then is its secret kept.
pub async fn rotate_secret(
    services: &Services,
    client_id: &str,
    actor: Actor,
) -> Result<(Client, SecretString), ManageError> {
    let client = get(services, client_id).await?;
    if !client.token_endpoint_auth_method.uses_secret() {
        return Err(Invalid::new(format!(
            "this client authenticates with {}, not with a secret",
            client.token_endpoint_auth_method.as_str()
        ))
        .into());
    }
    let (secret, hash) = services.secrets.generate().map_err(internal)?;
    let sealed = seal_secret(services, client_id, client.token_endpoint_auth_method, &secret)?;
    let now = services.clock.now();
    if !services
        .store
        .set_client_secret(client_id, &hash, sealed.as_deref(), now)
        .await?
    {
        return Err(ManageError::NotFound(format!("client {client_id:?}")));
    }
    services.clients.invalidate(client_id);
    let mut event = actor.event(EventType::ClientChanged, now);
    event.client_id = Some(client.id.clone());
    event.details = serde_json::json!({ "secret_rotated": true });
    record(services, event).await;
    Ok((
        Client {
            secret_hash: Some(hash),
            secret_sealed: sealed,
            updated_at: now,
            ..client
        },
        secret,
    ))
}

pub async fn get(services: &Services, client_id: &str) -> Result<Client, ManageError> {
    services
        .store
        .find_client(client_id)
        .await?
        .ok_or_else(|| ManageError::NotFound(format!("client {client_id:?}")))
}

/// Removes a client with its grants and tokens. Its access tokens are denied first, on every
/// replica (they are self-contained: deleting the rows alone would leave them working).
pub async fn remove(services: &Services, client_id: &str, actor: Actor) -> Result<(), ManageError> {
    let client = services
        .store
        .find_client(client_id)
        .await?
        .ok_or_else(|| ManageError::NotFound(format!("client {client_id:?}")))?;
    let now = services.clock.now();
    let until = now
        .checked_add_signed(crate::oidc::revocation::access_token_lifetime(
            services,
            Some(&client),
        ))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    services
        .deny_list
        .deny(crate::security::denylist::Denied::Client(client_id), until, now)
        .await
        .map_err(|e| ManageError::Store(crate::store::StoreError::Unavailable(e.to_string())))?;
    services.clients.invalidate(client_id);
    if !services.store.delete_client(client_id).await? {
        return Err(ManageError::NotFound(format!("client {client_id:?}")));
    }
    let mut event = actor.event(EventType::ClientDeleted, services.clock.now());
    event.client_id = Some(client_id.to_string());
    record(services, event).await;
    Ok(())
}

/// The client `new` describes, keeping what only `current` knows (id, secret, creation).
fn apply(current: Option<&Client>, new: NewClient, now: chrono::DateTime<chrono::Utc>) -> Client {
    let method = new.auth_method();
    Client {
        id: current.map(|c| c.id.clone()).unwrap_or_default(),
        name: new.name.trim().to_string(),
        client_type: new.client_type,
        secret_hash: current.and_then(|c| c.secret_hash.clone()),
        secret_sealed: current
            .and_then(|c| c.secret_sealed.clone())
            .filter(|_| method == TokenEndpointAuthMethod::ClientSecretJwt),
        jwks: new.jwks,
        jwks_uri: new.jwks_uri,
        require_par: new.require_par,
        dpop_bound_access_tokens: new.dpop_bound_access_tokens,
        profile: new.profile,
        resources: new.resources,
        token_endpoint_auth_method: method,
        require_pkce: new.require_pkce || new.client_type == ClientType::Public,
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        backchannel_logout_uri: new.backchannel_logout_uri,
        grant_types: new.grant_types,
        scopes: new.scopes,
        id_token_signed_response_alg: new.id_token_signed_response_alg,
        access_token_signing_alg: new.access_token_signing_alg,
        first_party: new.first_party,
        access_token_ttl_s: new.access_token_ttl_s,
        refresh_token_ttl_s: new.refresh_token_ttl_s,
        rate_limit_token_per_minute: new.rate_limit_token_per_minute,
        rate_limit_introspect_per_minute: new.rate_limit_introspect_per_minute,
        mfa: new.mfa,
        require_verified_email: new.require_verified_email,
        refresh_idle_ttl_s: new.refresh_idle_ttl_s,
        refresh_reuse_window_s: new.refresh_reuse_window_s,
        theme: current.and_then(|c| c.theme.clone()),
        created_at: current.map_or(now, |c| c.created_at),
        updated_at: now,
    }
}

/// The secret encrypted under the master key, kept only for `client_secret_jwt` (the client
/// id is the associated data: a sealed secret moved to another client does not open).
fn seal_secret(
    services: &Services,
    client_id: &str,
    method: TokenEndpointAuthMethod,
    secret: &SecretString,
) -> Result<Option<Vec<u8>>, ManageError> {
    if method != TokenEndpointAuthMethod::ClientSecretJwt {
        return Ok(None);
    }
    let plaintext = secrecy::SecretBox::new(Box::new(secret.expose_secret().as_bytes().to_vec()));
    services
        .client_secret_key
        .encrypt(client_id, &plaintext)
        .map(Some)
        .map_err(|e| ManageError::Internal(e.to_string()))
}

fn internal(e: random::RandomError) -> ManageError {
    ManageError::Internal(e.to_string())
}

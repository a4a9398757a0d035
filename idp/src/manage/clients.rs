//! Registering and removing clients.

use secrecy::SecretString;

use super::{Actor, ManageError, record};
use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::domain::client::{Client, ClientType, NewClient};
use crate::security::random;
use crate::services::Services;

/// A registered client and, for a confidential one, its secret: shown once, never stored.
pub struct Registered {
    pub client: Client,
    pub secret: Option<SecretString>,
}

pub async fn register(services: &Services, new: NewClient, actor: Actor) -> Result<Registered, ManageError> {
    new.validate()?;
    let internal = |e: random::RandomError| ManageError::Internal(e.to_string());
    let id = random::token::<18>().map_err(internal)?;
    let (secret, secret_hash) = match new.client_type {
        ClientType::Confidential => {
            let (secret, hash) = services.secrets.generate().map_err(internal)?;
            (Some(secret), Some(hash))
        }
        ClientType::Public => (None, None),
    };
    let now = services.clock.now();
    let client = Client {
        id,
        name: new.name.trim().to_string(),
        client_type: new.client_type,
        secret_hash,
        token_endpoint_auth_method: new.auth_method(),
        require_pkce: new.require_pkce || new.client_type == ClientType::Public,
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        backchannel_logout_uri: new.backchannel_logout_uri,
        grant_types: new.grant_types,
        scopes: new.scopes,
        id_token_signed_response_alg: new.id_token_signed_response_alg,
        access_token_signing_alg: new.access_token_signing_alg,
        first_party: new.first_party,
        access_token_ttl_s: None,
        refresh_token_ttl_s: None,
        refresh_idle_ttl_s: new.refresh_idle_ttl_s,
        refresh_reuse_window_s: new.refresh_reuse_window_s,
        theme: None,
        created_at: now,
        updated_at: now,
    };
    services.store.create_client(&client).await?;
    let mut event = SecurityEvent::new(EventType::ClientCreated, Outcome::Success, now);
    event.client_id = Some(client.id.clone());
    event.actor_id = Some(actor.id());
    event.details = serde_json::json!({ "name": client.name, "type": client.client_type.as_str() });
    record(services, event).await;
    Ok(Registered { client, secret })
}

pub async fn remove(services: &Services, client_id: &str, actor: Actor) -> Result<(), ManageError> {
    services.clients.invalidate(client_id);
    if !services.store.delete_client(client_id).await? {
        return Err(ManageError::NotFound(format!("client {client_id:?}")));
    }
    let mut event = SecurityEvent::new(EventType::ClientDeleted, Outcome::Success, services.clock.now());
    event.client_id = Some(client_id.to_string());
    event.actor_id = Some(actor.id());
    record(services, event).await;
    Ok(())
}

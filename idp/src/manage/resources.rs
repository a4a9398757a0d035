//! Registering and removing resource servers (RFC 8707).

use super::{Actor, ManageError, record};
use crate::audit::EventType;
use crate::domain::Invalid;
use crate::domain::resource::{NewResourceServer, ResourceServer};
use crate::services::Services;

pub async fn register(
    services: &Services,
    new: NewResourceServer,
    actor: Actor,
) -> Result<ResourceServer, ManageError> {
    if let Some(client_id) = &new.client_id {
        // The client it introspects with must exist (and so can authenticate).
        super::clients::get(services, client_id).await?;
    }
    let now = services.clock.now();
    let resource = ResourceServer {
        identifier: new.identifier,
        scopes: new.scopes,
        client_id: new.client_id,
        created_at: now,
    };
    services.store.create_resource_server(&resource).await?;
    services.clients.invalidate_audiences();
    let mut event = actor.event(EventType::ResourceCreated, now);
    event.client_id = resource.client_id.clone();
    event.details = serde_json::json!({ "identifier": resource.identifier, "scopes": resource.scopes });
    record(services, event).await;
    Ok(resource)
}

/// Removes a resource server, and it from every client that could ask for it. Tokens
/// already issued for it stay valid until they expire (they are self-contained).
pub async fn remove(services: &Services, identifier: &str, actor: Actor) -> Result<(), ManageError> {
    if !services.store.delete_resource_server(identifier).await? {
        return Err(ManageError::NotFound(format!("resource server {identifier:?}")));
    }
    services.clients.invalidate_audiences();
    let now = services.clock.now();
    for mut client in services.store.list_clients().await? {
        if client.resources.iter().any(|r| r == identifier) {
            client.resources.retain(|r| r != identifier);
            client.updated_at = now;
            services.store.update_client(&client).await?;
            services.clients.invalidate(&client.id);
        }
    }
    let mut event = actor.event(EventType::ResourceDeleted, now);
    event.details = serde_json::json!({ "identifier": identifier });
    record(services, event).await;
    Ok(())
}

/// Keeps each of a client's resources once and checks that each is registered (when the
/// client is registered or changed; requests then only compare against its list).
pub async fn check_registered(services: &Services, resources: &mut Vec<String>) -> Result<(), ManageError> {
    let mut seen = std::collections::HashSet::new();
    resources.retain(|r| seen.insert(r.clone()));
    for identifier in resources.iter() {
        if services.store.find_resource_server(identifier).await?.is_none() {
            return Err(Invalid::new(format!(
                "resource {identifier:?} is not registered; add it first with `idp resource add`"
            ))
            .into());
        }
    }
    Ok(())
}

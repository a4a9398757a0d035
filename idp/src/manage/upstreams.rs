//! Registering and removing upstream identity providers (federation).

use secrecy::{ExposeSecret, SecretBox, SecretString};

use super::{Actor, ManageError, record};
use crate::audit::EventType;
use crate::domain::Invalid;
use crate::domain::upstream::{NewUpstream, Upstream};
use crate::services::Services;

/// The path of an upstream's callback here; its URL is what to register at the upstream.
pub fn redirect_uri(services: &Services, slug: &str) -> String {
    format!("{}/upstream/{slug}/callback", services.settings.issuer_str())
}

pub async fn register(
    services: &Services,
    new: NewUpstream,
    client_secret: &SecretString,
    actor: Actor,
) -> Result<Upstream, ManageError> {
    let new = new.validated()?;
    if client_secret.expose_secret().is_empty() {
        return Err(Invalid::new("the client secret is empty").into());
    }
    // The slug is the associated data: a sealed secret copied to another provider's row
    // does not open there.
    let plaintext = SecretBox::new(Box::new(client_secret.expose_secret().as_bytes().to_vec()));
    let sealed = services
        .upstream_secret_key
        .encrypt(&new.slug, &plaintext)
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    let now = services.clock.now();
    let upstream = Upstream {
        slug: new.slug,
        display_name: new.display_name,
        issuer: new.issuer,
        client_id: new.client_id,
        client_secret_sealed: sealed,
        scopes: new.scopes,
        jit: new.jit,
        trust_email: new.trust_email,
        claim_username: "preferred_username".into(),
        claim_email: "email".into(),
        claim_name: "name".into(),
        allowed_domains: new.allowed_domains,
        allowed_clients: new.allowed_clients,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    services.store.create_upstream(&upstream).await?;
    let mut event = actor.event(EventType::UpstreamCreated, now);
    event.details = serde_json::json!({
        "slug": upstream.slug, "issuer": upstream.issuer, "jit": upstream.jit, "trust_email": upstream.trust_email,
    });
    record(services, event).await;
    Ok(upstream)
}

pub async fn remove(services: &Services, slug: &str, actor: Actor) -> Result<(), ManageError> {
    if !services.store.delete_upstream(slug).await? {
        return Err(ManageError::NotFound(format!("upstream provider {slug:?}")));
    }
    let mut event = actor.event(EventType::UpstreamDeleted, services.clock.now());
    event.details = serde_json::json!({ "slug": slug });
    record(services, event).await;
    Ok(())
}

/// The client secret to present at the upstream.
pub fn client_secret(services: &Services, upstream: &Upstream) -> Result<SecretString, ManageError> {
    let opened = services
        .upstream_secret_key
        .decrypt(&upstream.slug, &upstream.client_secret_sealed)
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    let text = String::from_utf8(opened.expose_secret().clone())
        .map_err(|_| ManageError::Internal("the upstream's sealed secret is not text".into()))?;
    Ok(SecretString::from(text))
}

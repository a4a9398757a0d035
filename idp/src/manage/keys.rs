//! Signing keys in the store: one per algorithm is created on first start; rotation adds a
//! new key that is published at once and signs after `key_activation_delay_s`.

use chrono::{DateTime, Utc};

use super::{Actor, ManageError, record};
use crate::audit::EventType;
use crate::security::keys::{self, Alg};
use crate::services::Services;
use crate::store::StoredKey;

/// Generates and stores a key for every algorithm that has none published yet.
/// Returns the kids created.
pub async fn ensure_signing_keys(services: &Services) -> Result<Vec<String>, ManageError> {
    let published = services.store.published_signing_keys().await?;
    let mut created = Vec::new();
    for alg in Alg::ALL {
        if !published.iter().any(|k| k.alg == alg.as_str()) {
            // The very first key of an algorithm signs at once: nobody can have cached an older JWKS.
            created.push(create_key(services, alg, services.clock.now()).await?);
        }
    }
    Ok(created)
}

/// Stages a new key for each of `algs`; returns (kid, alg, activates_at) of each.
pub async fn rotate(
    services: &Services,
    algs: &[Alg],
    actor: Actor,
) -> Result<Vec<(String, Alg, DateTime<Utc>)>, ManageError> {
    let activates_at = crate::domain::clock::after(
        services.clock.now(),
        crate::domain::clock::secs(services.settings.key_activation_delay_s),
    );
    let mut staged = Vec::new();
    for &alg in algs {
        let kid = create_key(services, alg, activates_at).await?;
        let mut event = actor.event(EventType::KeyRotated, services.clock.now());
        event.details = serde_json::json!({ "kid": kid, "alg": alg.as_str(), "activates_at": activates_at });
        record(services, event).await;
        staged.push((kid, alg, activates_at));
    }
    Ok(staged)
}

async fn create_key(
    services: &Services,
    alg: Alg,
    activates_at: DateTime<Utc>,
) -> Result<String, ManageError> {
    let internal = |e: &dyn std::fmt::Display| ManageError::Internal(e.to_string());
    // RSA generation takes ~100 ms of CPU: keep it off the async executor.
    let generated = tokio::task::spawn_blocking(move || keys::generate(alg))
        .await
        .map_err(|e| internal(&e))?
        .map_err(|e| internal(&e))?;
    let stored = StoredKey {
        private_key_enc: services
            .key_encryptor
            .encrypt(&generated.kid, &generated.pkcs8)
            .map_err(|e| internal(&e))?,
        kid: generated.kid.clone(),
        alg: alg.as_str().to_string(),
        public_jwk: generated.public_jwk.to_string(),
        created_at: services.clock.now(),
        activates_at,
        retired_at: None,
        removed_at: None,
    };
    services.store.insert_signing_key(&stored).await?;
    Ok(generated.kid)
}

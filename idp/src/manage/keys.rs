//! Signing keys in the store: one per algorithm is created on first start.

use super::ManageError;
use crate::security::keys::{self, Alg};
use crate::services::Services;
use crate::store::StoredKey;

/// Generates and stores a key for every algorithm that has none published yet.
/// Returns the kids created.
pub async fn ensure_signing_keys(services: &Services) -> Result<Vec<String>, ManageError> {
    let published = services.store.published_signing_keys().await?;
    let mut created = Vec::new();
    for alg in Alg::ALL {
        if published.iter().any(|k| k.alg == alg.as_str()) {
            continue;
        }
        // RSA generation takes ~100 ms of CPU: keep it off the async executor.
        let generated = tokio::task::spawn_blocking(move || keys::generate(alg))
            .await
            .map_err(|e| ManageError::Internal(e.to_string()))?
            .map_err(|e| ManageError::Internal(e.to_string()))?;
        let now = services.clock.now();
        let stored = StoredKey {
            private_key_enc: services
                .key_encryptor
                .encrypt(&generated.kid, &generated.pkcs8)
                .map_err(|e| ManageError::Internal(e.to_string()))?,
            kid: generated.kid.clone(),
            alg: alg.as_str().to_string(),
            public_jwk: generated.public_jwk.to_string(),
            created_at: now,
            // The very first key of an algorithm signs at once: nobody can have cached an older JWKS.
            activates_at: now,
            retired_at: None,
            removed_at: None,
        };
        services.store.insert_signing_key(&stored).await?;
        created.push(generated.kid);
    }
    Ok(created)
}

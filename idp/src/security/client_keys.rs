//! The public keys a client signs with (its client assertions for `private_key_jwt`, its
//! request objects): registered inline as a JWKS, or published by the client at its
//! `jwks_uri` (OIDC Registration §2). A published set is fetched with a timeout and a size
//! limit, cached, and fetched again when a signature names a key id the cached set lacks
//! (the client rotated its keys) — at most every few seconds, so a stream of bad key ids
//! cannot make this provider hammer the client's server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

use super::outbound;
use crate::domain::client::Client;

/// How long a fetched set is used before it is fetched again.
const FRESH_FOR: Duration = Duration::from_secs(300);
/// The shortest time between two fetches of one set for an unknown key id.
const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// A JWKS larger than this is refused (a few keys take a few kilobytes).
const MAX_JWKS_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientKeysError {
    #[error("the client has no registered keys")]
    NoKeys,
    #[error("the client's jwks_uri could not be fetched: {0}")]
    Fetch(String),
    #[error("the client's jwks_uri does not hold a valid JWK set: {0}")]
    Invalid(String),
}

struct Fetched {
    set: Arc<JwkSet>,
    at: Instant,
}

pub struct ClientKeys {
    http: Option<reqwest::Client>,
    fetched: Mutex<HashMap<String, Fetched>>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKeys")
    }
}

impl Default for ClientKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientKeys {
    pub fn new() -> Self {
        let http = outbound::client()
            .map_err(|e| tracing::error!(error = %e, "no HTTP client for client jwks_uri"))
            .ok();
        Self {
            http,
            fetched: Mutex::new(HashMap::new()),
        }
    }

    /// The client's keys. `kid` is the key id a signature names: when the cached published
    /// set lacks it, the set is fetched again (not more often than every few seconds).
    pub async fn keys(&self, client: &Client, kid: Option<&str>) -> Result<Arc<JwkSet>, ClientKeysError> {
        if let Some(jwks) = &client.jwks {
            return Ok(Arc::new(jwks.clone()));
        }
        let uri = client.jwks_uri.as_deref().ok_or(ClientKeysError::NoKeys)?;
        if let Some(set) = self.cached(uri, kid) {
            return Ok(set);
        }
        let set = Arc::new(self.fetch(uri).await?);
        let mut fetched = self.fetched.lock().unwrap_or_else(|p| p.into_inner());
        fetched.insert(
            uri.to_string(),
            Fetched {
                set: set.clone(),
                at: Instant::now(),
            },
        );
        Ok(set)
    }

    /// The cached set of `uri`, unless it is stale or lacks `kid` and may be fetched again.
    fn cached(&self, uri: &str, kid: Option<&str>) -> Option<Arc<JwkSet>> {
        let fetched = self.fetched.lock().unwrap_or_else(|p| p.into_inner());
        let entry = fetched.get(uri)?;
        let age = entry.at.elapsed();
        let lacks_kid = kid.is_some_and(|kid| entry.set.find(kid).is_none());
        let usable = age < FRESH_FOR && (!lacks_kid || age < REFETCH_AFTER);
        usable.then(|| entry.set.clone())
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, ClientKeysError> {
        let http = self
            .http
            .as_ref()
            .ok_or_else(|| ClientKeysError::Fetch("no HTTP client".into()))?;
        let body = outbound::get(
            http,
            uri,
            "application/json, application/jwk-set+json",
            MAX_JWKS_BYTES,
        )
        .await
        .map_err(|e| match e {
            outbound::FetchError::TooLarge(_) => ClientKeysError::Invalid(e.to_string()),
            other => ClientKeysError::Fetch(other.to_string()),
        })?;
        crate::domain::client::parse_public_jwks(&body).map_err(|e| ClientKeysError::Invalid(e.0))
    }
}

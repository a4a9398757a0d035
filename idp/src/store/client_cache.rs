//! A short-lived in-process cache of clients for the hot paths (every token request
//! authenticates a client), and of the resource servers each client introspects for (every
//! introspection asks). Entries live `ttl` at most, so a change made by another replica is
//! seen within that time; changes made through this replica invalidate at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{Store, StoreResult};
use crate::domain::client::Client;

/// More entries than this and a map is simply cleared: it is a convenience, not a store.
const MAX_ENTRIES: usize = 10_000;

/// Key → (when it was read, the value).
struct Fresh<V> {
    entries: RwLock<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> Fresh<V> {
    fn new() -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str, ttl: Duration) -> Option<V> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let (at, value) = entries.get(key)?;
        (at.elapsed() < ttl).then(|| value.clone())
    }

    fn put(&self, key: &str, value: V) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_string(), (Instant::now(), value));
    }

    fn remove(&self, key: &str) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    fn clear(&self) {
        self.entries.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

pub struct ClientCache {
    ttl: Duration,
    /// The client, or `None` for an unknown id.
    clients: Fresh<Option<Arc<Client>>>,
    /// The identifiers of the resource servers that introspect as the client.
    audiences: Fresh<Arc<[String]>>,
}

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCache").field("ttl", &self.ttl).finish()
    }
}

impl ClientCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            clients: Fresh::new(),
            audiences: Fresh::new(),
        }
    }

    /// The client, from the cache while fresh, else from the store. Unknown ids are cached
    /// too, so a flood of made-up client ids does not reach the database each time.
    pub async fn get(&self, store: &dyn Store, id: &str) -> StoreResult<Option<Arc<Client>>> {
        if let Some(client) = self.clients.get(id, self.ttl) {
            return Ok(client);
        }
        let client = store.find_client(id).await?.map(Arc::new);
        if !self.ttl.is_zero() {
            self.clients.put(id, client.clone());
        }
        Ok(client)
    }

    /// The resource servers (RFC 8707) that introspect as `client_id`, usually none.
    pub async fn introspection_audience(
        &self,
        store: &dyn Store,
        client_id: &str,
    ) -> StoreResult<Arc<[String]>> {
        if let Some(audience) = self.audiences.get(client_id, self.ttl) {
            return Ok(audience);
        }
        let audience: Arc<[String]> = store.resources_of_client(client_id).await?.into();
        if !self.ttl.is_zero() {
            self.audiences.put(client_id, audience.clone());
        }
        Ok(audience)
    }

    pub fn invalidate(&self, id: &str) {
        self.clients.remove(id);
        self.audiences.remove(id);
    }

    /// After a resource server is added or removed: which clients it concerned is not kept.
    pub fn invalidate_audiences(&self) {
        self.audiences.clear();
    }
}

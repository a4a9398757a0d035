//! A short-lived in-process cache of clients for the hot paths (every token request
//! authenticates a client). Entries live `ttl` at most, so a change made by another replica
//! is seen within that time; changes made through this replica invalidate at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{Store, StoreResult};
use crate::domain::client::Client;

/// Client id → (when it was read, the client or `None` for an unknown id).
type Entries = HashMap<String, (Instant, Option<Arc<Client>>)>;

#[derive(Debug)]
pub struct ClientCache {
    ttl: Duration,
    entries: RwLock<Entries>,
}

/// More clients than this and the cache is simply cleared: it is a convenience, not a store.
const MAX_ENTRIES: usize = 10_000;

impl ClientCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The client, from the cache while fresh, else from the store. Unknown ids are cached
    /// too, so a flood of made-up client ids does not reach the database each time.
    pub async fn get(&self, store: &dyn Store, id: &str) -> StoreResult<Option<Arc<Client>>> {
        if self.ttl.is_zero() {
            return Ok(store.find_client(id).await?.map(Arc::new));
        }
        if let Some((at, client)) = self.read().get(id)
            && at.elapsed() < self.ttl
        {
            return Ok(client.clone());
        }
        let client = store.find_client(id).await?.map(Arc::new);
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(id.to_string(), (Instant::now(), client.clone()));
        Ok(client)
    }

    pub fn invalidate(&self, id: &str) {
        self.entries.write().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }
}

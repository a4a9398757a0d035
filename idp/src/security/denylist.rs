//! The access-token deny-list. Access tokens are self-contained JWTs, so revoking one (or
//! the grant it came from) means remembering its `jti` (or `gid`) until it would have
//! expired anyway. Two backends behind one trait: in-process (the embedded default, one
//! replica) and Redis (shared: a revocation on one replica is seen by all at once).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::redis_connections::RedisConnections;

#[derive(Debug, thiserror::Error)]
#[error("deny-list unavailable: {0}")]
pub struct DenyListError(pub String);

/// What is denied: a single token, everything issued under a grant, or everything issued
/// to a client (a removed client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied<'a> {
    Token(&'a str),
    Grant(&'a str),
    Client(&'a str),
}

/// What identifies an access token to the deny-list: its `jti`, `gid` and `client_id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenIds<'a> {
    pub jti: &'a str,
    pub gid: Option<&'a str>,
    pub client_id: Option<&'a str>,
}

impl<'a> TokenIds<'a> {
    fn keys(&self) -> impl Iterator<Item = String> + 'a {
        let TokenIds { jti, gid, client_id } = *self;
        std::iter::once(Denied::Token(jti).key())
            .chain(gid.map(|g| Denied::Grant(g).key()))
            .chain(client_id.map(|c| Denied::Client(c).key()))
    }
}

impl Denied<'_> {
    fn key(&self) -> String {
        match self {
            Denied::Token(jti) => format!("jti:{jti}"),
            Denied::Grant(gid) => format!("gid:{gid}"),
            Denied::Client(cid) => format!("cid:{cid}"),
        }
    }
}

#[async_trait]
pub trait DenyList: Send + Sync + std::fmt::Debug {
    /// Denies `what` until `until` (after which the token has expired anyway).
    async fn deny(
        &self,
        what: Denied<'_>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), DenyListError>;
    /// Whether the token, its grant or its client is denied. One round trip.
    async fn is_denied(&self, token: TokenIds<'_>, now: DateTime<Utc>) -> Result<bool, DenyListError>;
    /// Drops expired entries; returns how many (Redis expires keys by itself).
    async fn prune(&self, now: DateTime<Utc>) -> usize;
}

/// In-process deny-list for a single replica.
#[derive(Debug, Default)]
pub struct MemoryDenyList {
    entries: Mutex<HashMap<String, DateTime<Utc>>>,
}

#[async_trait]
impl DenyList for MemoryDenyList {
    async fn deny(
        &self,
        what: Denied<'_>,
        until: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<(), DenyListError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let slot = entries.entry(what.key()).or_insert(until);
        *slot = (*slot).max(until);
        Ok(())
    }

    async fn is_denied(&self, token: TokenIds<'_>, now: DateTime<Utc>) -> Result<bool, DenyListError> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Ok(token
            .keys()
            .any(|key| entries.get(&key).is_some_and(|until| *until > now)))
    }

    async fn prune(&self, now: DateTime<Utc>) -> usize {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let before = entries.len();
        entries.retain(|_, until| *until > now);
        before - entries.len()
    }
}

/// The in-process deny-list backed by the database, for deployments without Redis (the
/// embedded default): every denial is also written to the `denials` table, and each check
/// first loads the rows written since the last load (at most once a second). So a
/// revocation survives a restart, and one made by the `idp` command line (another process)
/// reaches the running server within a second.
pub struct StoreDenyList {
    memory: MemoryDenyList,
    store: std::sync::Arc<dyn crate::store::Store>,
    /// The id of the last row loaded, and when rows were last loaded.
    synced: tokio::sync::Mutex<(i64, Option<std::time::Instant>)>,
}

impl std::fmt::Debug for StoreDenyList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreDenyList").finish_non_exhaustive()
    }
}

/// How stale the in-process copy may be before a check loads new rows.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl StoreDenyList {
    pub fn new(store: std::sync::Arc<dyn crate::store::Store>) -> Self {
        Self {
            memory: MemoryDenyList::default(),
            store,
            synced: tokio::sync::Mutex::new((0, None)),
        }
    }

    /// Loads the rows written since the last load, when that was over a second ago.
    async fn sync(&self, now: DateTime<Utc>) -> Result<(), DenyListError> {
        let mut synced = self.synced.lock().await;
        if synced.1.is_some_and(|at| at.elapsed() < SYNC_EVERY) {
            return Ok(());
        }
        let rows = self
            .store
            .denials_after(synced.0, now)
            .await
            .map_err(|e| DenyListError(e.to_string()))?;
        let mut entries = self.memory.entries.lock().unwrap_or_else(|p| p.into_inner());
        for (id, key, until) in rows {
            let slot = entries.entry(key).or_insert(until);
            *slot = (*slot).max(until);
            synced.0 = synced.0.max(id);
        }
        synced.1 = Some(std::time::Instant::now());
        Ok(())
    }
}

#[async_trait]
impl DenyList for StoreDenyList {
    async fn deny(
        &self,
        what: Denied<'_>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), DenyListError> {
        self.store
            .insert_denial(&what.key(), until)
            .await
            .map_err(|e| DenyListError(e.to_string()))?;
        self.memory.deny(what, until, now).await
    }

    async fn is_denied(&self, token: TokenIds<'_>, now: DateTime<Utc>) -> Result<bool, DenyListError> {
        self.sync(now).await?;
        self.memory.is_denied(token, now).await
    }

    async fn prune(&self, now: DateTime<Utc>) -> usize {
        // The table's rows are deleted by the store's housekeeping with the other expired rows.
        self.memory.prune(now).await
    }
}

/// Redis deny-list: `SET prefix+key 1 PX ttl` to deny, `EXISTS` on both keys to check.
#[derive(Clone)]
pub struct RedisDenyList {
    redis: RedisConnections,
    prefix: String,
}

impl std::fmt::Debug for RedisDenyList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDenyList")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisDenyList {
    pub fn new(redis: RedisConnections, prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}deny:"),
        }
    }
}

fn redis_error(e: redis::RedisError) -> DenyListError {
    DenyListError(e.to_string())
}

#[async_trait]
impl DenyList for RedisDenyList {
    async fn deny(
        &self,
        what: Denied<'_>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), DenyListError> {
        let ttl_ms = (until - now).num_milliseconds().max(1);
        let mut redis = self.redis.get();
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}{}", self.prefix, what.key()))
            .arg(1)
            .arg("PX")
            .arg(ttl_ms);
        crate::metrics::timed_redis("denylist_set", cmd.query_async::<()>(&mut redis))
            .await
            .map_err(redis_error)
    }

    async fn is_denied(&self, token: TokenIds<'_>, _now: DateTime<Utc>) -> Result<bool, DenyListError> {
        let mut redis = self.redis.get();
        let mut cmd = redis::cmd("EXISTS");
        for key in token.keys() {
            cmd.arg(format!("{}{key}", self.prefix));
        }
        let found: i64 = crate::metrics::timed_redis("denylist_exists", cmd.query_async(&mut redis))
            .await
            .map_err(redis_error)?;
        Ok(found > 0)
    }

    async fn prune(&self, _now: DateTime<Utc>) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[tokio::test]
    async fn a_denied_token_or_grant_is_denied_until_it_expires() {
        let list = MemoryDenyList::default();
        let now = Utc::now();
        list.deny(Denied::Token("t1"), now + Duration::seconds(10), now)
            .await
            .ok();
        list.deny(Denied::Grant("g1"), now + Duration::seconds(10), now)
            .await
            .ok();
        list.deny(Denied::Client("c1"), now + Duration::seconds(10), now)
            .await
            .ok();
        let ids = |jti, gid, client_id| TokenIds { jti, gid, client_id };
        assert!(list.is_denied(ids("t1", None, None), now).await.unwrap_or(false));
        assert!(
            list.is_denied(ids("other", Some("g1"), None), now)
                .await
                .unwrap_or(false)
        );
        assert!(
            !list
                .is_denied(ids("other", Some("g2"), Some("c2")), now)
                .await
                .unwrap_or(true)
        );
        assert!(
            list.is_denied(ids("other", Some("g2"), Some("c1")), now)
                .await
                .unwrap_or(false)
        );
        let later = now + Duration::seconds(11);
        assert!(!list.is_denied(ids("t1", None, None), later).await.unwrap_or(true));
        assert_eq!(list.prune(later).await, 3);
    }
}

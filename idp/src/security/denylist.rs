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

/// What is denied: a single token, or everything issued under a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied<'a> {
    Token(&'a str),
    Grant(&'a str),
}

impl Denied<'_> {
    fn key(&self) -> String {
        match self {
            Denied::Token(jti) => format!("jti:{jti}"),
            Denied::Grant(gid) => format!("gid:{gid}"),
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
    /// Whether the token `jti`, or its grant `gid`, is denied. One round trip.
    async fn is_denied(
        &self,
        jti: &str,
        gid: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, DenyListError>;
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

    async fn is_denied(
        &self,
        jti: &str,
        gid: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, DenyListError> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let live = |key: String| entries.get(&key).is_some_and(|until| *until > now);
        Ok(live(Denied::Token(jti).key()) || gid.is_some_and(|g| live(Denied::Grant(g).key())))
    }

    async fn prune(&self, now: DateTime<Utc>) -> usize {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let before = entries.len();
        entries.retain(|_, until| *until > now);
        before - entries.len()
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

    async fn is_denied(
        &self,
        jti: &str,
        gid: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<bool, DenyListError> {
        let mut redis = self.redis.get();
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(format!("{}{}", self.prefix, Denied::Token(jti).key()));
        if let Some(gid) = gid {
            cmd.arg(format!("{}{}", self.prefix, Denied::Grant(gid).key()));
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
        assert!(list.is_denied("t1", None, now).await.unwrap_or(false));
        assert!(list.is_denied("other", Some("g1"), now).await.unwrap_or(false));
        assert!(!list.is_denied("other", Some("g2"), now).await.unwrap_or(true));
        let later = now + Duration::seconds(11);
        assert!(!list.is_denied("t1", None, later).await.unwrap_or(true));
        assert_eq!(list.prune(later).await, 2);
    }
}

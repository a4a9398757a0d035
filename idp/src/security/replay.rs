//! One-time use of identifiers that travel inside signed messages: the `jti` of a client
//! assertion (RFC 7523 §3 item 7) and of a DPoP proof (RFC 9449 §11.1). The first use
//! within the identifier's lifetime wins; every later one is a replay. Two backends behind
//! one trait: in-process (the embedded default, one replica) and Redis (`SET NX`, so a
//! replay to another replica is caught too).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::redis_connections::RedisConnections;

#[derive(Debug, thiserror::Error)]
#[error("replay cache unavailable: {0}")]
pub struct ReplayCacheError(pub String);

#[async_trait]
pub trait ReplayCache: Send + Sync + std::fmt::Debug {
    /// Records `key` as used until `until`; true when this is its first use, false when it
    /// was already used (a replay).
    async fn first_use(
        &self,
        key: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, ReplayCacheError>;
}

/// In-process replay cache for a single replica. Expired entries are dropped as the map
/// grows, so it holds at most the identifiers still within their lifetime.
#[derive(Debug, Default)]
pub struct MemoryReplayCache {
    entries: Mutex<HashMap<String, DateTime<Utc>>>,
}

#[async_trait]
impl ReplayCache for MemoryReplayCache {
    async fn first_use(
        &self,
        key: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, ReplayCacheError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.get(key).is_some_and(|seen_until| *seen_until > now) {
            return Ok(false);
        }
        if entries.len() >= 1024 && entries.len().is_power_of_two() {
            entries.retain(|_, seen_until| *seen_until > now);
        }
        entries.insert(key.to_string(), until);
        Ok(true)
    }
}

/// Redis replay cache: `SET prefix+key 1 NX PX ttl`; Redis answers OK only to the first.
#[derive(Clone)]
pub struct RedisReplayCache {
    redis: RedisConnections,
    prefix: String,
}

impl std::fmt::Debug for RedisReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayCache")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisReplayCache {
    pub fn new(redis: RedisConnections, prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}seen:"),
        }
    }
}

#[async_trait]
impl ReplayCache for RedisReplayCache {
    async fn first_use(
        &self,
        key: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, ReplayCacheError> {
        let ttl_ms = (until - now).num_milliseconds().max(1);
        let mut redis = self.redis.get();
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}{key}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms);
        let answer: Option<String> = crate::metrics::timed_redis("replay_set", cmd.query_async(&mut redis))
            .await
            .map_err(|e| ReplayCacheError(e.to_string()))?;
        Ok(answer.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[tokio::test]
    async fn an_identifier_is_accepted_once_until_it_expires() {
        let cache = MemoryReplayCache::default();
        let now = Utc::now();
        let until = now + Duration::seconds(60);
        assert!(cache.first_use("a", until, now).await.unwrap_or(false));
        assert!(!cache.first_use("a", until, now).await.unwrap_or(true));
        assert!(cache.first_use("b", until, now).await.unwrap_or(false));
        let later = now + Duration::seconds(61);
        assert!(
            cache
                .first_use("a", later + Duration::seconds(60), later)
                .await
                .unwrap_or(false)
        );
    }
}

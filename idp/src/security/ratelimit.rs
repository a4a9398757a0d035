//! Rate limiting with GCRA (the generic cell rate algorithm): each key has a "theoretical
//! arrival time"; a request is allowed when it is not too far ahead of it. One number per key,
//! one atomic step per decision. Two backends behind one trait: in-process (the embedded
//! default) and Redis (one Lua script round trip, shared by all replicas). When Redis fails,
//! the in-process limiter takes over — logged and counted, never silently failing open.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

/// `per_minute` requests per minute on average (per hour when `hourly`), bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub per_minute: u32,
    pub burst: u32,
    pub hourly: bool,
}

impl Limit {
    pub fn per_minute(per_minute: u32, burst: u32) -> Option<Self> {
        (per_minute > 0).then_some(Self {
            per_minute,
            burst: burst.max(1),
            hourly: false,
        })
    }

    /// `per_hour` requests per hour on average: for rare actions (a password-reset mail).
    pub fn per_hour(per_hour: u32, burst: u32) -> Option<Self> {
        (per_hour > 0).then_some(Self {
            per_minute: per_hour,
            burst: burst.max(1),
            hourly: true,
        })
    }

    /// Milliseconds between requests at the sustained rate.
    fn interval_ms(&self) -> f64 {
        let period_ms = if self.hourly { 3_600_000.0 } else { 60_000.0 };
        period_ms / f64::from(self.per_minute)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Denied; retry after this many whole seconds (at least 1).
    Limited {
        retry_after_s: u64,
    },
}

#[async_trait]
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// Counts one request against `key` and decides.
    async fn check(&self, key: &str, limit: Limit) -> Decision;
    /// Whether a request would be allowed now, without counting it.
    async fn peek(&self, key: &str, limit: Limit) -> Decision;
}

/// GCRA on a theoretical arrival time `tat` (ms): returns the decision and the new `tat`.
fn gcra(tat: f64, now: f64, limit: Limit) -> (Decision, f64) {
    let interval = limit.interval_ms();
    let tat = tat.max(now);
    let new_tat = tat + interval;
    let allow_at = new_tat - interval * f64::from(limit.burst);
    if now < allow_at {
        let retry_after_s = ((allow_at - now) / 1000.0).ceil().max(1.0) as u64;
        (Decision::Limited { retry_after_s }, tat)
    } else {
        (Decision::Allowed, new_tat)
    }
}

fn now_ms() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64
}

/// In-process limiter for a single replica.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    tats: Mutex<HashMap<String, f64>>,
}

impl MemoryRateLimiter {
    fn peek_at(&self, key: &str, limit: Limit, now: f64) -> Decision {
        let tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        gcra(tats.get(key).copied().unwrap_or(now), now, limit).0
    }

    fn check_at(&self, key: &str, limit: Limit, now: f64) -> Decision {
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        if tats.len() > 100_000 {
            // Forget keys whose arrival time has passed: they would start fresh anyway.
            tats.retain(|_, tat| *tat > now);
        }
        let tat = tats.get(key).copied().unwrap_or(now);
        let (decision, new_tat) = gcra(tat, now, limit);
        tats.insert(key.to_string(), new_tat);
        decision
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, limit: Limit) -> Decision {
        self.check_at(key, limit, now_ms())
    }

    async fn peek(&self, key: &str, limit: Limit) -> Decision {
        self.peek_at(key, limit, now_ms())
    }
}

/// The same GCRA as [`gcra`], atomically in Redis, on Redis's own clock (so replicas whose
/// clocks differ still agree).
const GCRA_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local count = ARGV[3] == '1' 
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, math.ceil((allow_at - now) / 1000)}
end
if count then
  redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
end
return {1, 0}
"#;

pub struct RedisRateLimiter {
    redis: super::redis_connections::RedisConnections,
    prefix: String,
    script: redis::Script,
    fallback: MemoryRateLimiter,
    in_fallback: AtomicBool,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisRateLimiter {
    pub fn new(redis: super::redis_connections::RedisConnections, prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}rl:"),
            script: redis::Script::new(GCRA_LUA),
            fallback: MemoryRateLimiter::default(),
            in_fallback: AtomicBool::new(false),
        }
    }

    fn set_fallback(&self, on: bool, cause: Option<&str>) {
        if self.in_fallback.swap(on, Ordering::SeqCst) != on {
            if on {
                tracing::warn!(
                    cause = cause.unwrap_or_default(),
                    "Redis unavailable: rate limits now in-process on this replica"
                );
            } else {
                tracing::info!("Redis is back: rate limits shared again");
            }
        }
        metrics::gauge!("idp_ratelimit_fallback").set(if on { 1.0 } else { 0.0 });
    }
}

impl RedisRateLimiter {
    async fn decide(&self, key: &str, limit: Limit, count: bool) -> Decision {
        let mut redis = self.redis.get();
        let mut invocation = self.script.key(format!("{}{key}", self.prefix));
        invocation
            .arg(limit.interval_ms())
            .arg(limit.burst)
            .arg(if count { "1" } else { "0" });
        let result: redis::RedisResult<(i64, i64)> =
            crate::metrics::timed_redis("ratelimit", invocation.invoke_async(&mut redis)).await;
        match result {
            Ok((allowed, retry_after)) => {
                self.set_fallback(false, None);
                if allowed == 1 {
                    Decision::Allowed
                } else {
                    Decision::Limited {
                        retry_after_s: retry_after.max(1) as u64,
                    }
                }
            }
            Err(e) => {
                self.set_fallback(true, Some(&e.to_string()));
                if count {
                    self.fallback.check(key, limit).await
                } else {
                    self.fallback.peek(key, limit).await
                }
            }
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, limit: Limit) -> Decision {
        self.decide(key, limit, true).await
    }

    async fn peek(&self, key: &str, limit: Limit) -> Decision {
        self.decide(key, limit, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_sustained_rate() {
        let limiter = MemoryRateLimiter::default();
        let limit = Limit {
            per_minute: 60,
            hourly: false,
            burst: 3,
        };
        let t = 1_000_000.0;
        for _ in 0..3 {
            assert_eq!(limiter.check_at("k", limit, t), Decision::Allowed);
        }
        assert_eq!(
            limiter.check_at("k", limit, t),
            Decision::Limited { retry_after_s: 1 }
        );
        // One request per second is the sustained rate.
        assert_eq!(limiter.check_at("k", limit, t + 1000.0), Decision::Allowed);
        assert!(matches!(
            limiter.check_at("k", limit, t + 1000.0),
            Decision::Limited { .. }
        ));
        // Keys are independent.
        assert_eq!(limiter.check_at("other", limit, t), Decision::Allowed);
    }

    #[test]
    fn denied_requests_do_not_push_the_window_further() {
        let limiter = MemoryRateLimiter::default();
        let limit = Limit {
            per_minute: 60,
            hourly: false,
            burst: 1,
        };
        assert_eq!(limiter.check_at("k", limit, 0.0), Decision::Allowed);
        for _ in 0..10 {
            assert!(matches!(
                limiter.check_at("k", limit, 10.0),
                Decision::Limited { .. }
            ));
        }
        assert_eq!(limiter.check_at("k", limit, 1000.0), Decision::Allowed);
    }
}

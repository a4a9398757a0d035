//! Brute-force protection for the login form, without handing attackers a lockout weapon:
//!
//! - failures are counted per (account, source): after `lockout_threshold` of them the pair
//!   is locked for `lockout_initial_s`, doubling with each further lock up to
//!   `lockout_max_s`; a flood from one address locks *that address* out of the account,
//!   while the real user logs in from theirs;
//! - two failures before the lock, answers slow down (1 s, 2 s);
//! - spraying many accounts from one address is caught by a per-address budget of
//!   *failures* (an office behind one NAT, logging in successfully, is never throttled);
//! - every attempt also passes per-address and per-account rate limits;
//! - locks and limits apply to any typed username, existing or not, and say nothing about
//!   the account, so they reveal nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::audit::{EventType, Outcome, SecurityEvent};
use crate::http::meta::RequestMeta;
use crate::manage::record;
use crate::security::ratelimit::{Decision, Limit};
use crate::services::Services;
use crate::store::StoreError;

/// What may happen with a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check the password, after waiting `delay`.
    Open { delay: Duration },
    /// Refuse without checking; the user may retry after this many seconds.
    Refused {
        retry_after_s: u64,
        reason: &'static str,
    },
}

fn limit(per_minute: u32, burst: u32) -> Option<Limit> {
    Limit::per_minute(per_minute, burst)
}

/// Decides before any password is checked.
pub async fn before_attempt(
    services: &Services,
    account_key: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<Gate, StoreError> {
    let s = &services.settings;
    let checks = [
        (
            "login-ip",
            format!("login-ip:{source}"),
            limit(
                s.rate_limit_login_ip_per_minute,
                s.rate_limit_login_ip_per_minute / 2,
            ),
        ),
        (
            "login-account",
            format!("login-account:{account_key}"),
            limit(
                s.rate_limit_login_account_per_minute,
                s.rate_limit_login_account_per_minute / 2,
            ),
        ),
    ];
    for (name, key, limit) in checks {
        if let Some(limit) = limit
            && let Decision::Limited { retry_after_s } = services.rate_limiter.check(&key, limit).await
        {
            metrics::counter!("idp_rate_limited_total", "limiter" => name).increment(1);
            return Ok(Gate::Refused {
                retry_after_s,
                reason: "rate_limited",
            });
        }
    }
    if let Some(failures) = limit(s.login_failures_ip_per_minute, s.login_failures_ip_burst)
        && let Decision::Limited { retry_after_s } = services
            .rate_limiter
            .peek(&format!("login-fail-ip:{source}"), failures)
            .await
    {
        metrics::counter!("idp_rate_limited_total", "limiter" => "login-failures-ip").increment(1);
        return Ok(Gate::Refused {
            retry_after_s,
            reason: "source_throttled",
        });
    }
    let state = services.store.login_failure_state(account_key, source).await?;
    if let Some(until) = state.locked_until.filter(|until| *until > now) {
        let retry_after_s = (until - now).num_seconds().max(1) as u64;
        return Ok(Gate::Refused {
            retry_after_s,
            reason: "locked",
        });
    }
    let threshold = s.lockout_threshold as i64;
    let delay = match threshold - state.failures {
        2 => Duration::from_secs(1),
        1 => Duration::from_secs(2),
        _ => Duration::ZERO,
    };
    Ok(Gate::Open { delay })
}

/// Counts a failure; locks the (account, source) pair when the threshold is reached.
pub async fn after_failure(
    services: &Services,
    account_key: &str,
    user_id: Option<String>,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let s = &services.settings;
    let source = meta.ip.clone().unwrap_or_default();
    if let Some(failures) = limit(s.login_failures_ip_per_minute, s.login_failures_ip_burst) {
        services
            .rate_limiter
            .check(&format!("login-fail-ip:{source}"), failures)
            .await;
    }
    let state = services
        .store
        .record_login_failure(account_key, &source, now)
        .await?;
    if state.failures < s.lockout_threshold as i64 {
        return Ok(());
    }
    let factor = 2u64.saturating_pow(state.lockouts.clamp(0, 20) as u32);
    let seconds = s.lockout_initial_s.saturating_mul(factor).min(s.lockout_max_s);
    let until = now + chrono::Duration::seconds(seconds as i64);
    services
        .store
        .lock_login(account_key, &source, until, now)
        .await?;
    metrics::counter!("idp_account_lockouts_total").increment(1);
    let mut event = SecurityEvent::new(EventType::AccountLocked, Outcome::Failure, now);
    event.user_id = user_id;
    event.username = Some(account_key.to_string());
    event.details = serde_json::json!({ "source": source, "locked_until": until, "lock_seconds": seconds, "lockouts": state.lockouts + 1 });
    record(services, meta.stamp(event)).await;
    Ok(())
}

/// A successful login forgets this pair's failures and lock history.
pub async fn after_success(services: &Services, account_key: &str, source: &str) -> Result<(), StoreError> {
    services.store.clear_login_failures(account_key, source).await
}
